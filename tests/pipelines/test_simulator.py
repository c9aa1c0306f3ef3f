"""The simulator speaks the API as the reference pages describe (checked over real loopback HTTP)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from pipelines.simulator import Simulator, World


@pytest.fixture()
def http(simulator: Simulator):
    with httpx.Client(base_url=simulator.url, headers={"X-API-Key": simulator.api_key}) as client:
        yield client


def body(world: World, **extra: object) -> dict:
    return {
        "project_ids": [p.id for p in world.projects],
        "min_start_time": "2024-03-09T00:00:00Z",
        "max_start_time": "2024-03-09T23:59:59.999999Z",
        **extra,
    }


def test_wrong_key_is_401(simulator: Simulator) -> None:
    response = httpx.get(simulator.url + "/api/v1/sessions", headers={"X-API-Key": "nope"})
    assert response.status_code == 401


def test_422s_are_fastapi_shaped(http: httpx.Client, world: World) -> None:
    too_big = http.post("/api/v2/runs/query", json=body(world, page_size=1001))
    assert too_big.status_code == 422
    assert too_big.json()["detail"][0]["loc"] == ["body", "page_size"]
    both = http.post("/api/v2/runs/query", json=body(world, reference_dataset_id=world.projects[0].id))
    assert both.status_code == 422
    neither = http.post("/api/v2/runs/query", json={"min_start_time": "2024-03-09T00:00:00Z"})
    assert neither.status_code == 422
    assert http.get("/api/v1/sessions", params={"limit": 101}).status_code == 422


def test_only_selected_keys_and_cursor_absent_on_last_page(http: httpx.Client, world: World) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        request = body(world, selects=["ID", "RUN_TYPE", "TOTAL_COST"], page_size=10, sort_order="ASC")
        if cursor:
            request["cursor"] = cursor
        page = http.post("/api/v2/runs/query", json=request).json()
        for item in page["items"]:
            assert set(item) == {"id", "run_type", "total_cost"}
            assert item["run_type"].isupper()
            assert item["total_cost"] is None or isinstance(item["total_cost"], float | int)
            seen.append(item["id"])
        cursor = page.get("next_cursor")
        if cursor is None:
            assert "next_cursor" not in page
            break
    from datetime import date

    assert seen == [r.id for r in world.runs_on(date(2024, 3, 9))]


def test_selects_omitted_returns_only_ids(http: httpx.Client, world: World) -> None:
    page = http.post("/api/v2/runs/query", json=body(world, page_size=3)).json()
    assert all(set(item) == {"id"} for item in page["items"]) and len(page["items"]) == 3


def test_sessions_are_v1_with_string_costs(http: httpx.Client, world: World) -> None:
    sessions = http.get("/api/v1/sessions", params={"include_stats": "true"}).json()
    assert {s["id"] for s in sessions} == {p.id for p in world.projects}
    assert all(isinstance(s["total_cost"], str) for s in sessions)


def test_prerendered_runs_are_served_byte_for_byte_the_same(world: World) -> None:
    from pipelines.records import RUN_SELECTS

    request = body(world, selects=list(RUN_SELECTS), page_size=1000, sort_order="ASC")
    pages = []
    for prerender in (False, True):
        fresh = World(world.config)
        with Simulator(fresh) as sim:
            if prerender:
                assert sim.prerender(RUN_SELECTS) >= 200
                days = [fresh.config.first_day + timedelta(days=i) for i in range(fresh.config.days)]
                assert all("_v2_cache" in vars(run) for day in days for run in fresh.runs_on(day))
            response = httpx.post(
                sim.url + "/api/v2/runs/query", json=request, headers={"X-API-Key": sim.api_key}
            )
            pages.append(response.raise_for_status().content)
    assert pages[0] == pages[1] and b'"items":[{' in pages[0]
