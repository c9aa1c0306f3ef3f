"""The data dictionary: every table's declared schema, partition column and grain, as Markdown.

The README's data dictionary is this output, verbatim; a test holds the two together.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from pipelines.export import REJECTED
from pipelines.flatten.common import describe
from pipelines.flatten.runs import RUN_FEEDBACK_STATS, RUNS


@dataclass(frozen=True)
class TableDoc:
    name: str
    schema: pa.Schema
    partition_column: str
    grain: str


TABLES: tuple[TableDoc, ...] = (
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
        "_rejected",
        REJECTED,
        "start_date",
        "one API item whose known fields had unexpected types, kept whole instead of dropped",
    ),
)


def table_markdown(doc: TableDoc) -> str:
    lines = [
        f"### `{doc.name}`",
        "",
        f"Grain: {doc.grain}. Partition: `{doc.partition_column}=YYYY-MM-DD` (Hive path column, UTC date).",
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
