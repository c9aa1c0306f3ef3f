"""End to end: the real Dagster asset, real HTTP to the simulator, DuckDB reading the Parquet."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from dagster import DagsterInstance, materialize

from assets.runs import runs
from pipelines.flatten.runs import RUN_FEEDBACK_STATS, RUNS
from pipelines.simulator import Simulator, World
from tests.conftest import FIRST_DAY, resources_for

DAYS = [FIRST_DAY, FIRST_DAY + timedelta(days=1)]


def _materialize(
    sim: Simulator, root: Path, instance: DagsterInstance, key: str, **langsmith: object
) -> None:
    result = materialize(
        [runs], partition_key=key, resources=resources_for(sim, root, **langsmith), instance=instance
    )
    assert result.success


def _source(root: Path, table: str) -> str:
    """The table as a BI tool reads it: every file, Hive partition column included."""
    return f"read_parquet('{root}/{table}/**/*.parquet', hive_partitioning = true)"


def test_two_partitions_hold_exactly_the_simulators_runs(
    api_env: Simulator, world: World, tmp_path: Path, instance: DagsterInstance
) -> None:
    root = tmp_path / "lake"
    for day in DAYS:
        _materialize(api_env, root, instance, day.isoformat())

    rel = _source(root, "runs")
    exported = duckdb.sql(f"select id, start_date, start_time from {rel}").fetchall()
    truth = {r.id: r for day in DAYS for r in world.runs_on(day)}
    ids = [row[0] for row in exported]
    assert len(ids) == len(set(ids)), "a run was written twice"
    assert set(ids) == set(truth), "runs missing or extra"
    for run_id, start_date, start_time in exported:
        assert start_date == truth[run_id].start_date == start_time.date()

    # Runs at exactly 00:00:00.000000 and 23:59:59.999999 UTC land on their own day.
    clock = "strftime(start_time at time zone 'UTC', '%H:%M:%S.%f')"
    edges = duckdb.sql(
        f"select {clock} as t, count(*) from {rel} "
        f"where {clock} in ('00:00:00.000000', '23:59:59.999999') group by t"
    ).fetchall()
    assert dict(edges) == {"00:00:00.000000": 2 * 3, "23:59:59.999999": 2 * 3}

    sums = duckdb.sql(
        "select sum(total_tokens), sum(prompt_tokens), sum(completion_tokens), sum(total_cost), "
        f"sum(prompt_cost), sum(completion_cost), sum(prompt_cache_read_cost) from {rel}"
    ).fetchall()[0]
    runs_ = list(truth.values())
    assert sums[0] == sum(r.total_tokens or 0 for r in runs_)
    assert sums[1] == sum(r.prompt_tokens or 0 for r in runs_)
    assert sums[2] == sum(r.completion_tokens or 0 for r in runs_)
    assert sums[3] == sum(r.total_cost for r in runs_ if r.total_cost is not None)
    assert sums[4] == sum(r.prompt_cost for r in runs_ if r.prompt_cost is not None)
    assert sums[5] == sum(r.completion_cost for r in runs_ if r.completion_cost is not None)
    assert sums[6] == sum(r.prompt_cost_details["cache_read"] for r in runs_ if r.prompt_cost_details)

    # pending and errored runs come through typed
    statuses = dict(duckdb.sql(f"select status, count(*) from {rel} group by status").fetchall())
    assert statuses["pending"] == sum(r.status == "pending" for r in runs_)
    assert statuses["error"] == sum(r.status == "error" for r in runs_)

    n_stats = duckdb.sql(f"select count(*) from {_source(root, 'run_feedback_stats')}").fetchall()[0][0]
    assert n_stats == sum(len(r.feedback_stats or {}) for r in runs_)


def test_materialising_a_partition_twice_leaves_the_same_rows(
    api_env: Simulator, world: World, tmp_path: Path, instance: DagsterInstance
) -> None:
    root = tmp_path / "lake"
    key = DAYS[0].isoformat()
    _materialize(api_env, root, instance, key)
    first = sorted(duckdb.sql(f"select id from {_source(root, 'runs')}").fetchall())
    # Different slicing and concurrency the second time: same rows, not twice as many.
    _materialize(api_env, root, instance, key, slices=7, concurrency=2, page_size=5)
    second = sorted(duckdb.sql(f"select id from {_source(root, 'runs')}").fetchall())
    assert first == second
    assert len(second) == len(world.runs_on(DAYS[0]))
    leftovers = [p for p in root.rglob("*") if p.is_file() and "_staging" in p.parts]
    assert leftovers == []


def test_every_file_has_exactly_the_declared_schema(
    api_env: Simulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    root = tmp_path / "lake"
    for day in DAYS:
        _materialize(api_env, root, instance, day.isoformat())
    for table, schema in (("runs", RUNS), ("run_feedback_stats", RUN_FEEDBACK_STATS)):
        files = sorted((root / table).rglob("*.parquet"))
        assert files
        for path in files:
            written = pq.read_schema(path)
            assert written.equals(schema, check_metadata=False), path
            assert [f.nullable for f in written] == [f.nullable for f in schema]


def test_materialisation_reports_rows_pages_and_schema(
    api_env: Simulator, world: World, tmp_path: Path, instance: DagsterInstance
) -> None:
    result = materialize(
        [runs],
        partition_key=DAYS[1].isoformat(),
        resources=resources_for(api_env, tmp_path),
        instance=instance,
    )
    (mat,) = result.asset_materializations_for_node("runs")[:1]
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["rows"] == len(world.runs_on(DAYS[1]))
    assert meta["pages"] >= 1 and meta["retries"] == 0
    assert meta["bytes"] > 0 and meta["files"] >= 1
    assert [c.name for c in meta["dagster/column_schema"].columns] == RUNS.names


def test_output_is_the_same_whatever_the_slicing_and_concurrency(
    api_env: Simulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    contents = []
    # one slice in the fetching thread; 8 slices, 8 at once, processed by 2 worker processes
    for slices, concurrency, workers in ((1, 1, 0), (8, 8, 2)):
        root = tmp_path / f"s{slices}"
        for day in DAYS:
            _materialize(
                api_env,
                root,
                instance,
                day.isoformat(),
                slices=slices,
                concurrency=concurrency,
                workers=workers,
            )
        contents.append(
            {
                table: sorted(
                    duckdb.sql(f"select * exclude (exported_at) from {_source(root, table)}").fetchall(),
                    key=repr,
                )
                for table in ("runs", "run_feedback_stats")
            }
        )
    assert contents[0] == contents[1]
    assert len(contents[0]["runs"]) > 100


def test_worker_processes_report_their_requests_and_their_errors_whole(
    simulator: Simulator, world: World, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    import pytest

    from pipelines.client import LangSmithClient
    from pipelines.errors import LangSmithAuthError
    from pipelines.export.runs import RunsExportOptions, export_runs_partition
    from pipelines.sink import ParquetSink

    options = RunsExportOptions(slices=4, concurrency=4, workers=2)
    projects = [p.id for p in world.projects]
    now = datetime.now(UTC)
    with LangSmithClient(api_key=simulator.api_key, endpoint=simulator.url) as client:
        result = export_runs_partition(
            client, ParquetSink(tmp_path), DAYS[0], projects, exported_at=now, options=options
        )
        # the workers' own clients did the fetching; their counts are this client's
        assert result.tables["runs"].rows == result.received == len(world.runs_on(DAYS[0]))
        assert client.stats.pages == result.pages >= 4 and client.stats.requests >= 4
        assert client.stats.bytes_received > 0

    secret = "lsv2_pt_wrong_0123456789"
    bad_root = tmp_path / "bad"
    with (
        LangSmithClient(api_key=secret, endpoint=simulator.url) as client,
        pytest.raises(LangSmithAuthError) as err,
    ):
        export_runs_partition(
            client, ParquetSink(bad_root), DAYS[0], projects, exported_at=now, options=options
        )
    assert err.value.status == 401 and "LANGSMITH_API_KEY" in str(err.value)
    assert secret not in str(err.value) and secret not in repr(client.settings)
    assert not list(bad_root.rglob("*.parquet"))


def test_a_shared_pool_skips_what_a_failed_export_left_in_its_queue(
    simulator: Simulator, world: World, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from pipelines.client import LangSmithClient
    from pipelines.export.chunks import process_pool
    from pipelines.export.runs import RunsExportOptions, export_runs_partition
    from pipelines.sink import ParquetSink

    options = RunsExportOptions(slices=4, concurrency=4, workers=2)
    projects = [p.id for p in world.projects]
    with (
        process_pool(2) as pool,
        LangSmithClient(api_key=simulator.api_key, endpoint=simulator.url) as client,
    ):
        nothing = export_runs_partition(
            client,
            ParquetSink(tmp_path / "none"),
            DAYS[0],
            [],
            exported_at=datetime.now(UTC),
            options=options,
            pool=pool,
        )
        assert nothing.received == nothing.tables["runs"].rows == 0  # no projects: an empty day, no error
        for leftover in [("an-old-export", 0), ("an-old-export", None), ("an-old-export", 3)]:
            pool.streams.put(leftover)
        for day in DAYS:
            result = export_runs_partition(
                client,
                ParquetSink(tmp_path),
                day,
                projects,
                exported_at=datetime.now(UTC),
                options=options,
                pool=pool,
            )
            ids = pq.read_table(result.tables["runs"].path).column("id").to_pylist()
            assert sorted(ids) == sorted(r.id for r in world.runs_on(day))
            assert result.received == result.tables["runs"].rows == len(ids)  # nothing fetched twice
