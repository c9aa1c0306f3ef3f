"""Rendering the world's canonical records as the API sends them (v2: uppercase, numbers; v1: strings)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pipelines.simulator.world import Project, Run, World, rfc3339

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
