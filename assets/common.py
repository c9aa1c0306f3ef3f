"""Helpers every asset family shares: Dagster column schemas and per-table metadata."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
from dagster import MetadataValue, TableColumn, TableSchema

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
        "partition_paths": MetadataValue.json([i.path for i in infos]),
    }
