"""The LangSmith simulator's HTTP server: the API endpoints over loopback, with switchable faults.

Routes (v1 routes also answer without the ``/api/v1`` prefix, as LangSmith Cloud does):
    GET  /info                                   version >= 0.16, so the SDK enables v2 queries
    GET  /api/v1/sessions                        offset/limit (1..100), include_stats
    POST /api/v2/runs/query                      cursor pagination, selects, 422s as FastAPI sends them
    POST /api/v1/datasets/{id}/runs              examples with their runs in the given sessions
    POST /api/v1/datasets/{id}/group/runs        the same, grouped by run or example metadata
"""

from __future__ import annotations

import base64
import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from pipelines.simulator.render import example_v1, run_group_stats, run_v2, session_v1
from pipelines.simulator.world import Dataset, Run, World, WorldConfig, to_us

log = logging.getLogger(__name__)

V2_SELECTS = frozenset(
    (
        "ID",
        "NAME",
        "RUN_TYPE",
        "STATUS",
        "START_TIME",
        "END_TIME",
        "LATENCY_SECONDS",
        "FIRST_TOKEN_TIME",
        "ERROR",
        "ERROR_PREVIEW",
        "EXTRA",
        "METADATA",
        "EVENTS",
        "INPUTS",
        "INPUTS_PREVIEW",
        "OUTPUTS",
        "OUTPUTS_PREVIEW",
        "MANIFEST",
        "PARENT_RUN_IDS",
        "PROJECT_ID",
        "TRACE_ID",
        "THREAD_ID",
        "DOTTED_ORDER",
        "IS_ROOT",
        "REFERENCE_EXAMPLE_ID",
        "REFERENCE_DATASET_ID",
        "TOTAL_TOKENS",
        "PROMPT_TOKENS",
        "COMPLETION_TOKENS",
        "TOTAL_COST",
        "PROMPT_COST",
        "COMPLETION_COST",
        "PROMPT_TOKEN_DETAILS",
        "COMPLETION_TOKEN_DETAILS",
        "PROMPT_COST_DETAILS",
        "COMPLETION_COST_DETAILS",
        "PRICE_MODEL_ID",
        "TAGS",
        "APP_PATH",
        "ATTACHMENTS",
        "THREAD_EVALUATION_TIME",
        "IS_IN_DATASET",
        "SHARE_URL",
        "FEEDBACK_STATS",
        "LAST_QUEUED_AT",
    )
)

_encoder = msgspec.json.Encoder(decimal_format="number")


@dataclass
class Faults:
    """Switchable, deterministic faults for the data endpoints (``/info`` is never faulted).

    Request numbers count data requests from 1. ``error_rate`` draws from a seeded generator, so a
    sequential client sees the same faults every time.
    """

    latency_s: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    retry_after_every: int = 0
    retry_after: str = "1"
    rate_limit: tuple[int, float] | None = None
    truncate_requests: frozenset[int] = frozenset()
    drop_requests: frozenset[int] = frozenset()
    seed: int = 1
    # Schema drift on the runs endpoint: a new key on every run, and a known key of the wrong type.
    new_run_field: str | None = None
    wrongly_typed_runs: frozenset[str] = frozenset()


@dataclass
class _FaultState:
    faults: Faults
    count: int = 0
    window: list[float] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _validation_error(loc: list[Any], msg: str, type_: str = "value_error") -> dict[str, Any]:
    return {"detail": [{"loc": loc, "msg": msg, "type": type_}]}


def _parse_time(value: str | None, default: datetime) -> int:
    if value is None:
        return to_us(default)
    return to_us(datetime.fromisoformat(value.replace("Z", "+00:00")))


def _encode_cursor(run: Run) -> str:
    return base64.urlsafe_b64encode(_encoder.encode([run.start_us, run.id])).decode()


def _decode_cursor(cursor: str) -> tuple[int, str]:
    start, run_id = msgspec.json.decode(base64.urlsafe_b64decode(cursor.encode()))
    return int(start), str(run_id)


class Simulator:
    """A running simulator. ``with Simulator(world) as sim: sim.url``."""

    def __init__(
        self,
        world: World | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
    ) -> None:
        self.world = world or World(WorldConfig())
        self.faults = _FaultState(faults or Faults())
        self.faults.rng.seed(self.faults.faults.seed)
        self.requests: list[tuple[str, str]] = []
        handler = type("Handler", (_Handler,), {"sim": self})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_key(self) -> str:
        return self.world.config.api_key

    def set_faults(self, faults: Faults) -> None:
        self.faults = _FaultState(faults)
        self.faults.rng.seed(faults.seed)

    def start(self) -> Simulator:
        self._thread = threading.Thread(target=self._server.serve_forever, name="langsmith-sim", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def prerender(self, selects: Sequence[str]) -> int:
        """Generate every day and encode its runs for these selects now, so that serving them later
        costs the simulator no rendering (benchmarks: the export is timed, not the simulator's
        first pass). Returns the number of runs."""
        keys = [s.lower() for s in selects]
        runs = [r for i in range(self.world.config.days) for rs in self.world.day(i).values() for r in rs]
        for run in runs:
            _encode_run(run, keys)
        return len(runs)

    # --- fault decisions (called by the handler) -------------------------------------------------

    def next_fault(self) -> tuple[str, Any] | None:
        state = self.faults
        f = state.faults
        with state.lock:
            state.count += 1
            n = state.count
            if f.rate_limit is not None:
                limit, window = f.rate_limit
                now = time.monotonic()
                state.window = [t for t in state.window if now - t < window]
                if len(state.window) >= limit:
                    wait = window - (now - state.window[0])
                    return ("429", f"{max(wait, 0.01):.3f}")
                state.window.append(now)
            if n in f.drop_requests:
                return ("drop", None)
            if n in f.truncate_requests:
                return ("truncate", None)
            if f.retry_after_every and n % f.retry_after_every == 0:
                return ("429", f.retry_after)
            if f.error_rate and state.rng.random() < f.error_rate:
                return ("5xx", f.error_status)
        return None


class _Handler(BaseHTTPRequestHandler):
    sim: Simulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("simulator: " + format, *args)

    # --- plumbing ---------------------------------------------------------------------------------

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = body if isinstance(body, bytes) else _encoder.encode(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return msgspec.json.decode(raw) if raw else None

    def _authorised(self) -> bool:
        if self.headers.get("X-API-Key") == self.sim.api_key:
            return True
        # Echo the rejected key back, as some servers do: the client must never repeat it.
        self._send(401, {"detail": f"Invalid token: {self.headers.get('X-API-Key')}"})
        return False

    def _faulted(self) -> bool:
        """Apply the next fault, if any; True when the request was answered (or dropped)."""
        faults = self.sim.faults.faults
        if faults.latency_s:
            time.sleep(faults.latency_s)
        fault = self.sim.next_fault()
        if fault is None:
            return False
        kind, arg = fault
        if kind == "drop":
            self.close_connection = True
            self.connection.close()
            return True
        if kind == "429":
            self._send(429, {"detail": "Too many requests"}, {"Retry-After": str(arg)})
            return True
        if kind == "5xx":
            self._send(int(arg), {"detail": "Service temporarily unavailable"})
            return True
        self._truncate_next = True
        return False

    def _route(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/")
        if path.startswith("/api/v1/"):
            path = path[len("/api/v1") :]
        return path, parse_qs(parts.query)

    # --- verbs ------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._truncate_next = False
        self.sim.requests.append(("GET", self.path))
        path, query = self._route()
        if path == "/info":
            self._send(
                200,
                {
                    "version": "0.16.40",
                    "license_expiration_time": None,
                    "batch_ingest_config": {},
                    "instance_flags": {},
                },
            )
            return
        if not self._authorised() or self._faulted():
            return
        if path == "/sessions":
            self._sessions(query)
            return
        self._send(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        self._truncate_next = False
        self.sim.requests.append(("POST", self.path))
        path, _ = self._route()
        try:
            body = self._read_body()
        except msgspec.DecodeError:
            self._send(422, _validation_error(["body"], "JSON decode error", "json_invalid"))
            return
        if not self._authorised() or self._faulted():
            return
        if path == "/api/v2/runs/query":
            self._runs_query(body or {})
            return
        parts = path.strip("/").split("/")
        if len(parts) >= 3 and parts[0] == "datasets" and parts[2:] in (["runs"], ["group", "runs"]):
            dataset = next((d for d in self.sim.world.datasets if d.id == parts[1]), None)
            if dataset is None:
                self._send(404, {"detail": f"Dataset {parts[1]} not found"})
            elif parts[2] == "runs":
                self._examples_with_runs(dataset, body or {})
            else:
                self._grouped_examples_with_runs(dataset, body or {})
            return
        self._send(404, {"detail": "Not Found"})

    def _reply(self, body: Any) -> None:
        payload = body if isinstance(body, bytes) else _encoder.encode(body)
        if getattr(self, "_truncate_next", False):
            payload = payload[: max(1, len(payload) // 2)]
        self._send(200, payload)

    # --- endpoints ------------------------------------------------------------------------------

    def _sessions(self, query: dict[str, list[str]]) -> None:
        offset = int(query.get("offset", ["0"])[0])
        limit = int(query.get("limit", ["100"])[0])
        if not 1 <= limit <= 100:
            self._send(
                422,
                _validation_error(
                    ["query", "limit"], "Input should be less than or equal to 100", "less_than_equal"
                ),
            )
            return
        include_stats = query.get("include_stats", ["false"])[0].lower() == "true"
        world = self.sim.world
        projects = list(world.projects)
        if "id" in query:
            wanted = set(query["id"])
            projects = [p for p in projects if p.id in wanted]
        if "reference_free" in query:
            free = query["reference_free"][0].lower() == "true"
            projects = [p for p in projects if (p.reference_dataset_id is None) == free]
        if "name" in query:
            projects = [p for p in projects if p.name == query["name"][0]]
        projects.sort(key=lambda p: (-p.start_us, p.id))
        page = projects[offset : offset + limit]
        self._reply([session_v1(world, p, include_stats=include_stats) for p in page])

    def _runs_query(self, body: dict[str, Any]) -> None:
        page_size = body.get("page_size", 100)
        if not isinstance(page_size, int) or not 1 <= page_size <= 1000:
            self._send(
                422,
                _validation_error(
                    ["body", "page_size"], "Input should be less than or equal to 1000", "less_than_equal"
                ),
            )
            return
        project_ids = body.get("project_ids")
        dataset_id = body.get("reference_dataset_id")
        if bool(project_ids) == bool(dataset_id):
            self._send(
                422,
                _validation_error(
                    ["body"], "Value error, exactly one of project_ids or reference_dataset_id must be set"
                ),
            )
            return
        selects = body.get("selects") or ["ID"]
        unknown = [s for s in selects if s not in V2_SELECTS]
        if unknown:
            self._send(
                422,
                _validation_error(["body", "selects"], f"Input should be a valid select: {unknown}", "enum"),
            )
            return
        world = self.sim.world
        if dataset_id:
            project_ids = [p.id for p in world.projects if p.reference_dataset_id == dataset_id]
        assert isinstance(project_ids, list)
        now = datetime.now(UTC)
        try:
            min_us = _parse_time(body.get("min_start_time"), now - timedelta(days=1))
            max_us = _parse_time(body.get("max_start_time"), now)
            after = _decode_cursor(body["cursor"]) if body.get("cursor") else None
        except (ValueError, TypeError, msgspec.DecodeError):
            self._send(422, _validation_error(["body"], "Invalid time or cursor"))
            return
        descending = str(body.get("sort_order", "DESC")).upper() == "DESC"
        runs = world.runs_page(
            project_ids, min_us, max_us, after=after, descending=descending, limit=page_size + 1
        )
        has_more = len(runs) > page_size
        runs = runs[:page_size]
        keys = [s.lower() for s in selects]
        items = [self._drifted(run, _encode_run(run, keys)) for run in runs]
        tail = b"]"
        if has_more:
            tail += b',"next_cursor":' + _encoder.encode(_encode_cursor(runs[-1]))
        tail += b"}"
        # One join copies the page's megabytes once (the benchmarks run the simulator on the cores
        # they measure): the envelope is added to the first and last items, which are small.
        items = items or [b""]  # no runs: the envelope alone
        items[0] = b'{"items":[' + items[0]
        items[-1] += tail  # the same item as the first when there is one
        self._reply(b",".join(items))

    def _drifted(self, run: Run, encoded: bytes) -> bytes:
        faults = self.sim.faults.faults
        if faults.new_run_field is None and run.id not in faults.wrongly_typed_runs:
            return encoded
        item = msgspec.json.decode(encoded)
        if faults.new_run_field is not None:
            item[faults.new_run_field] = {"added_by": "a newer LangSmith", "n": 1}
        if run.id in faults.wrongly_typed_runs:
            item["total_tokens"] = "a lot"
        return _encoder.encode(item)

    def _session_ids(self, body: dict[str, Any]) -> list[str] | None:
        session_ids = body.get("session_ids")
        if not isinstance(session_ids, list) or not session_ids:
            self._send(
                422,
                _validation_error(
                    ["body", "session_ids"],
                    "List should have at least 1 item after validation, not 0",
                    "too_short",
                ),
            )
            return None
        return [str(s) for s in session_ids]

    def _examples_with_runs(self, dataset: Dataset, body: dict[str, Any]) -> None:
        session_ids = self._session_ids(body)
        if session_ids is None:
            return
        offset = int(body.get("offset") or 0)
        limit = body.get("limit")
        if offset < 0 or (limit is not None and int(limit) < 1):
            self._send(
                422, _validation_error(["body", "limit"], "Input should be greater than or equal to 1")
            )
            return
        world = self.sim.world
        by_example: dict[str, list[Run]] = {}
        for run in world.experiment_runs(session_ids):
            if run.reference_example_id:
                by_example.setdefault(run.reference_example_id, []).append(run)
        examples = sorted(dataset.examples, key=lambda e: (e.created_us, e.id))
        page = examples[offset:] if limit is None else examples[offset : offset + int(limit)]
        self._reply(
            [example_v1(world, e, sorted(by_example.get(e.id, []), key=lambda r: r.sort_key)) for e in page]
        )

    def _grouped_examples_with_runs(self, dataset: Dataset, body: dict[str, Any]) -> None:
        session_ids = self._session_ids(body)
        if session_ids is None:
            return
        group_by = body.get("group_by")
        key = body.get("metadata_key")
        per_group = body.get("per_group_limit", 5)
        limit = body.get("limit", 10)
        offset = body.get("offset", 0)
        if group_by not in ("run_metadata", "example_metadata"):
            self._send(
                422,
                _validation_error(
                    ["body", "group_by"], "Input should be 'run_metadata' or 'example_metadata'", "enum"
                ),
            )
            return
        if not isinstance(key, str) or not key:
            self._send(422, _validation_error(["body", "metadata_key"], "Field required", "missing"))
            return
        if not isinstance(per_group, int) or not 1 <= per_group <= 10:
            self._send(
                422,
                _validation_error(
                    ["body", "per_group_limit"], "Input should be less than or equal to 10", "less_than_equal"
                ),
            )
            return
        if not isinstance(limit, int) or limit < 1 or not isinstance(offset, int) or offset < 0:
            self._send(
                422, _validation_error(["body", "limit"], "Input should be greater than or equal to 1")
            )
            return
        world = self.sim.world
        examples = {e.id: e for e in dataset.examples}
        groups: dict[str, list[Run]] = {}
        for run in world.experiment_runs(session_ids):
            if run.reference_example_id not in examples:
                continue
            meta = run.metadata if group_by == "run_metadata" else examples[run.reference_example_id].metadata
            if key in meta:
                groups.setdefault(str(meta[key]), []).append(run)
        sessions = {p.id: p for p in world.projects}
        out = []
        for group_key in sorted(groups)[offset : offset + limit]:
            runs = groups[group_key]
            by_session: dict[str, list[Run]] = {}
            for run in runs:
                by_session.setdefault(run.session_id, []).append(run)
            example_ids = sorted({r.reference_example_id for r in runs if r.reference_example_id})
            out.append(
                {
                    "filter": f"and(eq(metadata_key, '{key}'), eq(metadata_value, '{group_key}'))",
                    "group_key": group_key,
                    "example_count": len(example_ids),
                    **run_group_stats(runs),
                    "sessions": [
                        {
                            **session_v1(world, sessions[sid], include_stats=False),
                            **run_group_stats(session_runs),
                            "filter": f"eq(session_id, '{sid}')",
                            "example_count": len({r.reference_example_id for r in session_runs}),
                            "run_count": len(session_runs),
                        }
                        for sid, session_runs in sorted(by_session.items())
                    ],
                    "examples": [
                        example_v1(world, examples[eid], [r for r in runs if r.reference_example_id == eid])
                        for eid in example_ids[:per_group]
                    ],
                }
            )
        self._reply({"groups": out})


_FULL_CACHE_ATTR = "_v2_cache"


def _encode_run(run: Run, keys: list[str]) -> bytes:
    """The run's v2 JSON with only the selected keys; cached per run for a repeated key set."""
    cache = run.__dict__.setdefault(_FULL_CACHE_ATTR, {})
    marker = tuple(keys)
    encoded = cache.get(marker)
    if encoded is None:
        full = run_v2(run)
        encoded = _encoder.encode({k: full[k] for k in keys})
        cache.clear()
        cache[marker] = encoded
    return encoded
