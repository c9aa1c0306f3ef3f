"""The LangSmith HTTP client: auth headers, timeouts, retries with backoff, a shared rate limiter.

One ``LangSmithClient`` per run, used as a context manager. It is thread-safe: the concurrent slice
fetchers share it (and so share its connection pool, rate limiter and counters).
"""

from __future__ import annotations

import email.utils
import functools
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import httpcore
import httpx
import msgspec

from pipelines.errors import (
    LangSmithError,
    LangSmithResponseError,
    LangSmithTransportError,
    error_from_response,
    redact,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_ENDPOINT = "https://api.smith.langchain.com"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Big pages of runs take a while to produce server-side: generous read timeout, short connect timeout.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def normalise_endpoint(endpoint: str) -> str:
    """Strip a trailing ``/api`` or ``/api/v1`` (as the official SDKs do) and trailing slashes."""
    root = endpoint.strip().rstrip("/")
    for suffix in ("/api/v1", "/api"):
        if root.endswith(suffix):
            root = root[: -len(suffix)]
            break
    return root.rstrip("/")


@dataclass(frozen=True)
class RetryPolicy:
    """Capped, jittered exponential backoff; ``Retry-After`` wins when the server sends one."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        # "Full jitter": uniform in [0, min(cap, base * 2**attempt)].
        return rng.uniform(0, min(self.max_delay, self.base_delay * (2**attempt)))


class RateLimiter:
    """A token bucket shared by every thread of one client: ``requests`` per ``per_seconds``."""

    def __init__(
        self,
        requests: int,
        per_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = (requests, per_seconds)
        self.rate = requests / per_seconds
        self.capacity = float(requests)
        self._tokens = float(requests)
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            self._sleep(wait)


@dataclass
class ClientStats:
    """Counters a materialisation reports as metadata."""

    requests: int = 0
    retries: int = 0
    pages: int = 0
    bytes_received: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass(frozen=True)
class ClientSettings:
    """What it takes to open an equivalent client in another process (a worker of the runs export).

    The key travels with it to the worker (through the process pipe) and is never shown: not in
    ``repr``, not in any log or error.
    """

    api_key: str | None = field(repr=False)
    endpoint: str
    workspace_id: str | None
    timeout: httpx.Timeout | float
    retry: RetryPolicy
    rate: tuple[int, float] | None  # (requests, per seconds) of the rate limiter, if any
    max_connections: int

    def share(self, parts: int) -> ClientSettings:
        """Settings for one of ``parts`` processes that together keep to this rate limit."""
        if self.rate is None or parts <= 1:
            return self
        requests, seconds = self.rate
        return replace(self, rate=(max(1, requests // parts), seconds))

    def open(self) -> LangSmithClient:
        return LangSmithClient(
            api_key=self.api_key,
            endpoint=self.endpoint,
            workspace_id=self.workspace_id,
            timeout=self.timeout,
            retry=self.retry,
            rate_limiter=RateLimiter(*self.rate) if self.rate else None,
            max_connections=self.max_connections,
        )


# httpcore reads a response in 64 KB pieces, each a trip through h11 and the GIL: a 7 MB runs page
# took ~110 of them, and every one waited for the GIL behind a thread busy flattening. 1 MB pieces.
READ_BYTES = 1 << 20
if getattr(httpcore.HTTP11Connection, "READ_NUM_BYTES", READ_BYTES) < READ_BYTES:
    httpcore.HTTP11Connection.READ_NUM_BYTES = READ_BYTES


def _release(response: httpx.Response) -> None:
    """Let a response go by reference counting once its body is read. httpx's response and its
    stream refer to each other (the stream keeps the response), so a response, with the page it
    holds, lived until the garbage collector's next pass over its generation found the cycle."""
    response.stream = httpx.ByteStream(b"")


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's bundle, SSL_CERT_FILE / SSL_CERT_DIR honoured), built
    once per process: loading the certificates takes 30-45 ms, before a client's first request."""
    return httpx.create_ssl_context()


def _verify(endpoint: str) -> ssl.SSLContext:
    """The TLS context for an endpoint: for plain HTTP (a simulator, a deployment inside the network)
    one that trusts no certificate, since none is loaded: it is never used, and costs nothing."""
    if httpx.URL(endpoint).scheme == "http":
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates and host names: all fail
    return tls_context()


class LangSmithClient:
    """Talks to one LangSmith deployment. Use as a context manager."""

    def __init__(
        self,
        *,
        api_key: str | None,
        endpoint: str = DEFAULT_ENDPOINT,
        workspace_id: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
        max_connections: int = 16,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "langsmith-export/0.1"}
        if api_key:
            headers["X-API-Key"] = api_key
        if workspace_id:
            headers["X-Tenant-Id"] = workspace_id
        self.endpoint = normalise_endpoint(endpoint)
        self._api_key = api_key
        self._http = httpx.Client(
            base_url=self.endpoint,
            headers=headers,
            timeout=timeout,
            transport=transport,
            verify=_verify(self.endpoint),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self.retry = retry or RetryPolicy()
        self.rate_limiter = rate_limiter
        # None when a custom transport (a test double) makes the client impossible to reopen elsewhere.
        self.settings = (
            None
            if transport is not None
            else ClientSettings(
                api_key=api_key,
                endpoint=self.endpoint,
                workspace_id=workspace_id,
                timeout=timeout,
                retry=self.retry,
                rate=None if rate_limiter is None else rate_limiter.limit,
                max_connections=max_connections,
            )
        )
        self.stats = ClientStats()
        self._sleep = sleep
        self._rng = random.Random(seed)

    def __enter__(self) -> LangSmithClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        decode: Callable[[bytes], T],
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        what: str = "",
        before_body: Callable[[], None] | None = None,
    ) -> T:
        """Send one request, retrying transient failures, and decode its body with ``decode``.

        ``what`` names the page for error messages (e.g. "page 3"). A body that does not decode is
        retried like a transient fault (a truncated transfer), then raised as ``LangSmithResponseError``.
        ``before_body`` is called when a successful response's headers are in and before its body is
        read (on a retry, again): a caller that bounds the bodies it holds waits there, while the
        body waits in the connection.
        """
        label = f"{method} {path}" + (f" ({what})" if what else "")
        body = None if json is None else msgspec.json.encode(json)
        attempt = 0
        while True:
            if self.rate_limiter is not None:
                self.rate_limiter.acquire()
            self.stats.add(requests=1)
            wait: float | None = None
            reason = ""
            try:
                request = self._http.build_request(
                    method,
                    path,
                    params=params,
                    content=body,
                    headers={"Content-Type": "application/json"} if body is not None else None,
                )
                response = self._http.send(request, stream=True)
                try:
                    if before_body is not None and response.is_success:
                        before_body()
                    response.read()
                finally:
                    response.close()
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                reason = f"{type(exc).__name__}"
                if attempt + 1 >= self.retry.max_attempts:
                    raise LangSmithTransportError(
                        f"{label} failed after {attempt + 1} attempts: {redact(str(exc), self._api_key)}. "
                        f"Check that LANGSMITH_ENDPOINT ({self.endpoint}) is reachable."
                    ) from exc
            else:
                _release(response)  # its body is read: status, headers and content stay
                if response.status_code in RETRY_STATUSES:
                    reason = f"HTTP {response.status_code}"
                    wait = parse_retry_after(response.headers.get("Retry-After"))
                    if attempt + 1 >= self.retry.max_attempts:
                        raise error_from_response(response, api_key=self._api_key)
                elif response.status_code >= 400:
                    raise error_from_response(response, api_key=self._api_key)
                else:
                    content = response.content
                    try:
                        decoded = decode(content)
                    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
                        reason = "malformed body"
                        if attempt + 1 >= self.retry.max_attempts:
                            raise LangSmithResponseError(
                                f"{label}: the response body is malformed or truncated "
                                f"({len(content)} bytes): {exc}"
                            ) from exc
                    else:
                        self.stats.add(bytes_received=len(content))
                        return decoded
            # Retry-After is the server's word and is honoured as sent; our own backoff is capped.
            delay = wait if wait is not None else self.retry.backoff(attempt, self._rng)
            attempt += 1
            self.stats.add(retries=1)
            log.warning(
                "retrying %s after %s: attempt %d of %d in %.2fs",
                label,
                reason,
                attempt + 1,
                self.retry.max_attempts,
                delay,
            )
            self._sleep(delay)


__all__ = [
    "DEFAULT_ENDPOINT",
    "ClientSettings",
    "ClientStats",
    "LangSmithClient",
    "LangSmithError",
    "RateLimiter",
    "RetryPolicy",
    "normalise_endpoint",
    "parse_retry_after",
]
