"""The ``langsmith-export`` command: demo, simulate, and the data dictionary."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

DEMO_ROOT = "./langsmith-demo"


def _demo(args: argparse.Namespace) -> int:
    import duckdb
    from dagster import DagsterInstance, materialize

    from pipelines.definitions import ASSETS
    from pipelines.resources import LangSmithResource, ParquetSinkResource
    from pipelines.simulator import Simulator, World, WorldConfig

    today = datetime.now(UTC).date()
    days = args.days
    first = today - timedelta(days=days)
    last = today - timedelta(days=1)
    # The world starts on the first exported day, so its experiments fall inside the exported range.
    world = World(WorldConfig(first_day=first, days=days + 1))
    root = Path(args.root or os.environ.get("LANGSMITH_EXPORT_ROOT") or DEMO_ROOT).resolve()
    with Simulator(world) as sim, tempfile.TemporaryDirectory(prefix="langsmith-demo-dagster-") as home:
        print(f"LangSmith simulator listening on {sim.url}")
        # The demo exports the simulator, never a real workspace: its key is the simulator's.
        os.environ["LANGSMITH_API_KEY"] = sim.api_key
        instance = (
            DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.local_temp(home)
        )
        started = time.monotonic()
        result = materialize(
            ASSETS,
            instance=instance,
            resources={
                "langsmith": LangSmithResource(endpoint=sim.url),
                "export_root": ParquetSinkResource(root=str(root)),
            },
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
            raise_on_error=False,
        )
        if not result.success:
            print("The demo run failed; see the Dagster log above.", file=sys.stderr)
            return 1
        elapsed = time.monotonic() - started
    print(f"\nExported {first} .. {last} to {root} in {elapsed:.1f}s through Dagster:\n")
    con = duckdb.connect()
    for table in sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
        glob = root / table / "**" / "*.parquet"
        if not any((root / table).rglob("*.parquet")):
            continue
        n = con.execute(f"select count(*) from read_parquet('{glob}', hive_partitioning = true)").fetchall()[
            0
        ]
        print(f"  {table:<24} {n[0] if n else 0:>8} rows")
    query = (
        "select s.name as project, r.start_date, count(*) as runs, sum(r.total_tokens) as tokens,\n"
        "       sum(r.total_cost) as cost_usd\n"
        f"from read_parquet('{root}/runs/**/*.parquet', hive_partitioning = true) r\n"
        f"left join read_parquet('{root}/sessions/**/*.parquet', hive_partitioning = true) s\n"
        "  on s.id = r.session_id\n"
        "group by all order by r.start_date, cost_usd desc;"
    )
    print("\nTry it in DuckDB (python -m duckdb, or the duckdb CLI); more in the README's Queries:\n")
    print(query)
    print()
    print(con.sql(query.rstrip(";")))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from pipelines.simulator import Faults, Simulator, World, WorldConfig

    first = (
        date.fromisoformat(args.first_day)
        if args.first_day
        else datetime.now(UTC).date() - timedelta(days=args.days - 1)
    )
    world = World(
        WorldConfig(
            first_day=first,
            days=args.days,
            projects=args.projects,
            traces_per_project_day=args.traces,
            payload_chars=args.payload_chars,
            lean=args.lean,
        )
    )
    rate_limit = None
    if args.rate_limit:
        count, _, seconds = args.rate_limit.partition("/")
        rate_limit = (int(count), float(seconds or 10))
    faults = Faults(
        latency_s=args.latency,
        error_rate=args.error_rate,
        retry_after_every=args.retry_after_every,
        retry_after=args.retry_after,
        rate_limit=rate_limit,
        truncate_requests=frozenset(int(n) for n in args.truncate_requests.split(",") if n),
        drop_requests=frozenset(int(n) for n in args.drop_requests.split(",") if n),
        new_run_field=args.new_run_field,
    )
    sim = Simulator(world, host=args.host, port=args.port, faults=faults)
    if args.prerender:
        from pipelines.records import RUN_SELECTS

        sim.prerender(RUN_SELECTS)
    # Printed once it is ready to serve (after any prerendering): scripts may wait for this line.
    print(f"LangSmith simulator on {sim.url} (API key: {sim.api_key}); Ctrl-C to stop", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sim.serve_forever()
    return 0


def _schema(args: argparse.Namespace) -> int:
    from pipelines.dictionary import data_dictionary, update_readme

    if args.readme:
        update_readme(args.readme)
        print(f"updated the data dictionary in {args.readme}")
    else:
        print(data_dictionary())
    return 0


def _ddl(args: argparse.Namespace) -> int:
    from pipelines.ddl import ddl

    root = args.root or os.environ.get("LANGSMITH_EXPORT_ROOT") or "./langsmith-data"
    print(ddl(args.dialect, root, dataset=args.dataset, stage=args.stage), end="")
    return 0


def _duckdb(args: argparse.Namespace) -> int:
    from pipelines.ddl import write_duckdb

    root = args.root or os.environ.get("LANGSMITH_EXPORT_ROOT") or "./langsmith-data"
    if "://" not in root:
        root = str(Path(root).resolve())
    missing = write_duckdb(args.path, root)
    print(f"wrote {args.path}: one view per table over {root}")
    if missing:
        print(f"no files yet, so no view: {', '.join(missing)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="langsmith-export", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the export through Dagster against the embedded simulator")
    demo.add_argument("--root", help=f"export root (default LANGSMITH_EXPORT_ROOT or {DEMO_ROOT})")
    demo.add_argument("--days", type=int, default=3, help="complete UTC days to export (default 3)")
    demo.set_defaults(func=_demo)

    sim = sub.add_parser("simulate", help="serve the LangSmith simulator until interrupted")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--first-day", help="first simulated UTC day (default: days ago from today)")
    sim.add_argument("--days", type=int, default=7)
    sim.add_argument("--projects", type=int, default=3)
    sim.add_argument("--traces", type=int, default=5, help="traces per project per day")
    sim.add_argument("--payload-chars", type=int, default=0, help="padding characters per run input")
    sim.add_argument("--lean", action="store_true", help="flat one-run traces (benchmarks)")
    sim.add_argument("--prerender", action="store_true", help="encode every run before serving (benchmarks)")
    sim.add_argument("--latency", type=float, default=0.0, help="seconds added to every data request")
    sim.add_argument("--error-rate", type=float, default=0.0, help="fraction of data requests answered 503")
    sim.add_argument("--retry-after-every", type=int, default=0, help="every Nth data request answers 429")
    sim.add_argument(
        "--retry-after", default="1", help="the Retry-After those 429s send (seconds or HTTP date)"
    )
    sim.add_argument(
        "--rate-limit", help="emulated limit, N/SECONDS (e.g. 300/10): over it, 429 + Retry-After"
    )
    sim.add_argument(
        "--truncate-requests", default="", help="data request numbers (1,5,...) whose body is cut"
    )
    sim.add_argument("--drop-requests", default="", help="data request numbers whose connection is dropped")
    sim.add_argument("--new-run-field", help="schema drift: add this unknown key to every v2 run")
    sim.set_defaults(func=_simulate)

    schema = sub.add_parser("schema", help="print the data dictionary (Markdown) of every table")
    schema.add_argument("--readme", help="rewrite the data dictionary section of this README instead")
    schema.set_defaults(func=_schema)

    ddl = sub.add_parser("ddl", help="print external-table / view statements for every table")
    ddl.add_argument("--dialect", required=True, choices=["duckdb", "bigquery", "snowflake", "athena"])
    ddl.add_argument("--root", help="where the tables are, as the warehouse sees it (s3://, gs://, a path)")
    ddl.add_argument("--dataset", default="langsmith", help="BigQuery dataset")
    ddl.add_argument("--stage", default="langsmith_stage", help="Snowflake stage pointing at the root")
    ddl.set_defaults(func=_ddl)

    duck = sub.add_parser("duckdb", help="write a DuckDB database file with a view per table")
    duck.add_argument("path", help="the .duckdb file to write")
    duck.add_argument("--root", help="export root (default LANGSMITH_EXPORT_ROOT or ./langsmith-data)")
    duck.set_defaults(func=_duckdb)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
