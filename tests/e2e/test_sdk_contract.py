"""Contract test: the official LangSmith SDK, pointed at the simulator, works and agrees with us."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import langsmith
from dagster import DagsterInstance, materialize

from assets.runs import runs
from pipelines.export.common import day_bounds, rfc3339_us
from pipelines.records import RUN_SELECTS
from pipelines.simulator import Simulator, World
from tests.conftest import FIRST_DAY, resources_for


def test_sdk_list_projects_returns_the_simulators_projects(simulator: Simulator, world: World) -> None:
    client = langsmith.Client(api_url=simulator.url, api_key=simulator.api_key)
    projects = list(client.list_projects())
    assert sorted(str(p.id) for p in projects) == sorted(p.id for p in world.projects)
    assert {p.name for p in projects} == {p.name for p in world.projects}


def test_sdk_v2_runs_query_pages_a_day_and_matches_the_export(
    api_env: Simulator, world: World, tmp_path: Path, instance: DagsterInstance
) -> None:
    day = FIRST_DAY + timedelta(days=1)
    client = langsmith.Client(api_url=api_env.url, api_key=api_env.api_key)
    low, high = day_bounds(day)

    async def query() -> list:
        found = []
        async for run in client.runs.query_v2(  # checks GET /info for version >= 0.16 first
            project_ids=[p.id for p in world.projects],
            min_start_time=rfc3339_us(low),
            max_start_time=rfc3339_us(high),
            selects=list(RUN_SELECTS),
            page_size=7,  # several pages
        ):
            found.append(run)
        return found

    sdk_runs = asyncio.run(query())
    assert ("GET", "/info") in api_env.requests

    # The SDK's own models accept every field we select, with nothing left over as unknown.
    for run in sdk_runs:
        for select in RUN_SELECTS:
            assert hasattr(run, select.lower()), select
        assert not (run.model_extra or {}), run.model_extra
    llm = next(r for r in sdk_runs if r.run_type == "LLM" and r.total_cost is not None)
    assert isinstance(llm.prompt_token_details.raw["cache_read"], int)  # type: ignore[union-attr]

    result = materialize(
        [runs], partition_key=day.isoformat(), resources=resources_for(api_env, tmp_path), instance=instance
    )
    assert result.success
    rows = duckdb.sql(
        f"select id, total_cost from read_parquet('{tmp_path}/runs/**/*.parquet', hive_partitioning = true)"
    ).fetchall()
    assert sorted(r.id for r in sdk_runs) == sorted(r[0] for r in rows)
    assert len(sdk_runs) == len(set(r.id for r in sdk_runs)) == len(world.runs_on(day))
    ours = {r[0]: r[1] for r in rows}
    for run in sdk_runs:
        if run.total_cost is not None:
            # the SDK parses the number as a float; ours is the exact decimal of the same JSON token
            assert abs(float(ours[run.id]) - run.total_cost) < 1e-12
        else:
            assert ours[run.id] is None
    assert isinstance(next(v for v in ours.values() if v is not None), Decimal)
