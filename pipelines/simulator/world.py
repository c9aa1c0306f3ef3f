"""The simulator's seeded world: projects with traces of nested runs, generated deterministically.

Every value is derived from the seed, so a test can ask the world itself for the truth (run ids per
day, token and cost sums) and compare it with what the export wrote. Runs are generated day by day
on first use and cached; money is ``Decimal`` end to end.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

US = 1_000_000
DAY_US = 86_400 * US
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# (model, provider, prompt price per token, completion price per token, cache-read price per token)
MODELS = (
    ("gpt-4o-mini", "openai", Decimal("0.00000015"), Decimal("0.0000006"), Decimal("0.000000075")),
    ("claude-3-5-sonnet", "anthropic", Decimal("0.000003"), Decimal("0.000015"), Decimal("0.0000003")),
    # Twelve decimal places: the exactness tests need costs that no float carries faithfully.
    ("o3-mini", "openai", Decimal("0.000001100001"), Decimal("0.0000044"), Decimal("0.00000055")),
)

# Prose-like filler for payloads: compresses like real prompts (~3x with zstd), costs nothing per run.
_WORDS = (
    "the", "model", "answer", "context", "retrieval", "document", "user", "assistant", "system", "tool",
    "call", "result", "query", "token", "latency", "cost", "evaluation", "dataset", "example", "feedback",
    "score", "trace", "span", "chain", "agent", "prompt", "output", "input", "because", "however",
    "therefore", "summary", "analysis", "customer", "support", "order", "refund", "policy", "shipping",
    "account",
)  # fmt: skip
_FILLER = " ".join(random.Random(0).choices(_WORDS, k=400_000))

UNICODE_TEXT = "Grüße aus Köln 👋 — 日本語のテキスト, Ελληνικά, עברית, emoji 🧪🚀, nul:\u0000 ls:\u2028 end"


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_us(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def rfc3339(micros: int | None) -> str | None:
    if micros is None:
        return None
    return from_us(micros).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Run:
    """A run in canonical form; rendered as v2 (uppercase, numbers) or v1 (lowercase, strings)."""

    id: str
    trace_id: str
    session_id: str
    name: str
    run_type: str  # lowercase canonical
    status: str  # lowercase canonical
    start_us: int
    end_us: int | None
    parent_run_ids: list[str]
    dotted_order: str
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    metadata: dict[str, Any]
    tags: list[str]
    error: str | None = None
    thread_id: str | None = None
    first_token_us: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_cost: Decimal | None = None
    completion_cost: Decimal | None = None
    prompt_token_details: dict[str, int] | None = None
    completion_token_details: dict[str, int] | None = None
    prompt_cost_details: dict[str, Decimal] | None = None
    completion_cost_details: dict[str, Decimal] | None = None
    feedback_stats: dict[str, Any] | None = None
    reference_example_id: str | None = None
    reference_dataset_id: str | None = None
    price_model_id: str | None = None

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None and self.completion_tokens is None:
            return None
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)

    @property
    def total_cost(self) -> Decimal | None:
        if self.prompt_cost is None and self.completion_cost is None:
            return None
        return (self.prompt_cost or Decimal(0)) + (self.completion_cost or Decimal(0))

    @property
    def sort_key(self) -> tuple[int, str]:
        return (self.start_us, self.id)

    @property
    def start_date(self) -> date:
        return from_us(self.start_us).date()


@dataclass
class Project:
    id: str
    name: str
    start_us: int
    description: str | None = None
    reference_dataset_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Example:
    id: str
    dataset_id: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    metadata: dict[str, Any]
    created_us: int


@dataclass
class Dataset:
    id: str
    name: str
    examples: list[Example]


@dataclass
class Feedback:
    """A full feedback row (``FeedbackSchema``): score and value of any JSON type the API allows."""

    id: str
    run_id: str
    session_id: str
    trace_id: str
    key: str
    score: float | bool | None
    value: Any
    comment: str | None
    correction: dict[str, Any] | str | None
    source: dict[str, Any] | None
    created_us: int


@dataclass(frozen=True)
class WorldConfig:
    """The size and shape of a simulated workspace."""

    seed: int = 7
    first_day: date = date(2024, 1, 1)
    days: int = 3
    projects: int = 3
    traces_per_project_day: int = 5
    # Extra characters of padding in each run's inputs (benchmarks use it to reach realistic sizes).
    payload_chars: int = 0
    # A lean world (benchmarks): flat traces of one LLM run, no special cases, no experiments.
    lean: bool = False
    datasets: int = 2
    api_key: str = "lsv2_sim_0123456789abcdef"
    tenant_id: str = "00000000-0000-4000-8000-00000000beef"


class World:
    """The seeded workspace the simulator serves."""

    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = config or WorldConfig()
        rng = random.Random(self.config.seed)
        first_us = to_us(datetime.combine(self.config.first_day, datetime.min.time(), tzinfo=UTC))
        self.first_us = first_us
        self.tracing_projects: list[Project] = [
            Project(
                id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                name=name,
                start_us=first_us - DAY_US * (30 - i),
                description=f"Simulated tracing project {name}",
            )
            for i, name in enumerate(
                ["chat-assistant", "rag-pipeline", "support-agent", "batch-summariser", "code-review"][
                    : self.config.projects
                ]
                + [f"project-{i}" for i in range(5, self.config.projects)]
            )
        ]
        self.datasets: list[Dataset] = []
        self.experiments: list[Project] = []
        self.feedback: dict[str, list[Feedback]] = {}  # by run id
        self._experiment_runs: dict[int, list[Run]] = {}  # by day index
        if not self.config.lean:
            self._generate_experiments(rng)
        self.projects: list[Project] = self.tracing_projects + self.experiments
        self._days: dict[int, dict[str, list[Run]]] = {}
        self._lock = threading.Lock()

    # --- generation -------------------------------------------------------------------------------

    def day_index(self, micros: int) -> int:
        return (micros - self.first_us) // DAY_US

    @property
    def day_range(self) -> range:
        return range(self.config.days)

    def day(self, index: int) -> dict[str, list[Run]]:
        """Runs starting on day ``index`` (0-based from ``first_day``), per project, sorted."""
        with self._lock:
            if index not in self._days:
                per_project: dict[str, list[Run]] = {p.id: [] for p in self.projects}
                if 0 <= index < self.config.days:
                    for run in self._generate_day(index):
                        per_project[run.session_id].append(run)
                for run in self._experiment_runs.get(index, []):
                    per_project[run.session_id].append(run)
                for runs in per_project.values():
                    runs.sort(key=lambda r: r.sort_key)
                self._days[index] = per_project
            return self._days[index]

    def _generate_day(self, index: int) -> Iterator[Run]:
        day_start = self.first_us + index * DAY_US
        # Runs of a trace that starts just before midnight land on the next day; the generator of
        # day N yields them, and ``runs_between`` puts them where their start time says.
        for p_index, project in enumerate(self.tracing_projects):
            rng = random.Random(f"{self.config.seed}/{index}/{p_index}")
            n = self.config.traces_per_project_day
            for t in range(n):
                if self.config.lean:
                    start = day_start + (t * DAY_US) // n + rng.randrange(DAY_US // max(n, 1))
                    yield from self._lean_trace(rng, project, start)
                    continue
                if t == 0:
                    start = day_start  # exactly 00:00:00.000000
                elif t == n - 1:
                    start = day_start + DAY_US - 1  # exactly 23:59:59.999999
                else:
                    start = day_start + rng.randrange(DAY_US - 120 * US)
                yield from self._trace(rng, project, start, special=t % 4, index=t)

    def _uuid(self, rng: random.Random) -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def _lean_trace(self, rng: random.Random, project: Project, start: int) -> Iterator[Run]:
        run_id = self._uuid(rng)
        yield self._llm(
            rng,
            project,
            run_id,
            run_id,
            [],
            f"{rfc3339_compact(start)}Z{run_id}",
            start,
            {"messages": [{"role": "user", "content": self._filler(rng, self.config.payload_chars)}]},
        )

    def _filler(self, rng: random.Random, size: int) -> str:
        offset = rng.randrange(len(_FILLER) - size) if size < len(_FILLER) else 0
        return _FILLER[offset : offset + size]

    def _trace(
        self, rng: random.Random, project: Project, start: int, *, special: int, index: int
    ) -> Iterator[Run]:
        root_id = self._uuid(rng)
        root_order = f"{rfc3339_compact(start)}Z{root_id}"
        thread_id = f"thread-{rng.randrange(1000)}" if special != 1 else None
        question = UNICODE_TEXT if special == 2 else f"Question {index} about {project.name}?"
        inputs: dict[str, Any] = {"question": question}
        if special == 3:
            inputs["document"] = "".join(rng.choice("abcdefghij ") for _ in range(50_000))
        if self.config.payload_chars:
            inputs["padding"] = self._filler(rng, self.config.payload_chars)
        pending = index == self.config.traces_per_project_day - 2 and project is self.tracing_projects[0]
        errored = special == 1
        cursor = start + rng.randrange(1, 50_000)
        children: list[Run] = []
        # retriever → llm → tool → (nested) llm
        retriever_id = self._uuid(rng)
        children.append(
            Run(
                id=retriever_id,
                trace_id=root_id,
                session_id=project.id,
                name="vector-search",
                run_type="retriever",
                status="success",
                start_us=cursor,
                end_us=cursor + rng.randrange(10_000, 400_000),
                parent_run_ids=[root_id],
                dotted_order=f"{root_order}.{rfc3339_compact(cursor)}Z{retriever_id}",
                inputs={"query": question},
                outputs={"documents": [{"page_content": "doc", "score": 0.87}]},
                metadata={},
                tags=["retrieval"],
            )
        )
        cursor = children[-1].end_us or cursor
        llm_id = self._uuid(rng)
        children.append(
            self._llm(
                rng,
                project,
                llm_id,
                root_id,
                [root_id],
                f"{root_order}.{rfc3339_compact(cursor)}Z{llm_id}",
                cursor,
                {"messages": [{"role": "user", "content": question}]},
            )
        )
        cursor = children[-1].end_us or cursor
        tool_id = self._uuid(rng)
        tool_order = f"{root_order}.{rfc3339_compact(cursor)}Z{tool_id}"
        tool = Run(
            id=tool_id,
            trace_id=root_id,
            session_id=project.id,
            name="calculator",
            run_type="tool",
            status="error" if errored else "success",
            start_us=cursor,
            end_us=cursor + rng.randrange(1_000, 90_000),
            parent_run_ids=[root_id],
            dotted_order=tool_order,
            inputs={"expression": "6*7"},
            outputs=None if errored else {"result": 42},
            metadata={},
            tags=["tool"],
            error='ZeroDivisionError: division by zero\n  File "calc.py", line 3' if errored else None,
        )
        children.append(tool)
        nested_start = tool.start_us + 500
        nested_id = self._uuid(rng)
        children.append(
            self._llm(
                rng,
                project,
                nested_id,
                root_id,
                [root_id, tool_id],
                f"{tool_order}.{rfc3339_compact(nested_start)}Z{nested_id}",
                nested_start,
                {"messages": [{"role": "system", "content": "You compute."}]},
            )
        )
        end = max(r.end_us or r.start_us for r in children) + rng.randrange(100, 5_000)
        root = Run(
            id=root_id,
            trace_id=root_id,
            session_id=project.id,
            name="agent",
            run_type="chain",
            status="pending" if pending else ("error" if errored else "success"),
            start_us=start,
            end_us=None if pending else end,
            parent_run_ids=[],
            dotted_order=root_order,
            inputs=inputs,
            outputs=None if (pending or errored) else {"answer": f"Answer {index} ✓"},
            metadata={"thread_id": thread_id} if thread_id else {"env": "prod"},
            tags=["production", "v2"] if index % 2 else [],
            thread_id=thread_id,
            error="ToolException: calculator failed" if errored else None,
            feedback_stats=self._feedback_stats(rng, index),
        )
        if pending:
            for child in children:
                child.end_us = None
                child.status = "pending"
                child.outputs = None
                child.prompt_cost = child.completion_cost = None
                child.prompt_tokens = child.completion_tokens = None
                child.prompt_token_details = child.completion_token_details = None
                child.prompt_cost_details = child.completion_cost_details = None
        yield root
        yield from children

    def _llm(
        self,
        rng: random.Random,
        project: Project,
        run_id: str,
        trace_id: str,
        parents: list[str],
        order: str,
        start: int,
        inputs: dict[str, Any],
        model_index: int | None = None,
    ) -> Run:
        pick = rng.randrange(len(MODELS))
        model, provider, p_price, c_price, cache_price = MODELS[pick if model_index is None else model_index]
        prompt = rng.randrange(20, 4000)
        cache_read = rng.randrange(0, prompt // 2 + 1)
        completion = rng.randrange(5, 1200)
        reasoning = rng.randrange(0, completion) if model == "o3-mini" else 0
        first_token = start + rng.randrange(50_000, 900_000)
        prompt_cost = (prompt - cache_read) * p_price + cache_read * cache_price
        return Run(
            id=run_id,
            trace_id=trace_id,
            session_id=project.id,
            name=f"Chat{provider.capitalize()}",
            run_type="llm",
            status="success",
            start_us=start,
            end_us=first_token + rng.randrange(10_000, 3_000_000),
            first_token_us=first_token,
            parent_run_ids=parents,
            dotted_order=order,
            inputs=inputs,
            outputs={"generations": [{"text": "Here is the answer: 42", "type": "ChatGeneration"}]},
            metadata={"ls_model_name": model, "ls_provider": provider, "ls_temperature": 0.2},
            tags=["llm"],
            prompt_tokens=prompt,
            completion_tokens=completion,
            prompt_cost=prompt_cost,
            completion_cost=completion * c_price,
            prompt_token_details={"cache_read": cache_read, "cache_creation": 0, "audio": 0},
            completion_token_details={"reasoning": reasoning, "audio": 0},
            prompt_cost_details={"cache_read": cache_read * cache_price},
            completion_cost_details={"reasoning": reasoning * c_price},
            price_model_id="00000000-0000-4000-8000-0000000000aa",
        )

    def _feedback_stats(self, rng: random.Random, index: int) -> dict[str, Any] | None:
        shape = index % 5
        if shape == 0:
            return None
        if shape == 1:  # numeric scores, every member present
            return {
                "correctness": {
                    "n": 3,
                    "avg": 0.6667,
                    "stdev": 0.4714,
                    "min": 0.0,
                    "max": 1.0,
                    "errors": 0,
                    "values": {},
                    "comments": [],
                    "sources": ["api"],
                }
            }
        if shape == 2:  # categorical: values with counts, avg null
            return {
                "sentiment": {
                    "n": 2,
                    "avg": None,
                    "stdev": None,
                    "values": {"positive": 1, "negative": 1},
                    "sources": [{"type": "app", "user_id": self._uuid(rng), "user_name": "Ana"}],
                }
            }
        if shape == 3:  # comments and mixed sources, some members missing
            return {
                "helpfulness": {
                    "n": 1,
                    "avg": 1,
                    "comments": ["Great answer — 👍"],
                    "sources": ["model", {"type": "api"}],
                },
                "note": {"n": 1},
            }
        return {"thread_quality": {"n": 1, "avg": 0.5, "contains_thread_feedback": True, "errors": 1}}

    def _generate_experiments(self, rng: random.Random) -> None:
        """Datasets of examples, and experiments (sessions with a reference dataset) run on them.

        Every experiment leaves one example out, so some examples have no run in it; each run carries
        feedback of every shape the API allows (numeric, boolean and null scores; numeric, boolean,
        string and object values; string and object corrections; api/app/model sources, with and
        without a user).
        """
        plans = [  # (dataset index, day index, hour, model)
            (0, 0, 9, 0),
            (0, 1, 10, 1),
            (0, 1, 15, 2),
            (1, 0, 11, 0),
            (1, 2, 13, 1),
        ]
        sizes = (8, 5, 6, 4)
        for d in range(self.config.datasets):
            dataset_id = self._uuid(rng)
            examples = [
                Example(
                    id=self._uuid(rng),
                    dataset_id=dataset_id,
                    name=f"#{k + 1}",
                    inputs={"question": f"What is {k} + {k}?" if k != 1 else UNICODE_TEXT},
                    outputs={"answer": str(2 * k)},
                    metadata={"difficulty": "hard" if k % 3 == 0 else "easy", "split": "test"},
                    created_us=self.first_us - 5 * DAY_US + k * US,
                )
                for k in range(sizes[d % len(sizes)])
            ]
            self.datasets.append(Dataset(id=dataset_id, name=f"qa-set-{d + 1}", examples=examples))
        for e_index, (d, day, hour, model_index) in enumerate(plans):
            if d >= len(self.datasets) or day >= self.config.days:
                continue
            dataset = self.datasets[d]
            model = MODELS[model_index][0]
            start = self.first_us + day * DAY_US + hour * 3600 * US + e_index * 7 * US
            experiment = Project(
                id=self._uuid(rng),
                name=f"{dataset.name}-{model}-{e_index}",
                start_us=start,
                description=f"Experiment of {model} on {dataset.name}",
                reference_dataset_id=dataset.id,
                extra={"metadata": {"model": model, "git_sha": f"abc{e_index}"}},
            )
            self.experiments.append(experiment)
            skip = (e_index + 2) % len(dataset.examples)
            for k, example in enumerate(dataset.examples):
                if k == skip:
                    continue
                run_start = start + (k + 1) * 2 * US + 123
                run_id = self._uuid(rng)
                run = self._llm(
                    rng,
                    experiment,
                    run_id,
                    run_id,
                    [],
                    f"{rfc3339_compact(run_start)}Z{run_id}",
                    run_start,
                    dict(example.inputs),
                    model_index=model_index,
                )
                run.name = "target"
                run.reference_example_id = example.id
                run.reference_dataset_id = dataset.id
                run.metadata = {**run.metadata, "model": model, "example_version": "v1"}
                feedbacks = self._feedbacks(rng, run, k)
                self.feedback[run.id] = feedbacks
                run.feedback_stats = _stats_of(feedbacks)
                self._experiment_runs.setdefault(day, []).append(run)

    def _feedbacks(self, rng: random.Random, run: Run, k: int) -> list[Feedback]:
        made = run.end_us or run.start_us
        user = {"type": "app", "user_id": self._uuid(rng), "user_name": "Ana Lima", "ls_user_id": None}
        shapes: list[tuple[str, Any, Any, Any, dict[str, Any] | None, str | None]] = [
            # key, score, value, correction, source, comment
            (
                "correctness",
                [0.0, 0.5, 1.0][k % 3],
                None,
                None,
                {"type": "model", "metadata": {"__run": {"run_id": self._uuid(rng)}}},
                None,
            ),
            ("is_concise", k % 2 == 0, None, None, {"type": "api"}, None),
            ("label", None, ["good", "bad", "needs work — ✍️"][k % 3], None, user, "labelled in the app"),
            (
                "rubric",
                0.5,
                {"clarity": 4, "notes": "ok ✓", "tags": ["a", "b"]},
                None,
                {"type": "model"},
                None,
            ),
        ]
        if k % 3 == 1:
            shapes.append(("human_correction", None, None, "It should say 42", {"type": "app"}, "fix"))
        if k % 3 == 2:
            shapes.append(
                ("human_correction", 0, None, {"answer": str(2 * k), "why": "arithmetic"}, user, None)
            )
        if k % 2 == 1:
            shapes.append(("latency_ok", None, True if k % 4 == 1 else 1.25, None, None, None))
        return [
            Feedback(
                id=self._uuid(rng),
                run_id=run.id,
                session_id=run.session_id,
                trace_id=run.trace_id,
                key=key,
                score=score,
                value=value,
                comment=comment,
                correction=correction,
                source=source,
                created_us=made + (i + 1) * 1000,
            )
            for i, (key, score, value, correction, source, comment) in enumerate(shapes)
        ]

    def example(self, example_id: str) -> Example:
        for dataset in self.datasets:
            for example in dataset.examples:
                if example.id == example_id:
                    return example
        raise KeyError(example_id)

    def experiment_runs(self, session_ids: list[str]) -> list[Run]:
        wanted = set(session_ids)
        return [r for runs in self._experiment_runs.values() for r in runs if r.session_id in wanted]

    # --- queries ---------------------------------------------------------------------------------

    def runs_between(self, project_ids: list[str], min_us: int, max_us: int) -> list[Run]:
        """Runs of these projects with ``min_us <= start <= max_us``, sorted by (start, id)."""
        return self.runs_page(project_ids, min_us, max_us, after=None, descending=False, limit=sys.maxsize)

    def runs_page(
        self,
        project_ids: list[str],
        min_us: int,
        max_us: int,
        *,
        after: tuple[int, str] | None,
        descending: bool,
        limit: int,
    ) -> list[Run]:
        """Up to ``limit`` runs strictly after the cursor key, in (start, id) order or its reverse."""
        wanted = set(project_ids)
        first = max(self.day_index(min_us) - 1, -1)
        last = self.day_index(max_us)
        streams = []
        for index in range(first, last + 1):
            per_project = self.day(index)
            for pid in wanted:
                runs = per_project.get(pid, [])
                lo = bisect.bisect_left(runs, (min_us, ""), key=lambda r: r.sort_key)
                hi = bisect.bisect_right(runs, (max_us, "\U0010ffff"), key=lambda r: r.sort_key)
                if after is not None and not descending:
                    lo = max(lo, bisect.bisect_right(runs, after, key=lambda r: r.sort_key))
                if after is not None and descending:
                    hi = min(hi, bisect.bisect_left(runs, after, key=lambda r: r.sort_key))
                if lo < hi:
                    streams.append(
                        runs[lo:hi] if not descending else runs[hi - 1 : lo - 1 if lo else None : -1]
                    )
        merged = heapq.merge(*streams, key=lambda r: r.sort_key, reverse=descending)
        return list(itertools.islice(merged, limit))

    def runs_on(self, day: date, project_ids: list[str] | None = None) -> list[Run]:
        """The truth for a UTC day: every run whose start time falls on it."""
        start = to_us(datetime.combine(day, datetime.min.time(), tzinfo=UTC))
        ids = project_ids or [p.id for p in self.projects]
        return self.runs_between(ids, start, start + DAY_US - 1)


def rfc3339_compact(micros: int) -> str:
    return from_us(micros).strftime("%Y%m%dT%H%M%S%f")


def _stats_of(feedbacks: list[Feedback]) -> dict[str, Any]:
    """``feedback_stats`` as LangSmith aggregates them: numeric scores averaged, labels counted."""
    stats: dict[str, Any] = {}
    for fb in feedbacks:
        entry = stats.setdefault(fb.key, {"n": 0, "avg": None, "values": {}, "errors": 0, "_scores": []})
        entry["n"] += 1
        if fb.score is not None:
            entry["_scores"].append(float(fb.score))
        if isinstance(fb.value, str):
            entry["values"][fb.value] = entry["values"].get(fb.value, 0) + 1
    for entry in stats.values():
        scores = entry.pop("_scores")
        if scores:
            mean = sum(scores) / len(scores)
            entry["avg"] = mean
            entry["stdev"] = (sum((x - mean) ** 2 for x in scores) / len(scores)) ** 0.5
            entry["min"], entry["max"] = min(scores), max(scores)
    return stats
