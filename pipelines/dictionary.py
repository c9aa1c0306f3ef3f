"""The data dictionary: every table's declared schema, partition column and grain, as Markdown.

The README's data dictionary is this output, verbatim; a test holds the two together.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from pipelines.export.common import REJECTED
from pipelines.flatten.common import describe
from pipelines.flatten.experiments import (
    DATASET_EXAMPLES,
    EXPERIMENT_FEEDBACK,
    EXPERIMENT_GROUPS,
    EXPERIMENT_RUNS,
)
from pipelines.flatten.runs import RUN_FEEDBACK_STATS, RUNS
from pipelines.flatten.sessions import SESSION_FEEDBACK_STATS, SESSIONS


@dataclass(frozen=True)
class TableDoc:
    name: str
    schema: pa.Schema
    partition_column: str
    grain: str


TABLES: tuple[TableDoc, ...] = (
    TableDoc(
        "sessions",
        SESSIONS,
        "snapshot_date",
        "one session (tracing project or experiment) as of the snapshot; `snapshot_date` is the UTC "
        "day the snapshot was taken",
    ),
    TableDoc(
        "session_feedback_stats",
        SESSION_FEEDBACK_STATS,
        "snapshot_date",
        "one (session_id, feedback_key, level) of the sessions' `feedback_stats` (level `run`) and "
        "`session_feedback_stats` (level `session`)",
    ),
    TableDoc(
        "runs",
        RUNS,
        "start_date",
        "one run (span), root or child, of any run type; partitioned by the UTC date of its start_time",
    ),
    TableDoc(
        "run_feedback_stats",
        RUN_FEEDBACK_STATS,
        "start_date",
        "one (run_id, feedback_key) of the run's feedback_stats",
    ),
    TableDoc(
        "dataset_examples",
        DATASET_EXAMPLES,
        "start_date",
        "one (dataset_id, example_id) of a dataset that had an experiment that day; partitioned by "
        "the UTC start date of the experiment; examples without a run are included",
    ),
    TableDoc(
        "experiment_runs",
        EXPERIMENT_RUNS,
        "start_date",
        "one run of an experiment on an example; partitioned by the experiment's UTC start date",
    ),
    TableDoc(
        "experiment_feedback",
        EXPERIMENT_FEEDBACK,
        "start_date",
        "one feedback row on an experiment run, score/value/correction split by JSON type",
    ),
    TableDoc(
        "experiment_groups",
        EXPERIMENT_GROUPS,
        "start_date",
        "one (dataset_id, metadata_key, group_key, session_id) of the grouped comparison, with the "
        "group's per-experiment stats",
    ),
    TableDoc(
        "_rejected",
        REJECTED,
        "source=<family>/partition",
        "one API item whose known fields had unexpected types, kept whole instead of dropped; "
        "`source` is runs, sessions or experiments and `partition` the partition it was read for",
    ),
)


def table_markdown(doc: TableDoc) -> str:
    lines = [
        f"### `{doc.name}`",
        "",
        f"Grain: {doc.grain}. Partition: `{doc.partition_column}=YYYY-MM-DD` (Hive path, UTC date).",
        "",
        "| column | type | meaning | source |",
        "|---|---|---|---|",
    ]
    for name, type_, meaning, source in describe(doc.schema):
        lines.append(f"| `{name}` | `{type_}` | {meaning} | `{source}` |")
    return "\n".join(lines)


def data_dictionary() -> str:
    return "\n\n".join(table_markdown(doc) for doc in TABLES)


START, END = "<!-- dictionary:start -->", "<!-- dictionary:end -->"


def update_readme(path: str) -> None:
    """Rewrite the README's data dictionary section between its two markers."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"{head}{START}\n{data_dictionary()}\n{END}{tail}")
