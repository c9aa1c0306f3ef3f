"""The one Definitions loads, and every job and schedule resolves (a moved file fails loudly)."""

from __future__ import annotations

from pipelines.definitions import defs


def test_every_job_and_schedule_resolves() -> None:
    repo = defs.get_repository_def()
    jobs = [job.name for job in repo.get_all_jobs() if not job.name.startswith("__")]
    assert "export_runs" in jobs
    for name in jobs:
        assert defs.resolve_job_def(name) is not None
    schedules = list(repo.schedule_defs)
    assert schedules
    for schedule in schedules:
        assert defs.resolve_schedule_def(schedule.name).cron_schedule
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert {"runs", "run_feedback_stats"} <= keys
