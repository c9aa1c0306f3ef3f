"""Warehouse DDL generated from the declared schemas: checked statement by statement."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from pipelines.ddl import DIALECTS, column_type, ddl, partition_columns
from pipelines.dictionary import TABLES

ROOT = "s3://bucket/lake"


@pytest.mark.parametrize(
    ("dialect", "money", "timestamp", "tags"),
    [
        ("duckdb", "DECIMAL(38, 12)", "TIMESTAMPTZ", "VARCHAR[]"),
        ("bigquery", "BIGNUMERIC(38, 12)", "TIMESTAMP", "ARRAY<STRING>"),
        ("snowflake", "NUMBER(38, 12)", "TIMESTAMP_TZ", "ARRAY"),
        ("athena", "decimal(38,12)", "timestamp", "array<string>"),
    ],
)
def test_types_map_exactly(dialect: str, money: str, timestamp: str, tags: str) -> None:
    assert column_type(dialect, pa.decimal128(38, 12)) == money
    assert column_type(dialect, pa.timestamp("us", tz="UTC")) == timestamp
    assert column_type(dialect, pa.list_(pa.string())) == tags


@pytest.mark.parametrize("dialect", ["bigquery", "snowflake", "athena"])
def test_every_table_and_column_is_declared(dialect: str) -> None:
    statements = [s.strip() for s in ddl(dialect, ROOT).split(";\n") if s.strip()]
    for doc in TABLES:
        name = {"snowflake": f'"{doc.name}"', "bigquery": f"`langsmith.{doc.name}`"}.get(
            dialect, f"`{doc.name}`"
        )
        (statement,) = [s for s in statements if s.startswith("CREATE") and name in s.splitlines()[0]]
        for field in doc.schema:
            quoted = f'"{field.name}"' if dialect == "snowflake" else f"`{field.name}`"
            assert f"{quoted} {column_type(dialect, field.type)}" in statement, (doc.name, field.name)
        for name, _ in partition_columns(doc):
            assert name in statement.split("PARTITION")[1], (doc.name, name)
        assert f"{ROOT}/{doc.name}" in statement or f"/{doc.name}/" in statement


def test_partition_columns_are_dates_or_text() -> None:
    kinds = {doc.name: partition_columns(doc) for doc in TABLES}
    assert kinds["runs"] == [("start_date", "date")]
    assert kinds["sessions"] == [("snapshot_date", "date")]
    assert kinds["_rejected"] == [("source", "string"), ("partition", "string")]


def test_athena_repairs_partitions_and_bigquery_uses_hive_prefixes() -> None:
    assert len(re.findall(r"MSCK REPAIR TABLE", ddl("athena", ROOT))) == len(TABLES)
    assert f"hive_partition_uri_prefix = '{ROOT}/runs'" in ddl("bigquery", ROOT)


def test_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dialect"):
        ddl("oracle", ROOT)
    assert set(DIALECTS) == {"duckdb", "bigquery", "snowflake", "athena"}
