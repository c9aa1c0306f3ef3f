"""Production behaviour end to end: faults survived, wrong keys, kills mid-write, drift, schedules,
CLI backfills. Real Dagster, real HTTP over loopback to the simulator, DuckDB reading the output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, build_schedule_context, materialize

from assets.experiments import experiments
from assets.runs import runs
from pipelines.definitions import defs
from pipelines.simulator import Faults, Simulator, World
from tests.conftest import FIRST_DAY, resources_for

DAYS = [FIRST_DAY + timedelta(days=i) for i in range(3)]
RANGE_TAGS = {
    "dagster/asset_partition_range_start": DAYS[0].isoformat(),
    "dagster/asset_partition_range_end": DAYS[-1].isoformat(),
}
REPO = Path(__file__).resolve().parents[2]


def summary(root: Path) -> dict[str, object]:
    """What a faulted export must reproduce exactly: ids and token and cost sums, per table."""
    out: dict[str, object] = {}
    for table, key, sums in (
        ("runs", "id", "sum(total_tokens), sum(total_cost), sum(prompt_cost), sum(completion_cost)"),
        ("run_feedback_stats", "run_id || feedback_key", "sum(n)"),
        ("experiment_runs", "id", "sum(total_tokens), sum(total_cost)"),
        ("experiment_feedback", "id", "count(score_number), count(value_json)"),
    ):
        source = f"read_parquet('{root}/{table}/**/*.parquet', hive_partitioning = true)"
        out[table] = (
            sorted(r[0] for r in duckdb.sql(f"select {key} from {source}").fetchall()),
            duckdb.sql(f"select {sums} from {source}").fetchall(),
        )
    return out


def run_metadata(result, asset: str) -> dict[str, object]:
    mat = result.asset_materializations_for_node(asset.split(".")[0])[0]
    return {k: v.value for k, v in mat.metadata.items()}


def test_faults_change_nothing_in_the_output(
    world: World, tmp_path: Path, instance: DagsterInstance, monkeypatch
):
    clean_root, faulty_root = tmp_path / "clean", tmp_path / "faulty"
    faults = Faults(
        error_rate=0.2,
        retry_after_every=5,
        retry_after="1",
        truncate_requests=frozenset({3}),
        drop_requests=frozenset({8}),
        seed=3,
    )
    config = {"page_size": 20, "max_attempts": 12, "max_backoff_seconds": 1.0}
    with Simulator(world) as clean, Simulator(world, faults=faults) as faulty:
        monkeypatch.setenv("LANGSMITH_API_KEY", world.config.api_key)
        ok = materialize(
            [runs, experiments],
            resources=resources_for(clean, clean_root, **config),
            instance=instance,
            tags=RANGE_TAGS,
        )
        assert ok.success
        bad = materialize(
            [runs, experiments],
            resources=resources_for(faulty, faulty_root, **config),
            instance=instance,
            tags=RANGE_TAGS,
        )
        assert bad.success
        served = faulty.faults.count
    assert run_metadata(ok, "runs")["retries"] == 0
    retries = run_metadata(bad, "runs")["retries"] + run_metadata(bad, "experiments")["retries"]
    assert retries >= served // 5  # at least every 429 was retried
    assert served >= 8  # the truncated body (3rd) and the dropped connection (8th) were both served
    assert summary(faulty_root) == summary(clean_root)
    assert all(c.passed for c in bad.get_asset_check_evaluations())


def test_wrong_key_fails_at_once_naming_the_variable(
    simulator: Simulator, tmp_path: Path, instance: DagsterInstance, monkeypatch
):
    wrong = "lsv2_pt_wrong_0000_do_not_print"
    monkeypatch.setenv("LANGSMITH_API_KEY", wrong)
    before = len(simulator.requests)
    started = time.monotonic()
    result = materialize(
        [runs],
        partition_key=DAYS[0].isoformat(),
        resources=resources_for(simulator, tmp_path),
        instance=instance,
        raise_on_error=False,
    )
    elapsed = time.monotonic() - started
    assert not result.success
    (failure,) = result.get_step_failure_events()
    error = failure.step_failure_data.error
    text = str(error.to_string() if error else "")
    assert "LANGSMITH_API_KEY" in text and "401" in text
    assert wrong not in text
    assert simulator.requests[before:] == [("GET", "/api/v1/sessions?include_stats=true&offset=0&limit=100")]
    print(f"wrong key: failed after 1 request in {elapsed:.2f}s")


KILL_SCRIPT = """
import sys
from dagster import DagsterInstance, materialize
from assets.runs import runs
from pipelines.resources import LangSmithResource, ParquetSinkResource
endpoint, root, partition = sys.argv[1:4]
materialize(
    [runs],
    partition_key=partition,
    resources={
        "langsmith": LangSmithResource(endpoint=endpoint, page_size=5, flush_rows=5, slices=1, concurrency=1),
        "export_root": ParquetSinkResource(root=root),
    },
    instance=DagsterInstance.ephemeral(),
)
"""


def test_sigkill_mid_write_keeps_the_previous_partition(
    world: World, tmp_path: Path, instance: DagsterInstance, monkeypatch
):
    monkeypatch.setenv("LANGSMITH_API_KEY", world.config.api_key)
    root = tmp_path / "lake"
    key = DAYS[1].isoformat()
    partition = root / "runs" / f"start_date={key}"
    with Simulator(world) as fast:
        assert materialize(
            [runs], partition_key=key, resources=resources_for(fast, root), instance=instance
        ).success
    before = sorted(p.name for p in partition.iterdir())
    before_ids = sorted(duckdb.sql(f"select id from read_parquet('{partition}/*.parquet')").fetchall())

    with Simulator(world, faults=Faults(latency_s=0.2)) as slow:
        env = {**os.environ, "LANGSMITH_API_KEY": world.config.api_key}
        child = subprocess.Popen(
            [sys.executable, "-c", KILL_SCRIPT, slow.url, str(root), key], env=env, cwd=REPO
        )
        staged: list[Path] = []
        deadline = time.monotonic() + 60
        while not staged and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
            staged = list((root / "_staging").rglob("runs/*/*.parquet"))
        assert staged, "the child never started writing"
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL

    # The old partition is intact and readable; nothing half-written sits in the table folders.
    assert sorted(p.name for p in partition.iterdir()) == before
    assert (
        sorted(duckdb.sql(f"select id from read_parquet('{partition}/*.parquet')").fetchall()) == before_ids
    )
    table_files = [p for p in (root / "runs").rglob("*") if p.is_file()]
    assert all(p.suffix == ".parquet" and p.parent == partition for p in table_files)

    with Simulator(world) as fast:
        assert materialize(
            [runs], partition_key=key, resources=resources_for(fast, root), instance=instance
        ).success
    after_ids = sorted(duckdb.sql(f"select id from read_parquet('{partition}/*.parquet')").fetchall())
    assert after_ids == before_ids == sorted((r.id,) for r in world.runs_on(DAYS[1]))


def test_drift_keeps_unknown_fields_and_rejects_the_bad_row(
    world: World, tmp_path: Path, instance: DagsterInstance, monkeypatch
):
    monkeypatch.setenv("LANGSMITH_API_KEY", world.config.api_key)
    day_runs = world.runs_on(DAYS[0])
    bad = next(r for r in day_runs if r.run_type == "llm")
    faults = Faults(new_run_field="brand_new_field", wrongly_typed_runs=frozenset({bad.id}))
    with Simulator(world, faults=faults) as sim:
        result = materialize(
            [runs],
            partition_key=DAYS[0].isoformat(),
            resources=resources_for(sim, tmp_path),
            instance=instance,
        )
    assert result.success
    runs_source = f"read_parquet('{tmp_path}/runs/**/*.parquet', hive_partitioning = true)"
    rows = duckdb.sql(f"select id, unknown_fields from {runs_source}").fetchall()
    assert sorted(r[0] for r in rows) == sorted(r.id for r in day_runs if r.id != bad.id)
    assert all(r[1] == '{"brand_new_field":{"added_by":"a newer LangSmith","n":1}}' for r in rows)
    rejected_source = f"read_parquet('{tmp_path}/_rejected/**/*.parquet', hive_partitioning = true)"
    rejected = duckdb.sql(f'select "table", reason, raw, source, partition from {rejected_source}').fetchall()
    assert len(rejected) == 1
    table, reason, raw, source, partition = rejected[0]
    assert (table, source, str(partition)) == ("runs", "runs", DAYS[0].isoformat())
    assert "total_tokens" in reason and bad.id in raw and '"a lot"' in raw
    meta = run_metadata(result, "runs")
    assert meta["rejected_rows"] == 1
    assert meta["rows_with_unknown_fields"] == len(day_runs) - 1  # the rejected one is kept whole instead
    assert all(c.passed for c in result.get_asset_check_evaluations())


def test_schedule_requests_yesterday_and_the_lookback_window(monkeypatch):
    schedule = defs.resolve_schedule_def("export_daily_schedule")
    monkeypatch.delenv("LANGSMITH_EXPORT_LOOKBACK_DAYS", raising=False)
    at = datetime(2026, 3, 12, 0, 30, tzinfo=UTC)
    (request,) = (
        schedule.evaluate_tick(build_schedule_context(scheduled_execution_time=at)).run_requests or []
    )
    assert request.tags["dagster/asset_partition_range_start"] == "2026-03-08"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-03-11"
    monkeypatch.setenv("LANGSMITH_EXPORT_LOOKBACK_DAYS", "0")
    (request,) = (
        schedule.evaluate_tick(build_schedule_context(scheduled_execution_time=at)).run_requests or []
    )
    assert request.tags["dagster/asset_partition_range_start"] == "2026-03-11"
    job = defs.resolve_job_def("export_daily")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} >= {
        "runs",
        "sessions",
        "experiment_runs",
    }


def test_cli_backfills_a_date_range_in_one_run(simulator: Simulator, world: World, tmp_path: Path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    root = tmp_path / "lake"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LANGSMITH_ENDPOINT": simulator.url + "/api/v1",
        "LANGSMITH_API_KEY": simulator.api_key,
        "LANGSMITH_EXPORT_ROOT": str(root),
    }
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "asset",
        "materialize",
        "-m",
        "pipelines.definitions",
        "--select",
        "runs,run_feedback_stats",
        "--partition-range",
        f"{DAYS[0]}...{DAYS[-1]}",
    ]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with DagsterInstance.from_config(str(home)) as instance:
        assert len(instance.get_runs()) == 1
    exported = duckdb.sql(
        f"select start_date, id from read_parquet('{root}/runs/**/*.parquet', hive_partitioning = true)"
    ).fetchall()
    assert sorted((str(d), i) for d, i in exported) == sorted(
        (str(day), r.id) for day in DAYS for r in world.runs_on(day)
    )
    assert simulator.api_key not in done.stdout + done.stderr


def test_an_unknown_dataset_fails_naming_it(simulator: Simulator, tmp_path: Path) -> None:
    from pipelines.client import LangSmithClient
    from pipelines.errors import LangSmithNotFoundError
    from pipelines.export.experiments import export_experiments_partition
    from pipelines.records import SessionV1
    from pipelines.sink import ParquetSink

    missing = "00000000-0000-4000-8000-00000000dead"
    experiment = SessionV1(
        id="00000000-0000-4000-8000-0000000000e1",
        reference_dataset_id=missing,
        start_time=datetime(DAYS[0].year, DAYS[0].month, DAYS[0].day, 9, tzinfo=UTC),
    )
    with LangSmithClient(api_key=simulator.api_key, endpoint=simulator.url) as client:
        with pytest.raises(LangSmithNotFoundError) as caught:
            export_experiments_partition(
                client, ParquetSink(tmp_path), DAYS[0], [experiment], exported_at=datetime.now(UTC)
            )
        assert client.stats.retries == 0
    assert missing in str(caught.value) and "404" in str(caught.value)
    assert not list((tmp_path / "experiment_runs").rglob("*.parquet"))
