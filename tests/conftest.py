"""Shared fixtures: a running simulator over loopback and a Dagster instance in a temp folder."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance

from pipelines.resources import LangSmithResource, ParquetSinkResource
from pipelines.simulator import Simulator, World, WorldConfig

FIRST_DAY = date(2024, 3, 9)


@pytest.fixture(scope="session")
def world() -> World:
    return World(WorldConfig(seed=11, first_day=FIRST_DAY, days=3, projects=3, traces_per_project_day=6))


@pytest.fixture(scope="session")
def simulator(world: World) -> Iterator[Simulator]:
    with Simulator(world) as sim:
        yield sim


@pytest.fixture()
def api_env(simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> Simulator:
    monkeypatch.setenv("LANGSMITH_API_KEY", simulator.api_key)
    monkeypatch.delenv("LANGCHAIN_API_KEY", raising=False)
    monkeypatch.delenv("LANGSMITH_WORKSPACE_ID", raising=False)
    return simulator


@pytest.fixture()
def instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    with DagsterInstance.local_temp(str(home)) as inst:
        yield inst


def resources_for(sim: Simulator, root: Path | str, **langsmith: object) -> dict[str, object]:
    """Resources against the simulator. Runs are exported in the calling process (``workers=0``)
    unless a test asks for worker processes: spawning them costs seconds per materialisation."""
    langsmith.setdefault("workers", 0)
    return {
        "langsmith": LangSmithResource(endpoint=sim.url, **langsmith),  # type: ignore[arg-type]
        "export_root": ParquetSinkResource(root=str(root)),
    }
