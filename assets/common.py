"""Helpers every asset family shares: Dagster column schemas and per-table metadata."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    TableColumn,
    TableSchema,
)

from pipelines.checks import CheckOutcome, check_schema, check_unique
from pipelines.client import ClientStats
from pipelines.flatten.common import describe
from pipelines.sink import PartitionInfo


def column_schema(schema: pa.Schema) -> TableSchema:
    return TableSchema(
        columns=[
            TableColumn(name=name, type=type_, description=meaning)
            for name, type_, meaning, _ in describe(schema)
        ]
    )


def table_metadata(schema: pa.Schema, infos: Iterable[PartitionInfo]) -> dict[str, Any]:
    """Rows, bytes, files and paths of the partitions written for one table, with its schema."""
    infos = list(infos)
    return {
        "dagster/column_schema": column_schema(schema),
        "dagster/row_count": sum(i.rows for i in infos),
        "rows": sum(i.rows for i in infos),
        "bytes": sum(i.bytes for i in infos),
        "files": sum(i.files for i in infos),
        "partition_paths": MetadataValue.json([i.uri or i.path for i in infos]),
    }


def fetch_metadata(stats: ClientStats, started: float, **counts: Any) -> dict[str, Any]:
    """What every materialisation reports about its API traffic, next to its own counts."""
    return {
        "pages": stats.pages,
        "requests": stats.requests,
        "retries": stats.retries,
        **counts,
        "duration_seconds": round(time.monotonic() - started, 3),
    }


def check_specs(table: str, *, reconciled: bool = False) -> list[AssetCheckSpec]:
    """The checks every table has (unique keys, schema), plus reconciliation where the API counts."""
    specs = [
        # Blocking: a table with duplicate keys or a drifted schema must not feed anything downstream.
        AssetCheckSpec("unique_keys", asset=table, blocking=True, description="No key twice in a partition"),
        AssetCheckSpec(
            "schema_unchanged", asset=table, blocking=True, description="Files match the declared schema"
        ),
    ]
    if reconciled:
        specs.append(
            AssetCheckSpec(
                "reconciled_with_api", asset=table, description="Rows + rejected = items the API returned"
            )
        )
    return specs


def check_result(table: str, name: str, outcome: CheckOutcome) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=table,
        check_name=name,
        passed=outcome.passed,
        severity=AssetCheckSeverity.ERROR,
        description=outcome.description,
        metadata={
            k: MetadataValue.json(v) if isinstance(v, list) else v for k, v in outcome.metadata.items()
        },
    )


def table_checks(
    table: str, schema: pa.Schema, infos: Iterable[PartitionInfo], keys: list[str]
) -> list[AssetCheckResult]:
    written = list(infos)
    return [
        check_result(table, "unique_keys", check_unique(written, keys)),
        check_result(table, "schema_unchanged", check_schema(written, schema)),
    ]
