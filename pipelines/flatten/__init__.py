"""Flattening: typed LangSmith records → declared Arrow tables, one module per table family."""

from pipelines.flatten.runs import RUN_FEEDBACK_STATS, RUNS, flatten_run_feedback_stats, flatten_runs

__all__ = ["RUNS", "RUN_FEEDBACK_STATS", "flatten_run_feedback_stats", "flatten_runs"]
