"""End to end, all eight tables: the real Dagster assets over loopback HTTP, read back by DuckDB."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import langsmith
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, materialize

from pipelines.definitions import ASSETS
from pipelines.dictionary import TABLES
from pipelines.simulator import Simulator, World
from pipelines.sink import is_json_text
from tests.conftest import FIRST_DAY, resources_for

LAST_DAY = FIRST_DAY + timedelta(days=2)
README = Path(__file__).resolve().parents[2] / "README.md"
EIGHT = [t.name for t in TABLES if not t.name.startswith("_")]


def _export(sim: Simulator, root: Path, instance: DagsterInstance, **langsmith_config: object) -> None:
    """One run for the whole range (the backfill policy), every asset check passing."""
    result = materialize(
        ASSETS,
        resources=resources_for(sim, root, **langsmith_config),
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": FIRST_DAY.isoformat(),
            "dagster/asset_partition_range_end": LAST_DAY.isoformat(),
        },
    )
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 2 * 8 + 3  # unique keys and schema for all eight, reconciliation for three
    failed = [(c.asset_key.to_user_string(), c.check_name, c.description) for c in checks if not c.passed]
    assert failed == []


@pytest.fixture(scope="module")
def lake(simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lake")
    home = tmp_path_factory.mktemp("dagster_home")
    with pytest.MonkeyPatch.context() as mp, DagsterInstance.local_temp(str(home)) as instance:
        mp.setenv("LANGSMITH_API_KEY", simulator.api_key)
        _export(
            simulator,
            root,
            instance,
            experiment_groupings=["run_metadata:ls_model_name", "example_metadata:difficulty"],
        )
    return root


def q(root: Path, table: str, sql: str) -> list[tuple]:
    source = f"read_parquet('{root}/{table}/**/*.parquet', hive_partitioning = true)"
    return duckdb.sql(sql.replace("{t}", source)).fetchall()


def test_all_eight_tables_exist_with_their_declared_schema(lake: Path) -> None:
    for doc in TABLES:
        files = sorted((lake / doc.name).rglob("*.parquet"))
        if doc.name == "_rejected":
            assert files == []  # a clean simulator rejects nothing
            continue
        assert files, doc.name
        for path in files:
            assert pq.read_schema(path).equals(doc.schema, check_metadata=False), path
            # Statistics for what a query prunes row groups on; none for JSON text.
            row_group = pq.ParquetFile(path).metadata.row_group(0)
            with_stats = {
                row_group.column(i).path_in_schema
                for i in range(row_group.num_columns)
                if row_group.column(i).is_stats_set
            }
            json_text = {f.name for f in doc.schema if is_json_text(f)}
            assert with_stats.isdisjoint(json_text), path
            leaves = {f.name for f in doc.schema if not pa.types.is_list(f.type)}
            assert leaves - json_text <= with_stats, path


def test_counts_equal_what_the_simulator_holds(lake: Path, world: World) -> None:
    assert sorted(r[0] for r in q(lake, "sessions", "select id from {t}")) == sorted(
        p.id for p in world.projects
    )
    experiments = {e.id: e for e in world.experiments}

    # examples per dataset (every example of a dataset with an experiment that day, runs or not)
    per_day_dataset = Counter(
        (str(d), ds)
        for d, ds, _ in q(lake, "dataset_examples", "select start_date, dataset_id, example_id from {t}")
    )
    expected: Counter = Counter()
    for exp in experiments.values():
        day = str(FIRST_DAY + timedelta(days=(exp.start_us - world.first_us) // 86_400_000_000))
        size = len(next(d for d in world.datasets if d.id == exp.reference_dataset_id).examples)
        expected[(day, exp.reference_dataset_id)] = size
    assert per_day_dataset == expected

    # experiment runs per experiment, and each run's example
    runs = world.experiment_runs(list(experiments))
    got = Counter(r[0] for r in q(lake, "experiment_runs", "select session_id from {t}"))
    assert got == Counter(r.session_id for r in runs)
    pairs = set(q(lake, "experiment_runs", "select id, example_id from {t}"))
    assert pairs == {(r.id, r.reference_example_id) for r in runs}

    # feedback rows and keys per experiment
    feedback = [fb for r in runs for fb in world.feedback[r.id]]
    got_fb = Counter(q(lake, "experiment_feedback", "select session_id, key from {t}"))
    assert got_fb == Counter((fb.session_id, fb.key) for fb in feedback)
    assert sorted(r[0] for r in q(lake, "experiment_feedback", "select id from {t}")) == sorted(
        f.id for f in feedback
    )

    # groups per metadata key and session
    groups = Counter(q(lake, "experiment_groups", "select metadata_key, session_id, group_key from {t}"))
    expected_groups: Counter = Counter()
    for r in runs:
        example = world.example(r.reference_example_id or "")
        expected_groups[("ls_model_name", r.session_id, r.metadata["ls_model_name"])] = 1
        expected_groups[("difficulty", r.session_id, example.metadata["difficulty"])] = 1
    assert groups == expected_groups


def test_feedback_lands_typed_in_its_own_columns(lake: Path, world: World) -> None:
    feedback = {fb.id: fb for fbs in world.feedback.values() for fb in fbs}
    rows = {
        r[0]: r[1:]
        for r in q(
            lake,
            "experiment_feedback",
            "select id, score_number, score_bool, value_number, value_bool, value_string, value_json, "
            "correction_string, correction_json, source_type, source_user_id, source_user_name from {t}",
        )
    }
    true_score = next(f for f in feedback.values() if f.score is True)
    assert rows[true_score.id][:2] == (None, True)
    half_with_object = next(f for f in feedback.values() if f.score == 0.5 and isinstance(f.value, dict))
    row = rows[half_with_object.id]
    assert row[0] == 0.5 and row[1] is None
    assert row[2:5] == (None, None, None)
    assert row[5] is not None and json.loads(row[5]) == half_with_object.value
    string_correction = next(f for f in feedback.values() if isinstance(f.correction, str))
    assert rows[string_correction.id][6:8] == (string_correction.correction, None)
    object_correction = next(f for f in feedback.values() if isinstance(f.correction, dict))
    assert json.loads(rows[object_correction.id][7]) == object_correction.correction
    string_value = next(f for f in feedback.values() if isinstance(f.value, str))
    assert rows[string_value.id][4] == string_value.value
    assert rows[string_value.id][8:] == ("app", string_value.source["user_id"], "Ana Lima")  # type: ignore[index]
    bool_value = next(f for f in feedback.values() if f.value is True)
    assert rows[bool_value.id][2:4] == (None, True)
    number_value = next(f for f in feedback.values() if f.value == 1.25)
    assert rows[number_value.id][2:4] == (1.25, None)
    no_source = next(f for f in feedback.values() if f.source is None)
    assert rows[no_source.id][8] is None


def test_twelve_decimal_costs_survive_exactly(lake: Path, world: World) -> None:
    runs = world.experiment_runs([e.id for e in world.experiments])
    twelve = [r for r in runs if r.prompt_cost is not None and r.prompt_cost.as_tuple().exponent == -12]
    assert twelve, "the simulator must hold costs with 12 decimal places"
    got = dict(q(lake, "experiment_runs", "select id, prompt_cost from {t}"))
    for run in twelve:
        assert got[run.id] == run.prompt_cost  # Decimal equality, to the last digit
    total = q(lake, "experiment_runs", "select sum(total_cost) from {t}")[0][0]
    assert total == sum((r.total_cost for r in runs if r.total_cost is not None), Decimal(0))
    sessions = dict(q(lake, "sessions", "select id, total_cost from {t}"))
    for exp in world.experiments:
        expected = sum((r.total_cost or Decimal(0) for r in runs if r.session_id == exp.id), Decimal(0))
        assert sessions[exp.id] == expected


def test_rematerialising_leaves_the_same_rows(simulator: Simulator, lake: Path, tmp_path: Path) -> None:
    def content(table: str) -> list[tuple]:
        moment = "snapshot_at" if table.startswith("session") else "exported_at"
        return sorted(q(lake, table, f"select * exclude ({moment}) from {{t}}"), key=repr)

    before = {t: content(t) for t in EIGHT}
    home = tmp_path / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as mp, DagsterInstance.local_temp(str(home)) as instance:
        mp.setenv("LANGSMITH_API_KEY", simulator.api_key)
        _export(
            simulator,
            lake,
            instance,
            experiment_groupings=["run_metadata:ls_model_name", "example_metadata:difficulty"],
        )
    after = {t: content(t) for t in EIGHT}
    assert after == before
    # the sessions snapshot of the same day is replaced, not appended to
    counts = q(lake, "sessions", "select snapshot_date, count(*) from {t} group by all")
    assert len(counts) == 1 and counts[0][1] == len(
        set(r[0] for r in q(lake, "sessions", "select id from {t}"))
    )


def test_sdk_list_projects_matches_the_sessions_table(simulator: Simulator, lake: Path) -> None:
    client = langsmith.Client(api_url=simulator.url, api_key=simulator.api_key)
    sdk_ids = sorted(str(p.id) for p in client.list_projects())
    assert sdk_ids == sorted(r[0] for r in q(lake, "sessions", "select id from {t}"))
    experiments = sorted(str(p.id) for p in client.list_projects(reference_free=False))
    assert experiments == sorted(r[0] for r in q(lake, "sessions", "select id from {t} where is_experiment"))


def test_readme_queries_run_unchanged_on_the_export(lake: Path) -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Queries", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sql\n(.*?)```", section, re.S)
    assert len(blocks) >= 6
    con = duckdb.connect()
    results = []
    for block in blocks:
        for statement in [s.strip() for s in block.split(";") if s.strip()]:
            results.append(
                (statement, con.execute(statement.replace("langsmith-demo/", f"{lake}/")).fetchall())
            )
    for statement, rows in results:
        if statement.startswith("select") or statement.startswith("with"):
            assert rows, f"README query returned nothing:\n{statement}"


def test_duckdb_file_runs_the_readme_queries_unchanged(lake: Path, tmp_path: Path) -> None:
    from pipelines.ddl import write_duckdb

    database = tmp_path / "lake.duckdb"
    assert write_duckdb(database, str(lake)) == ["_rejected"]  # nothing rejected, so no files, no view
    con = duckdb.connect(str(database), read_only=True)
    # every view has exactly the declared column types
    from pipelines.ddl import column_type

    for doc in TABLES:
        if doc.name == "_rejected":
            continue
        described = {row[0]: row[1] for row in con.execute(f"describe {doc.name}").fetchall()}
        for field in doc.schema:
            declared = con.execute(
                f"select typeof(cast(null as {column_type('duckdb', field.type)}))"
            ).fetchall()
            assert described[field.name] == declared[0][0], field.name
    text = README.read_text(encoding="utf-8")
    section = text.split("## Queries", 1)[1].split("\n## ", 1)[0]
    queries = [
        s.strip()
        for block in re.findall(r"```sql\n(.*?)```", section, re.S)
        for s in block.split(";")
        if s.strip() and not s.strip().startswith("create")
    ]
    assert len(queries) >= 6
    for query in queries:
        assert con.execute(query).fetchall(), query
