"""The one ``Definitions``: assets, jobs, schedules and resources of langsmith-export."""

from __future__ import annotations

from dagster import Definitions

from assets.experiments import experiments
from assets.runs import runs
from assets.sessions import sessions
from pipelines.jobs import JOBS
from pipelines.resources import LangSmithResource, ParquetSinkResource
from pipelines.schedules import SCHEDULES

ASSETS = [sessions, runs, experiments]

RESOURCES = {
    "langsmith": LangSmithResource(),
    "export_root": ParquetSinkResource(),
}

defs = Definitions(
    assets=ASSETS,
    jobs=JOBS,
    schedules=SCHEDULES,
    resources=RESOURCES,
)
