"""Client behaviour against scripted responses (respx): pagination, retries, errors, secrets."""

from __future__ import annotations

import gc
import json
import weakref

import httpx
import pytest
import respx

from pipelines.client import LangSmithClient, RetryPolicy, normalise_endpoint, parse_retry_after
from pipelines.errors import (
    LangSmithAuthError,
    LangSmithNotFoundError,
    LangSmithResponseError,
    LangSmithTransportError,
    LangSmithValidationError,
)
from pipelines.export.common import fetch_sessions
from pipelines.export.runs import RUNS_QUERY_PATH
from pipelines.pagination import CursorPaginator
from pipelines.records import decode_runs_page

BASE = "https://ls.test"
KEY = "lsv2_pt_SECRET_never_print_me"


def make_client(sleeps: list[float] | None = None, attempts: int = 4) -> LangSmithClient:
    recorder = sleeps if sleeps is not None else []
    return LangSmithClient(
        api_key=KEY,
        endpoint=BASE + "/api/v1",
        workspace_id="ws-1",
        retry=RetryPolicy(max_attempts=attempts, base_delay=0.5, max_delay=8),
        sleep=recorder.append,
        seed=1,
    )


def page(ids: list[str], cursor: str | None = None) -> dict:
    body: dict = {"items": [{"id": i, "start_time": "2024-01-01T00:00:00Z"} for i in ids]}
    if cursor:
        body["next_cursor"] = cursor
    return body


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://api.smith.langchain.com", "https://api.smith.langchain.com"),
        ("https://api.smith.langchain.com/", "https://api.smith.langchain.com"),
        ("https://eu.api.smith.langchain.com/api", "https://eu.api.smith.langchain.com"),
        ("https://x.example/api/v1/", "https://x.example"),
        ("http://127.0.0.1:8000/prefix/api/v1", "http://127.0.0.1:8000/prefix"),
    ],
)
def test_endpoint_trailing_api_is_tolerated(given: str, expected: str) -> None:
    assert normalise_endpoint(given) == expected


@respx.mock
def test_cursor_followed_to_the_end_with_filters_repeated() -> None:
    route = respx.post(BASE + RUNS_QUERY_PATH).mock(
        side_effect=[
            httpx.Response(200, json=page(["a", "b"], "c1")),
            httpx.Response(200, json=page(["c"], "c2")),
            httpx.Response(200, json=page(["d"])),
        ]
    )
    body = {
        "project_ids": ["p1"],
        "min_start_time": "2024-01-01T00:00:00.000000Z",
        "max_start_time": "2024-01-01T23:59:59.999999Z",
        "selects": ["ID", "START_TIME"],
        "page_size": 2,
    }
    original = dict(body)
    with make_client() as client:
        pages = list(CursorPaginator(client, RUNS_QUERY_PATH, body).pages(decode_runs_page))
        assert client.stats.pages == 3
    assert [r.id for p in pages for r in p.items] == ["a", "b", "c", "d"]
    sent = [json.loads(call.request.content) for call in route.calls]
    assert [s.get("cursor") for s in sent] == [None, "c1", "c2"]
    for s in sent:
        # every request repeats the whole filter: min/max start time, selects, page size, projects
        assert {k: s[k] for k in original} == original
    assert body == original, "the caller's body must not be mutated"
    headers = route.calls[0].request.headers
    assert headers["X-API-Key"] == KEY
    assert headers["X-Tenant-Id"] == "ws-1"


@respx.mock
def test_401_names_the_variable_and_never_the_key() -> None:
    route = respx.get(BASE + "/api/v1/sessions").mock(
        return_value=httpx.Response(401, json={"detail": f"Invalid token {KEY}"})
    )
    with make_client() as client, pytest.raises(LangSmithAuthError) as caught:
        fetch_sessions(client)
    message = str(caught.value)
    assert "LANGSMITH_API_KEY" in message
    assert KEY not in message and KEY not in repr(caught.value.args)
    assert route.call_count == 1, "a 401 is not retried"


@respx.mock
def test_403_org_scoped_key_asks_for_workspace() -> None:
    respx.get(BASE + "/api/v1/sessions").mock(
        return_value=httpx.Response(403, json={"detail": "org_scoped_key_requires_workspace"})
    )
    with make_client() as client, pytest.raises(LangSmithAuthError, match="LANGSMITH_WORKSPACE_ID"):
        fetch_sessions(client)


@respx.mock
def test_422_and_404_fail_fast_with_the_server_detail() -> None:
    respx.post(BASE + RUNS_QUERY_PATH).mock(
        return_value=httpx.Response(
            422, json={"detail": [{"loc": ["body", "page_size"], "msg": "too big", "type": "x"}]}
        )
    )
    respx.get(BASE + "/api/v1/sessions").mock(return_value=httpx.Response(404, json={"detail": "Not Found"}))
    with make_client() as client:
        with pytest.raises(LangSmithValidationError, match=r"body\.page_size: too big"):
            client.request("POST", RUNS_QUERY_PATH, json={}, decode=decode_runs_page)
        with pytest.raises(LangSmithNotFoundError, match="404"):
            fetch_sessions(client)
        assert client.stats.retries == 0


@respx.mock
def test_429_honours_retry_after_then_succeeds() -> None:
    route = respx.post(BASE + RUNS_QUERY_PATH).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}, json={"detail": "slow down"}),
            httpx.Response(503, json={"detail": "busy"}),
            httpx.Response(200, json=page(["a"])),
        ]
    )
    sleeps: list[float] = []
    with make_client(sleeps) as client:
        result = client.request("POST", RUNS_QUERY_PATH, json={}, decode=decode_runs_page)
        assert client.stats.retries == 2
    assert [r.id for r in result.items] == ["a"]
    assert route.call_count == 3
    assert sleeps[0] == 3.0
    assert 0 <= sleeps[1] <= 1.0  # jittered backoff, attempt 1: uniform(0, 0.5 * 2)


@respx.mock
def test_malformed_body_is_retried_then_raised_not_an_empty_page() -> None:
    respx.post(BASE + RUNS_QUERY_PATH).mock(
        return_value=httpx.Response(200, content=b'{"items": [{"id": "a"')
    )
    with (
        make_client(attempts=3) as client,
        pytest.raises(LangSmithResponseError, match="malformed or truncated"),
    ):
        client.request("POST", RUNS_QUERY_PATH, json={}, decode=decode_runs_page, what="page 7")
    assert client.stats.requests == 3


@respx.mock
def test_dropped_connections_retry_then_fail_with_a_transport_error() -> None:
    route = respx.get(BASE + "/api/v1/sessions").mock(side_effect=httpx.RemoteProtocolError("dropped"))
    with (
        make_client(attempts=3) as client,
        pytest.raises(LangSmithTransportError, match="LANGSMITH_ENDPOINT"),
    ):
        fetch_sessions(client)
    assert route.call_count == 3


@respx.mock
def test_offset_pagination_stops_on_a_short_page() -> None:
    full = [{"id": f"s{i}", "name": f"n{i}"} for i in range(100)]
    route = respx.get(BASE + "/api/v1/sessions").mock(
        side_effect=[httpx.Response(200, json=full), httpx.Response(200, json=[{"id": "last"}])]
    )
    with make_client() as client:
        sessions = fetch_sessions(client).items
    assert [s.id for s in sessions] == [f"s{i}" for i in range(100)] + ["last"]
    offsets = [call.request.url.params["offset"] for call in route.calls]
    assert offsets == ["0", "100"]


def test_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10.0)
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("soon") is None


def test_responses_are_read_in_pieces_of_a_megabyte() -> None:
    """The client raises httpcore's read size (a class attribute): this fails if httpcore renames it,
    and the 64 KB reads (each a trip through the GIL) would silently come back."""
    import httpcore

    import pipelines.client

    assert httpcore.HTTP11Connection.READ_NUM_BYTES == pipelines.client.READ_BYTES == 1 << 20


def test_a_response_is_freed_when_its_request_returns_not_left_to_the_garbage_collector() -> None:
    """httpx's response and its stream refer to each other: left alone, every response (a runs page
    of megabytes) lived until the collector's pass over its generation."""
    statuses = iter([503, 200])
    made: list[weakref.ref[httpx.Response]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        response = httpx.Response(next(statuses), json={"items": [], "next_cursor": None})
        made.append(weakref.ref(response))
        return response

    transport = httpx.MockTransport(handler)
    client = LangSmithClient(api_key=KEY, endpoint=BASE, transport=transport, sleep=lambda _: None)
    gc.disable()
    try:
        with client:
            assert client.request("GET", "/x", decode=json.loads) == {"items": [], "next_cursor": None}
            assert len(made) == 2  # the 503, retried, then the page
            assert [ref() for ref in made] == [None, None]
    finally:
        gc.enable()


def test_a_plain_http_endpoint_loads_no_certificates_and_https_gets_the_default_bundle() -> None:
    import ssl

    from pipelines.client import _verify, tls_context

    plain = _verify("http://127.0.0.1:1984")  # a simulator: no TLS, so no 30-45 ms of loading a bundle
    assert plain.get_ca_certs() == []
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname  # were it used, it trusts nothing
    assert _verify("https://api.smith.langchain.com") is tls_context()
    assert _verify("HTTPS://eu.api.smith.langchain.com") is tls_context()
    assert tls_context().cert_store_stats()["x509_ca"] > 0


class _RecordedBody(httpx.SyncByteStream):
    """A response body that notes when it is read."""

    def __init__(self, events: list[str], content: bytes) -> None:
        self._events = events
        self._content = content

    def __iter__(self):  # type: ignore[no-untyped-def]
        self._events.append("body read")
        yield self._content


def test_before_body_is_called_once_the_headers_are_in_and_before_the_body_is_read() -> None:
    """The runs export takes a place among its waiting pages there: a response beyond them waits
    with its body unread. Not for an error (its body is small and gets no place); again on a retry."""
    events: list[str] = []
    statuses = iter([429, 200, 200])
    bodies = iter([b'{"detail": "slow"}', b'{"items": [{"id": "a"', b'{"items": [{"id": "a"}]}'])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(statuses)
        events.append(f"HTTP {status}")
        body = _RecordedBody(events, next(bodies))
        return httpx.Response(status, headers={"Retry-After": "0"}, stream=body)

    client = LangSmithClient(
        api_key=KEY, endpoint=BASE, transport=httpx.MockTransport(handler), sleep=lambda _: None
    )
    with client:
        page = client.request(
            "POST", RUNS_QUERY_PATH, json={}, decode=decode_runs_page,
            before_body=lambda: events.append("before body"),
        )  # fmt: skip
    assert [r.id for r in page.items] == ["a"]
    assert events == [
        "HTTP 429", "body read",  # an error: read as it comes
        "HTTP 200", "before body", "body read",  # truncated: retried
        "HTTP 200", "before body", "body read",
    ]  # fmt: skip


def test_an_error_raised_before_the_body_stops_the_request_unretried() -> None:
    """A lane that failed raises from ``before_body``: the request ends there, its body unread."""
    events: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        events.append("request")
        return httpx.Response(200, stream=_RecordedBody(events, b'{"items": []}'))

    def fail() -> None:
        raise OSError("the lane failed")

    client = LangSmithClient(api_key=KEY, endpoint=BASE, transport=httpx.MockTransport(handler))
    with client, pytest.raises(OSError, match="the lane failed"):
        client.request("POST", RUNS_QUERY_PATH, json={}, decode=decode_runs_page, before_body=fail)
    assert events == ["request"]
    assert client.stats.retries == 0
