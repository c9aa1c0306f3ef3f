"""Rendering the world's canonical records as the API sends them (v2: uppercase, numbers; v1: strings)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pipelines.simulator.world import Example, Feedback, Project, Run, World, rfc3339

_SUM_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _details_v2(details: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if details is None else {"raw": dict(details)}


def run_v2(run: Run) -> dict[str, Any]:
    """Every v2 key, keyed by its lowercase select name; costs as Decimals (encoded as JSON numbers)."""
    latency = None if run.end_us is None else (run.end_us - run.start_us) / 1_000_000
    return {
        "id": run.id,
        "trace_id": run.trace_id,
        "project_id": run.session_id,
        "name": run.name,
        "run_type": run.run_type.upper(),
        "status": run.status.upper(),
        "start_time": rfc3339(run.start_us),
        "end_time": rfc3339(run.end_us),
        "first_token_time": rfc3339(run.first_token_us),
        "latency_seconds": latency,
        "error": run.error,
        "error_preview": None if run.error is None else run.error[:100],
        "extra": {"metadata": run.metadata, "runtime": {"sdk": "langsmith-py", "sdk_version": "0.4.1"}},
        "metadata": run.metadata,
        "events": [{"name": "start", "time": rfc3339(run.start_us)}]
        + ([] if run.end_us is None else [{"name": "end", "time": rfc3339(run.end_us)}]),
        "inputs": run.inputs,
        "inputs_preview": str(next(iter(run.inputs.values()), ""))[:100],
        "outputs": run.outputs,
        "outputs_preview": None if run.outputs is None else str(next(iter(run.outputs.values()), ""))[:100],
        "manifest": None,
        "parent_run_ids": run.parent_run_ids,
        "thread_id": run.thread_id,
        "dotted_order": run.dotted_order,
        "is_root": not run.parent_run_ids,
        "is_in_dataset": False,
        "reference_example_id": run.reference_example_id,
        "reference_dataset_id": run.reference_dataset_id,
        "price_model_id": run.price_model_id,
        "total_tokens": run.total_tokens,
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "total_cost": run.total_cost,
        "prompt_cost": run.prompt_cost,
        "completion_cost": run.completion_cost,
        "prompt_token_details": _details_v2(run.prompt_token_details),
        "completion_token_details": _details_v2(run.completion_token_details),
        "prompt_cost_details": _details_v2(run.prompt_cost_details),
        "completion_cost_details": _details_v2(run.completion_cost_details),
        "tags": run.tags,
        "app_path": f"/o/sim/projects/p/{run.session_id}/r/{run.id}",
        "attachments": {},
        "thread_evaluation_time": None,
        "last_queued_at": None,
        "share_url": None,
        "feedback_stats": run.feedback_stats,
    }


def money_v1(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def session_v1(world: World, project: Project, *, include_stats: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": project.id,
        "tenant_id": world.config.tenant_id,
        "name": project.name,
        "description": project.description,
        "start_time": rfc3339(project.start_us),
        "end_time": None,
        "extra": project.extra or None,
        "default_dataset_id": None,
        "reference_dataset_id": project.reference_dataset_id,
        "trace_tier": "longlived",
    }
    if include_stats:
        runs = [r for day in world.day_range for r in world.day(day)[project.id]]
        latencies = sorted((r.end_us - r.start_us) / 1e6 for r in runs if r.end_us is not None)
        tokens = {f: sum(getattr(r, f) or 0 for r in runs) for f in _SUM_FIELDS}
        costs = {
            f: sum(((getattr(r, f) or Decimal(0)) for r in runs), Decimal(0))
            for f in ("total_cost", "prompt_cost", "completion_cost")
        }
        body.update(
            run_count=len(runs),
            latency_p50=latencies[len(latencies) // 2] if latencies else None,
            latency_p99=latencies[int(len(latencies) * 0.99)] if latencies else None,
            first_token_p50=None,
            first_token_p99=None,
            **tokens,
            **{k: money_v1(v) for k, v in costs.items()},
            last_run_start_time=rfc3339(max((r.start_us for r in runs), default=None)),
            last_run_start_time_live=None,
            feedback_stats={"correctness": {"n": 3, "avg": "0.6667", "stdev": 0.4714, "errors": 0}},
            session_feedback_stats={"overall": {"n": 1, "avg": 1, "comments": ["ok"]}} if runs else None,
            run_facets=None,
            error_rate=(sum(r.status == "error" for r in runs) / len(runs)) if runs else None,
            streaming_rate=0.0,
            test_run_number=None,
        )
    return body


def feedback_v1(fb: Feedback) -> dict[str, Any]:
    return {
        "id": fb.id,
        "created_at": rfc3339(fb.created_us),
        "modified_at": rfc3339(fb.created_us),
        "key": fb.key,
        "score": fb.score,
        "value": fb.value,
        "comment": fb.comment,
        "correction": fb.correction,
        "feedback_group_id": None,
        "comparative_experiment_id": None,
        "run_id": fb.run_id,
        "session_id": fb.session_id,
        "trace_id": fb.trace_id,
        "start_time": None,
        "is_root": True,
        "feedback_source": fb.source,
        "extra": None,
        "feedback_thread_id": None,
    }


def run_v1(world: World, run: Run) -> dict[str, Any]:
    """A run as the comparison view (examples-with-runs) sends it: lowercase enums, string costs."""
    return {
        "id": run.id,
        "name": run.name,
        "inputs": run.inputs,
        "inputs_preview": None,
        "run_type": run.run_type,
        "start_time": rfc3339(run.start_us),
        "end_time": rfc3339(run.end_us),
        "extra": {"metadata": run.metadata},
        "error": run.error,
        "execution_order": 1,
        "serialized": None,
        "outputs": run.outputs,
        "outputs_preview": None,
        "parent_run_id": run.parent_run_ids[-1] if run.parent_run_ids else None,
        "manifest_id": None,
        "manifest_s3_id": None,
        "events": [{"name": "start", "time": rfc3339(run.start_us)}],
        "tags": run.tags,
        "inputs_s3_urls": None,
        "outputs_s3_urls": None,
        "s3_urls": None,
        "trace_id": run.trace_id,
        "dotted_order": run.dotted_order,
        "trace_min_start_time": rfc3339(run.start_us),
        "trace_max_start_time": rfc3339(run.end_us),
        "session_id": run.session_id,
        "reference_example_id": run.reference_example_id,
        "total_tokens": run.total_tokens,
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "total_cost": money_v1(run.total_cost),
        "prompt_cost": money_v1(run.prompt_cost),
        "completion_cost": money_v1(run.completion_cost),
        "status": run.status,
        "feedback_stats": run.feedback_stats,
        "app_path": f"/o/sim/projects/p/{run.session_id}/r/{run.id}",
        "feedbacks": [feedback_v1(fb) for fb in world.feedback.get(run.id, [])],
    }


def example_v1(world: World, example: Example, runs: list[Run]) -> dict[str, Any]:
    return {
        "id": example.id,
        "dataset_id": example.dataset_id,
        "name": example.name,
        "inputs": example.inputs,
        "outputs": example.outputs,
        "metadata": example.metadata,
        "source_run_id": None,
        "created_at": rfc3339(example.created_us),
        "modified_at": rfc3339(example.created_us),
        "attachment_urls": None,
        "runs": [run_v1(world, r) for r in runs],
    }


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def run_group_stats(runs: list[Run]) -> dict[str, Any]:
    """The aggregate members shared by a group and its per-session stats."""
    latencies = [(r.end_us - r.start_us) / 1e6 for r in runs if r.end_us is not None]
    feedback: dict[str, Any] = {}
    for run in runs:
        for key, entry in (run.feedback_stats or {}).items():
            agg = feedback.setdefault(key, {"n": 0})
            agg["n"] += entry["n"]
    return {
        "count": len(runs),
        "total_tokens": sum(r.total_tokens or 0 for r in runs),
        "prompt_tokens": sum(r.prompt_tokens or 0 for r in runs),
        "completion_tokens": sum(r.completion_tokens or 0 for r in runs),
        "total_cost": money_v1(sum((r.total_cost or Decimal(0) for r in runs), Decimal(0))),
        "prompt_cost": money_v1(sum((r.prompt_cost or Decimal(0) for r in runs), Decimal(0))),
        "completion_cost": money_v1(sum((r.completion_cost or Decimal(0) for r in runs), Decimal(0))),
        "min_start_time": rfc3339(min((r.start_us for r in runs), default=None)),
        "max_start_time": rfc3339(max((r.start_us for r in runs), default=None)),
        "latency_p50": _percentile(latencies, 0.5),
        "latency_p99": _percentile(latencies, 0.99),
        "feedback_stats": feedback,
        "error_rate": (sum(r.status == "error" for r in runs) / len(runs)) if runs else None,
    }
