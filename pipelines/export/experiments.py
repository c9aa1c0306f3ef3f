"""Experiments of one UTC day: examples with their runs and feedback, and the grouped comparison.

The experiments of a day are the sessions whose reference dataset is set and whose start time falls
on that day; they are asked for per dataset, all of the day's experiments of a dataset at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import msgspec

from pipelines.client import LangSmithClient
from pipelines.export.common import REJECTED, rejected_table
from pipelines.flatten.experiments import (
    DATASET_EXAMPLES,
    EXPERIMENT_FEEDBACK,
    EXPERIMENT_GROUPS,
    EXPERIMENT_RUNS,
    flatten_dataset_examples,
    flatten_experiment_feedback,
    flatten_experiment_groups,
    flatten_experiment_runs,
    unnest_examples,
)
from pipelines.pagination import OffsetPaginator
from pipelines.records import Decoded, ExampleV1, GroupsPage, Rejected, SessionV1, decode_list
from pipelines.sink import ParquetSink, PartitionInfo

log = logging.getLogger(__name__)

GROUP_BY = ("run_metadata", "example_metadata")


@dataclass(frozen=True)
class Grouping:
    """One ``(group_by, metadata_key)`` asked of the grouped endpoint, e.g. ``run_metadata:ls_model_name``."""

    group_by: str
    metadata_key: str

    @classmethod
    def parse(cls, spec: str) -> Grouping:
        group_by, sep, key = spec.partition(":")
        if not sep or group_by not in GROUP_BY or not key:
            raise ValueError(f"grouping {spec!r} must look like 'run_metadata:KEY' or 'example_metadata:KEY'")
        return cls(group_by, key)


@dataclass(frozen=True)
class ExperimentsExportOptions:
    examples_page_size: int = 100
    groups_page_size: int = 10
    groupings: tuple[Grouping, ...] = (Grouping("run_metadata", "ls_model_name"),)


@dataclass
class ExperimentsExportResult:
    partition: str
    tables: dict[str, PartitionInfo]
    experiments: int = 0
    datasets: int = 0
    rejected: int = 0
    rejected_runs: int = 0
    api_runs: int = 0
    unknown_fields: int = 0
    per_experiment_runs: dict[str, int] = field(default_factory=dict)


def experiments_by_dataset(sessions: Sequence[SessionV1], day: date) -> dict[str, list[str]]:
    """``{dataset_id: [experiment ids]}`` for the experiments that started on ``day`` (UTC)."""
    found: dict[str, list[str]] = {}
    for s in sessions:
        if s.reference_dataset_id and s.start_time is not None and s.start_time.date() == day:
            found.setdefault(s.reference_dataset_id, []).append(s.id)
    return {k: sorted(v) for k, v in sorted(found.items())}


def _examples_count(page: Decoded[ExampleV1]) -> int:
    return len(page.items) + len(page.rejected)


def export_experiments_partition(
    client: LangSmithClient,
    sink: ParquetSink,
    day: date,
    sessions: Sequence[SessionV1],
    *,
    exported_at: datetime,
    options: ExperimentsExportOptions | None = None,
) -> ExperimentsExportResult:
    """Replace the day's partitions of the four experiment tables (and their ``_rejected`` rows)."""
    opts = options or ExperimentsExportOptions()
    value = day.isoformat()
    staged = {
        "dataset_examples": sink.begin("dataset_examples", DATASET_EXAMPLES, "start_date", value),
        "experiment_runs": sink.begin("experiment_runs", EXPERIMENT_RUNS, "start_date", value),
        "experiment_feedback": sink.begin("experiment_feedback", EXPERIMENT_FEEDBACK, "start_date", value),
        "experiment_groups": sink.begin("experiment_groups", EXPERIMENT_GROUPS, "start_date", value),
        "_rejected": sink.begin("_rejected", REJECTED, "source=experiments/partition", value),
    }
    plan = experiments_by_dataset(sessions, day)
    result = ExperimentsExportResult(partition=value, tables={}, datasets=len(plan))
    rejected: list[tuple[str, Rejected]] = []
    try:
        for index, (dataset_id, session_ids) in enumerate(plan.items()):
            result.experiments += len(session_ids)
            file_name = f"part-{index:05d}.parquet"
            examples = OffsetPaginator(
                client,
                f"/api/v1/datasets/{dataset_id}/runs",
                limit=opts.examples_page_size,
                method="POST",
                body={"session_ids": session_ids},
            )
            for page in examples.pages(lambda c: decode_list(c, ExampleV1), _examples_count):
                rejected.extend(("dataset_examples", r) for r in page.rejected)
                rows = unnest_examples(page.items, page.unknown)
                rejected.extend(rows.rejected)
                result.api_runs += sum(len(e.runs) for e in page.items)
                result.unknown_fields += sum(
                    1 for u in (*rows.example_unknown, *rows.run_unknown, *rows.feedback_unknown) if u
                )
                for run in rows.runs:
                    sid = run.session_id or ""
                    result.per_experiment_runs[sid] = result.per_experiment_runs.get(sid, 0) + 1
                staged["dataset_examples"].write(file_name, flatten_dataset_examples(rows, exported_at))
                staged["experiment_runs"].write(file_name, flatten_experiment_runs(rows, exported_at))
                staged["experiment_feedback"].write(file_name, flatten_experiment_feedback(rows, exported_at))
            for grouping in opts.groupings:
                grouped = OffsetPaginator(
                    client,
                    f"/api/v1/datasets/{dataset_id}/group/runs",
                    limit=opts.groups_page_size,
                    method="POST",
                    # per_group_limit=1: the examples themselves come from the plain endpoint above.
                    body={
                        "session_ids": session_ids,
                        "group_by": grouping.group_by,
                        "metadata_key": grouping.metadata_key,
                        "per_group_limit": 1,
                    },
                )
                decode = msgspec.json.Decoder(type=GroupsPage).decode
                for groups in grouped.pages(decode, lambda p: len(p.groups)):
                    staged["experiment_groups"].write(
                        file_name,
                        flatten_experiment_groups(
                            groups.groups, dataset_id, grouping.group_by, grouping.metadata_key, exported_at
                        ),
                    )
            log.info("%s: dataset %s, %d experiment(s) exported", value, dataset_id, len(session_ids))
        for table in ("dataset_examples", "experiment_runs", "experiment_feedback"):
            lost = [r for t, r in rejected if t == table]
            if lost:
                staged["_rejected"].write(f"{table}.parquet", rejected_table(table, lost, exported_at))
        result.tables = {name: part.commit() for name, part in staged.items()}
    except BaseException:
        for part in staged.values():
            part.abort()
        raise
    result.rejected = len(rejected)
    result.rejected_runs = sum(1 for t, _ in rejected if t == "experiment_runs")
    return result
