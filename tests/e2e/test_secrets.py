"""The API key never leaves the process: not in logs, Dagster events, run config, metadata or files."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from pipelines.definitions import ASSETS
from pipelines.simulator import Faults, Simulator, World, WorldConfig
from tests.conftest import FIRST_DAY, resources_for

SECRET = "lsv2_sk_5ecret_7b1c2d3e4f_never_anywhere"


@pytest.mark.parametrize("workers", [0, 2])
def test_the_key_appears_nowhere(
    workers: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog, capfd
) -> None:
    """With ``workers`` the key travels to worker processes, which retry on their own clients and
    whose log records are handled in the calling process."""
    caplog.set_level(logging.DEBUG)  # everything any library logs, httpx and httpcore included
    world = World(WorldConfig(seed=5, first_day=FIRST_DAY, days=2, api_key=SECRET))
    home = tmp_path / "dagster_home"
    home.mkdir()
    root = tmp_path / "lake"
    faults = Faults(error_rate=0.2, retry_after_every=4, retry_after="0", seed=9)  # retries get logged
    with Simulator(world, faults=faults) as sim, DagsterInstance.local_temp(str(home)) as instance:
        monkeypatch.setenv("LANGSMITH_API_KEY", SECRET)
        tags = {
            "dagster/asset_partition_range_start": FIRST_DAY.isoformat(),
            "dagster/asset_partition_range_end": (FIRST_DAY + timedelta(days=1)).isoformat(),
        }
        config = {"max_attempts": 12, "max_backoff_seconds": 0.2, "workers": workers}
        result = materialize(
            ASSETS, resources=resources_for(sim, root, **config), instance=instance, tags=tags
        )
        assert result.success
        worker_output = capfd.readouterr()
        assert any("retrying" in r.getMessage() for r in caplog.records)
        (runs_meta, *_) = result.asset_materializations_for_node("runs")
        assert runs_meta.metadata["retries"].value > 0  # with workers, their own clients' retries
        assert any("retrying POST /api/v2/runs/query" in r.getMessage() for r in caplog.records)

        # A failing run too: the server echoes the key it rejects back in its error detail.
        monkeypatch.setenv("LANGSMITH_API_KEY", SECRET + "_revoked")
        failed = materialize(
            ASSETS,
            resources=resources_for(sim, root, workers=workers),
            instance=instance,
            tags=tags,
            raise_on_error=False,
        )
        assert not failed.success

        events = [str(e) for r in (result, failed) for e in r.all_events]
        runs = [str(run.run_config) + str(run.tags) for run in instance.get_runs()]
        records = [entry for run in instance.get_runs() for entry in instance.all_logs(run.run_id)]

    assert events and runs and records
    output = capfd.readouterr()
    haystacks = {
        "process output": worker_output.out + worker_output.err + output.out + output.err,
        "log records": "\n".join(r.getMessage() for r in caplog.records) + caplog.text,
        "dagster events": "\n".join(events),
        "event storage": "\n".join(str(r) for r in records),
        "run config and tags": "\n".join(runs),
    }
    for where, text in haystacks.items():
        assert SECRET not in text, f"the key leaked into {where}"
    files = [p for p in [*home.rglob("*"), *root.rglob("*")] if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and any(p.suffix == ".db" for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), f"the key leaked into {path}"
