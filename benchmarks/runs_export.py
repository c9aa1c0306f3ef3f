"""Benchmark of the runs export against the simulator, with a baseline and a naive path to compare.

    python benchmarks/runs_export.py                      # 50,000 runs of ~6.7 KB, 300 ms pages
    python benchmarks/runs_export.py --memory             # also peak RSS of a 50k vs a 500k-run day
    python benchmarks/runs_export.py --tiny               # seconds: what CI runs, to prove it runs

Every measurement runs in a fresh child process (so peak RSS is its own) against a simulator in
another process, which generates and encodes the day before it serves (``--prerender``), and prints
one JSON line; the parent prints the table, the ratios and the CPU time per run of the export, its
worker processes and the simulator (all on the same cores), and what fresh memory costs just before
and after the baseline (it moves the baseline's time most). Numbers are comparable only within one
invocation (machines here are noisy). The short phases run ``--repeat`` times (3) and report the run
with the median time: ours at latency once before the baseline's long run and the rest after it,
processing alone and ours at 0 ms taking turns.

Phases:
  ours@latency      our export (time slices, concurrency, rate limiter) with page latency
  baseline@latency  a careful hand-written loop: sequential cursor, resp.json(), one DataFrame, one write
  processing/ours   the export's chunk processing (decode, flatten, write) on the pages in memory, one thread
  processing/naive  orjson.loads -> pl.DataFrame(list of dicts, scalar schema) -> write_parquet
  ours@0ms          our export end to end over HTTP with no latency
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import httpx

DAY = date(2024, 1, 1)
START, END = "2024-01-01T00:00:00.000000Z", "2024-01-01T23:59:59.999999Z"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of another process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def emit(**fields: object) -> None:
    cpu = {"cpu_s": round(cpu_seconds(), 2), "workers_cpu_s": round(cpu_seconds(resource.RUSAGE_CHILDREN), 2)}
    print(json.dumps({**fields, **cpu, "peak_rss_mb": round(peak_rss_mb(), 1)}), flush=True)


# --- the simulator, in its own process -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimulatorProcess:
    def __init__(self, runs: int, payload: int, latency: float, rate_limit: str | None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable, "-m", "pipelines.cli", "simulate", "--port", str(self.port), "--lean",
            "--first-day", DAY.isoformat(), "--days", "1", "--projects", "4", "--traces", str(runs // 4),
            "--payload-chars", str(payload), "--latency", str(latency), "--prerender",
        ]  # fmt: skip
        if rate_limit:
            command += ["--rate-limit", rate_limit]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.key = "lsv2_sim_0123456789abcdef"

    def __enter__(self) -> SimulatorProcess:
        # The simulator prints its address once the day is generated and encoded (--prerender).
        assert self.process.stdout is not None
        if "LangSmith simulator on" not in self.process.stdout.readline():
            raise SystemExit("the simulator did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait()


def _body(project_ids: list[str], page_size: int) -> dict[str, object]:
    from pipelines.records import RUN_SELECTS

    return {
        "project_ids": project_ids,
        "min_start_time": START,
        "max_start_time": END,
        "selects": list(RUN_SELECTS),
        "page_size": page_size,
        "sort_order": "ASC",
    }


# --- the phases, each in a child process ----------------------------------------------------------


def phase_ours(args: argparse.Namespace) -> None:
    from contextlib import ExitStack

    from pipelines.client import LangSmithClient, RateLimiter
    from pipelines.export.chunks import process_pool
    from pipelines.export.common import fetch_sessions
    from pipelines.export.runs import RunsExportOptions, export_runs_partition
    from pipelines.sink import ParquetOptions, ParquetSink

    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        with ExitStack() as stack:
            # As the runs asset does: the worker processes start while the sessions are fetched.
            pool = stack.enter_context(process_pool(args.workers)) if args.workers else None
            client = stack.enter_context(
                LangSmithClient(
                    api_key=args.key,
                    endpoint=args.endpoint,
                    rate_limiter=RateLimiter(args.rate, 10.0),
                    max_connections=args.concurrency * 2,
                )
            )
            sessions = fetch_sessions(client).items
            sink = ParquetSink(root, ParquetOptions(compression_level=args.level))
            result = export_runs_partition(
                client,
                sink,
                DAY,
                [s.id for s in sessions],
                exported_at=datetime.now(UTC),
                options=RunsExportOptions(
                    slices=args.slices, concurrency=args.concurrency, workers=args.workers
                ),
                pool=pool,
            )
        elapsed = time.perf_counter() - started  # the workers have exited: their usage is counted
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        emit(
            workers_peak_rss_mb=round(children, 1),
            runs=result.tables["runs"].rows,
            seconds=elapsed,
            json_mb=client.stats.bytes_received / 1e6,
            requests=client.stats.requests,
            retries=client.stats.retries,
        )


def phase_baseline(args: argparse.Namespace) -> None:
    """What a careful user writes by hand: a sequential cursor loop, dicts, one DataFrame, one write."""
    import polars as pl

    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        headers = {"X-API-Key": args.key}
        requests = 0
        with httpx.Client(base_url=args.endpoint, headers=headers, timeout=600) as client:
            ids = [s["id"] for s in client.get("/api/v1/sessions").json()]
            body = _body(ids, 1000)
            rows: list[dict] = []
            received = 0
            while True:
                response = client.post("/api/v2/runs/query", json=body)
                requests += 1
                if response.status_code == 429:  # a careful user honours Retry-After too
                    time.sleep(float(response.headers.get("Retry-After", "1")))
                    continue
                response.raise_for_status()
                received += len(response.content)
                page = response.json()
                rows.extend(page["items"])
                if not page.get("next_cursor"):
                    break
                body = {**body, "cursor": page["next_cursor"]}
        frame = pl.DataFrame(rows, infer_schema_length=None)
        frame.write_parquet(Path(root) / "runs.parquet")
        emit(
            runs=frame.height,
            seconds=time.perf_counter() - started,
            json_mb=received / 1e6,
            requests=requests,
        )


def phase_fresh_memory(args: argparse.Namespace) -> None:
    """Seconds per GB to touch memory no process touched before (page faults, zeroing): on these
    virtual machines it varies several-fold with the host, and it weighs on the baseline (~2.4 GB of
    dicts for 50,000 runs) far more than on the export (a few hundred MB per process). In a child of
    its own: Linux carries a process's peak RSS over into the children it starts."""
    mb = 256
    size = mb << 20
    with mmap.mmap(-1, size) as block:
        started = time.perf_counter()
        for offset in range(0, size, mmap.PAGESIZE):
            block[offset] = 1
        emit(seconds_per_gb=(time.perf_counter() - started) * 1024 / mb)


def phase_fetch_pages(args: argparse.Namespace) -> None:
    """Save the day's pages to files, for the in-memory processing phases."""
    with httpx.Client(base_url=args.endpoint, headers={"X-API-Key": args.key}, timeout=600) as client:
        ids = [s["id"] for s in client.get("/api/v1/sessions").json()]
        body = _body(ids, 1000)
        n = 0
        while True:
            content = client.post("/api/v2/runs/query", json=body).raise_for_status().content
            Path(args.pages, f"{n:05d}.json").write_bytes(content)
            n += 1
            cursor = json.loads(content).get("next_cursor")
            if not cursor:
                break
            body = {**body, "cursor": cursor}
    emit(pages=n)


def _load_pages(folder: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted(Path(folder).glob("*.json"))]


def phase_process_ours(args: argparse.Namespace) -> None:
    """The export's own chunk processing (decode, window, flatten, write a file per table) on the
    pages already in memory, in chunks of the default ``flush_rows``, on one thread, in a process
    set up as the export sets up its own (memory settings, garbage collection)."""
    from pipelines.export.chunks import ChunkTask, process_chunk
    from pipelines.export.runs import RunsExportOptions
    from pipelines.memory import fewer_collections, tune_memory
    from pipelines.sink import ParquetOptions

    tune_memory()  # the process as the export sets it up
    pages = _load_pages(args.pages)
    per_chunk = RunsExportOptions().flush_rows // 1000
    now = datetime.now(UTC)
    window = (datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC), datetime.fromisoformat(END))
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        n = 0
        with fewer_collections():
            for i in range(0, len(pages), per_chunk):
                task = ChunkTask(
                    pages=pages[i : i + per_chunk],
                    window=window,
                    root=root,
                    files={t: f"{root}/{t}-{i:05d}.parquet" for t in ("runs", "run_feedback_stats")},
                    exported_at=now,
                    options=ParquetOptions(compression_level=args.level),
                )
                n += process_chunk(task).rows["runs"]
        emit(runs=n, seconds=time.perf_counter() - started, json_mb=sum(map(len, pages)) / 1e6)


def phase_process_naive(args: argparse.Namespace) -> None:
    import orjson
    import polars as pl

    # The scalar columns declared; objects (inputs, outputs, details, ...) left to inference, as a
    # user must when a DataFrame is built from a list of dicts.
    schema = {
        "id": pl.String, "trace_id": pl.String, "project_id": pl.String, "name": pl.String,
        "run_type": pl.String, "status": pl.String, "start_time": pl.String, "end_time": pl.String,
        "total_tokens": pl.Int64, "prompt_tokens": pl.Int64, "completion_tokens": pl.Int64,
        "total_cost": pl.Float64, "prompt_cost": pl.Float64, "completion_cost": pl.Float64,
    }  # fmt: skip
    pages = _load_pages(args.pages)
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        rows = [item for content in pages for item in orjson.loads(content)["items"]]
        frame = pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None)
        frame.write_parquet(Path(root) / "runs.parquet")
        emit(runs=frame.height, seconds=time.perf_counter() - started, json_mb=sum(map(len, pages)) / 1e6)


PHASES = {
    "_ours": phase_ours,
    "_baseline": phase_baseline,
    "_fetch_pages": phase_fetch_pages,
    "_fresh_memory": phase_fresh_memory,
    "_process_ours": phase_process_ours,
    "_process_naive": phase_process_naive,
}


def child(phase: str, simulator: SimulatorProcess | None = None, **options: object) -> dict:
    before = process_cpu_seconds(simulator.process.pid) if simulator else 0.0
    command = [sys.executable, __file__, phase]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{phase} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if simulator:
        result["simulator_cpu_s"] = round(process_cpu_seconds(simulator.process.pid) - before, 2)
    return result


ORDER = ("ours@latency", "baseline@latency", "processing/ours", "processing/naive", "ours@0ms")


def median_run(runs: list[dict]) -> dict:
    """The run with the median time (its own figures, not a mix), with every run's time noted."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return {**ordered[len(ordered) // 2], "all_seconds": [r["seconds"] for r in runs]}


def show(name: str, r: dict) -> None:
    rate = r["runs"] / r["seconds"]
    r["runs_per_s"] = rate
    extra = "".join(f"  {k}={r[k]}" for k in ("requests", "retries", "workers_peak_rss_mb") if k in r)
    cpu = {"export": r["cpu_s"], "workers": r["workers_cpu_s"], "simulator": r.get("simulator_cpu_s", 0)}
    extra += "  CPU us/run: " + " ".join(f"{k} {v / r['runs'] * 1e6:.0f}" for k, v in cpu.items() if v)
    if len(r.get("all_seconds", [])) > 1:
        extra += "  median of " + " ".join(f"{s:.2f}" for s in r["all_seconds"]) + " s"
    print(
        f"{name:<20} {r['runs']:>9,} runs {r['seconds']:>8.2f} s {rate:>10,.0f} runs/s "
        f"{r['json_mb'] / r['seconds']:>7.1f} MB/s JSON  peak RSS {r['peak_rss_mb']:>7.1f} MB{extra}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("phase", nargs="?", default="all", choices=["all", *PHASES])
    parser.add_argument("--runs", type=int, default=50_000, help="runs in the simulated day")
    parser.add_argument(
        "--payload-chars",
        type=int,
        default=5_000,
        help="characters of input text per run (5,000: ~6.7 KB runs, as in shared/performance-notes.md)",
    )
    parser.add_argument("--latency", type=float, default=0.3, help="seconds of latency per page")
    parser.add_argument("--slices", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes besides the calling process (which works too)",
    )
    parser.add_argument("--rate", type=int, default=300, help="requests per 10 s (LangSmith Cloud's limit)")
    parser.add_argument("--level", type=int, default=3, help="zstd level")
    parser.add_argument(
        "--memory", action="store_true", help="also compare peak RSS of 50k and 500k-run days"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each short phase (ours, processing alone, 0 ms); the median is reported",
    )
    parser.add_argument("--tiny", action="store_true", help="a few thousand runs: proves the script runs")
    # child-only options
    parser.add_argument("--endpoint")
    parser.add_argument("--key")
    parser.add_argument("--pages")
    args = parser.parse_args()
    if args.phase != "all":
        PHASES[args.phase](args)
        return
    if args.tiny:
        args.runs, args.latency, args.payload_chars = 2_000, 0.05, 1_000
    ours_opts = {
        "slices": args.slices,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "rate": args.rate,
        "level": args.level,
    }
    print(
        f"{args.runs:,} runs/day, ~{args.payload_chars:,} chars of input per run, 1000-run pages, "
        f"{args.latency * 1000:.0f} ms latency, rate limit {args.rate}/10s (simulator and client), "
        f"{args.slices} slices x {args.concurrency} concurrent, {args.workers} worker processes, "
        f"zstd-{args.level}; {os.cpu_count()} cores\n"
    )
    results: dict[str, dict] = {}
    limit = f"{args.rate}/10"
    repeat = max(1, args.repeat)
    with SimulatorProcess(args.runs, args.payload_chars, args.latency, limit) as sim:
        key = {"endpoint": sim.url, "key": sim.key}
        # Ours before and after the baseline, so that the machine's drift during the baseline's long
        # run touches both sides.
        ours = [child("_ours", sim, **key, **ours_opts)]
        fresh = [child("_fresh_memory")["seconds_per_gb"]]
        results["baseline@latency"] = child("_baseline", sim, **key)
        fresh.append(child("_fresh_memory")["seconds_per_gb"])
        ours += [child("_ours", sim, **key, **ours_opts) for _ in range(repeat - 1)]
        results["ours@latency"] = median_run(ours)
    with (
        tempfile.TemporaryDirectory() as pages,
        SimulatorProcess(args.runs, args.payload_chars, 0, limit) as sim,
    ):
        key = {"endpoint": sim.url, "key": sim.key}
        child("_fetch_pages", **key, pages=pages)
        processing: list[dict] = []
        zero: list[dict] = []
        for i in range(repeat):  # interleaved: the two are compared with each other
            processing.append(child("_process_ours", pages=pages, level=args.level))
            if i == 0:
                results["processing/naive"] = child("_process_naive", pages=pages)
            zero.append(child("_ours", sim, **key, **ours_opts))
        results["processing/ours"] = median_run(processing)
        results["ours@0ms"] = median_run(zero)
    results = {name: results[name] for name in ORDER}
    for name, r in results.items():
        show(name, r)
    rate = {name: r["runs_per_s"] for name, r in results.items()}
    print()
    ratios = [
        (
            f"ours / baseline, {args.latency * 1000:.0f} ms pages",
            rate["ours@latency"] / rate["baseline@latency"],
        ),
        ("processing ours / naive", rate["processing/ours"] / rate["processing/naive"]),
    ]
    for label, value in ratios:
        print(f"{label:<34} {value:6.1f}x")
    print(f"{'end to end (0 ms) / processing':<34} {rate['ours@0ms'] / rate['processing/ours']:6.0%}")
    print("(targets: >= 10x, >= 2x, >= 60%)")
    print(
        f"fresh memory: {fresh[0]:.2f} s/GB before the baseline, {fresh[1]:.2f} after (first touch of "
        "new pages: it varies with the host, and the baseline, which holds the day as dicts, feels it most)"
    )
    if args.memory:
        small, big = (5_000, 50_000) if args.tiny else (50_000, 500_000)
        peaks: dict[int, tuple[float, float]] = {}
        for runs in (small, big):
            with SimulatorProcess(runs, args.payload_chars, 0, None) as sim:
                r = child("_ours", sim, endpoint=sim.url, key=sim.key, **{**ours_opts, "rate": 100_000})
                show(f"memory {runs:,}", r)
                peaks[runs] = (r["peak_rss_mb"], r["workers_peak_rss_mb"])
        (parent_s, worker_s), (parent_b, worker_b) = peaks[small], peaks[big]
        print(
            f"peak RSS {big:,} / {small:,} runs: calling process {parent_b / parent_s:.2f}x "
            f"({parent_s:.0f} -> {parent_b:.0f} MB), largest worker {worker_b / worker_s:.2f}x "
            f"({worker_s:.0f} -> {worker_b:.0f} MB); whole export at most "
            f"{parent_b + args.workers * worker_b:,.0f} MB (targets: <= 1.5x, and under 1024 MB)"
        )


if __name__ == "__main__":
    main()
