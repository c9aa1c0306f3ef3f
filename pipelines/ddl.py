"""Warehouse DDL generated from the declared schemas: DuckDB views, BigQuery / Snowflake / Athena
external tables over the Hive-partitioned Parquet, and a DuckDB database file for BI tools."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs

from pipelines.dictionary import TABLES, TableDoc
from pipelines.sink import resolve_root

DIALECTS = ("duckdb", "bigquery", "snowflake", "athena")


def partition_columns(doc: TableDoc) -> list[tuple[str, str]]:
    """The Hive path columns: ``start_date`` / ``snapshot_date`` are dates, anything else text."""
    names = [part.split("=")[0] for part in doc.partition_column.split("/")]
    return [(name, "date" if name.endswith("_date") else "string") for name in names]


def _map(type_: pa.DataType, scalar: Callable[[pa.DataType], str], array: Callable[[str], str]) -> str:
    if pa.types.is_list(type_):
        return array(_map(type_.value_type, scalar, array))
    return scalar(type_)


def _duckdb_type(t: pa.DataType) -> str:
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision}, {t.scale})"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    return {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}[t]


def _bigquery_type(t: pa.DataType) -> str:
    if pa.types.is_decimal(t):
        return f"BIGNUMERIC({t.precision}, {t.scale})"  # NUMERIC stops at scale 9
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    return {pa.string(): "STRING", pa.int64(): "INT64", pa.float64(): "FLOAT64", pa.bool_(): "BOOL"}[t]


def _snowflake_type(t: pa.DataType) -> str:
    if pa.types.is_decimal(t):
        return f"NUMBER({t.precision}, {t.scale})"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP_TZ"
    return {
        pa.string(): "VARCHAR",
        pa.int64(): "NUMBER(19, 0)",
        pa.float64(): "FLOAT",
        pa.bool_(): "BOOLEAN",
    }[t]


def _athena_type(t: pa.DataType) -> str:
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "timestamp"
    return {pa.string(): "string", pa.int64(): "bigint", pa.float64(): "double", pa.bool_(): "boolean"}[t]


def column_type(dialect: str, type_: pa.DataType) -> str:
    if dialect == "duckdb":
        return _map(type_, _duckdb_type, lambda inner: f"{inner}[]")
    if dialect == "bigquery":
        return _map(type_, _bigquery_type, lambda inner: f"ARRAY<{inner}>")
    if dialect == "snowflake":
        return _map(type_, _snowflake_type, lambda inner: "ARRAY")
    if dialect == "athena":
        return _map(type_, _athena_type, lambda inner: f"array<{inner}>")
    raise ValueError(f"unknown dialect {dialect!r}; choose one of {', '.join(DIALECTS)}")


def _duckdb(doc: TableDoc, root: str) -> str:
    types = ", ".join(
        f"'{name}': '{'DATE' if kind == 'date' else 'VARCHAR'}'" for name, kind in partition_columns(doc)
    )
    return (
        f"create or replace view {_ident(doc.name)} as select * from read_parquet("
        f"'{root}/{doc.name}/**/*.parquet', hive_partitioning = true, hive_types = {{{types}}});"
    )


def _bigquery(doc: TableDoc, root: str, dataset: str) -> str:
    columns = ",\n".join(f"  `{f.name}` {column_type('bigquery', f.type)}" for f in doc.schema)
    parts = ", ".join(f"`{n}` {'DATE' if k == 'date' else 'STRING'}" for n, k in partition_columns(doc))
    return (
        f"CREATE OR REPLACE EXTERNAL TABLE `{dataset}.{doc.name}` (\n{columns}\n)\n"
        f"WITH PARTITION COLUMNS ({parts})\n"
        f"OPTIONS (format = 'PARQUET', uris = ['{root}/{doc.name}/*'], "
        f"hive_partition_uri_prefix = '{root}/{doc.name}');"
    )


def _snowflake(doc: TableDoc, root: str, stage: str) -> str:
    lines = []
    for name, kind in partition_columns(doc):
        part = f"SPLIT_PART(SPLIT_PART(METADATA$FILENAME, '{name}=', 2), '/', 1)"
        expr = f"TO_DATE({part})" if kind == "date" else part
        lines.append(f'  "{name}" {"DATE" if kind == "date" else "VARCHAR"} AS ({expr})')
    for f in doc.schema:
        sf = column_type("snowflake", f.type)
        lines.append(f'  "{f.name}" {sf} AS (VALUE:"{f.name}"::{sf})')
    parts = ", ".join(f'"{n}"' for n, _ in partition_columns(doc))
    return (
        f'CREATE OR REPLACE EXTERNAL TABLE "{doc.name}" (\n' + ",\n".join(lines) + "\n)\n"
        f"PARTITION BY ({parts})\nLOCATION = @{stage}/{doc.name}/\n"
        "FILE_FORMAT = (TYPE = PARQUET)\nAUTO_REFRESH = FALSE;"
    )


def _athena(doc: TableDoc, root: str) -> str:
    columns = ",\n".join(f"  `{f.name}` {column_type('athena', f.type)}" for f in doc.schema)
    parts = ", ".join(f"`{n}` {k}" for n, k in partition_columns(doc))
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `{doc.name}` (\n{columns}\n)\n"
        f"PARTITIONED BY ({parts})\nSTORED AS PARQUET\nLOCATION '{root}/{doc.name}/';\n"
        f"MSCK REPAIR TABLE `{doc.name}`;"
    )


def _ident(name: str) -> str:
    return f'"{name}"' if name.startswith("_") else name


LATEST_SESSIONS = (
    "create or replace view latest_sessions as select * from sessions "
    "where snapshot_date = (select max(snapshot_date) from sessions);"
)


def ddl(
    dialect: str,
    root: str,
    *,
    dataset: str = "langsmith",
    stage: str = "langsmith_stage",
    tables: tuple[TableDoc, ...] = TABLES,
) -> str:
    """Statements creating every table over ``root`` (a path or URI the warehouse can read)."""
    root = root.rstrip("/")
    column_type(dialect, pa.string())  # validates the dialect
    statements = []
    for doc in tables:
        if dialect == "duckdb":
            statements.append(_duckdb(doc, root))
        elif dialect == "bigquery":
            statements.append(_bigquery(doc, root, dataset))
        elif dialect == "snowflake":
            statements.append(_snowflake(doc, root, stage))
        else:
            statements.append(_athena(doc, root))
    if dialect == "duckdb" and any(doc.name == "sessions" for doc in tables):
        statements.append(LATEST_SESSIONS)
    return "\n\n".join(statements) + "\n"


def write_duckdb(database: str | Path, root: str) -> list[str]:
    """A DuckDB database file with one view per table that has files (and ``latest_sessions``).

    Returns the tables left out because nothing has been exported for them yet.
    """
    fs, path, _ = resolve_root(root)
    present: list[TableDoc] = []
    missing: list[TableDoc] = []
    for doc in TABLES:
        found = fs.get_file_info(
            pafs.FileSelector(f"{path}/{doc.name}", recursive=True, allow_not_found=True)
        )
        (present if any(f.path.endswith(".parquet") for f in found) else missing).append(doc)
    con = duckdb.connect(str(database))
    try:
        if "://" in root:
            con.execute("install httpfs; load httpfs;")
        for statement in ddl("duckdb", root if "://" in root else path, tables=tuple(present)).split(";\n"):
            if statement.strip():
                con.execute(statement)
    finally:
        con.close()
    return [doc.name for doc in missing]
