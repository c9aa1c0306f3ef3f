"""Polars helpers for the tables derived with Polars expressions (sessions, experiments).

The runs tables, the bulk of every export, are built in Arrow alone (``pipelines.flatten.runs``):
worker processes never load Polars.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pyarrow as pa


def exported_at_value(moment: datetime) -> pl.Expr:
    return pl.lit(moment, dtype=pl.Datetime("us", "UTC")).alias("exported_at")


def conform(frame: pl.DataFrame, schema: pa.Schema) -> pa.Table:
    """The frame as an Arrow table with exactly ``schema``: names, order, types, field metadata."""
    return frame.select(schema.names).to_arrow().cast(schema)


def from_columns(columns: dict[str, pa.Array]) -> pl.DataFrame:
    return pl.from_arrow(pa.table(columns))  # type: ignore[return-value]
