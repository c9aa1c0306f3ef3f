"""The one error tree of langsmith-export, built in one place from a response.

    LangSmithError
    ├── LangSmithTransportError        connect/read failures after retries ran out
    ├── LangSmithResponseError         a 2xx body that is malformed or truncated
    └── LangSmithAPIError              a non-2xx answer (status, detail, path)
        ├── LangSmithAuthError         401/403: wrong key, missing workspace id
        ├── LangSmithNotFoundError     404: unknown dataset or path
        ├── LangSmithValidationError   422: a bad parameter (the server's detail)
        └── LangSmithRateLimitError    429 after retries ran out

No message ever contains the API key: errors are built from the response status, the server's
``detail`` and the request path only, and ``redact`` scrubs any text that is passed through.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec


class LangSmithError(Exception):
    """Base of every error this project raises while talking to LangSmith."""


class LangSmithTransportError(LangSmithError):
    """The request never got an answer (connect error, timeout, dropped connection)."""


class LangSmithResponseError(LangSmithError):
    """A successful status whose body cannot be used (malformed, truncated, wrong shape)."""


class LangSmithAPIError(LangSmithError):
    """A non-2xx answer from the API."""

    def __init__(self, message: str, *, status: int, detail: Any, path: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in a worker process, it must cross back to the parent whole.
        return (_api_error, (type(self), str(self), self.status, self.detail, self.path))


def _api_error(cls: type[LangSmithAPIError], message: str, status: int, detail: Any, path: str) -> Any:
    return cls(message, status=status, detail=detail, path=path)


class LangSmithAuthError(LangSmithAPIError):
    """401 or 403: the key or workspace configuration is wrong."""


class LangSmithNotFoundError(LangSmithAPIError):
    """404: the dataset, session or path does not exist."""


class LangSmithValidationError(LangSmithAPIError):
    """422: the server rejected a parameter."""


class LangSmithRateLimitError(LangSmithAPIError):
    """429 that persisted through every retry."""


def redact(text: str, secret: str | None) -> str:
    """Remove ``secret`` from ``text`` (defence in depth for anything echoed back)."""
    if secret and secret in text:
        return text.replace(secret, "***")
    return text


def _detail_of(response: httpx.Response) -> Any:
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return response.text[:500] or None
    if isinstance(body, dict) and "detail" in body:
        return body["detail"]
    return body


def _format_detail(detail: Any) -> str:
    # FastAPI validation errors: [{"loc": [...], "msg": "...", "type": "..."}]
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []))
                parts.append(f"{loc}: {item.get('msg', '')}".strip(": "))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return "" if detail is None else str(detail)


def error_from_response(response: httpx.Response, *, api_key: str | None = None) -> LangSmithAPIError:
    """Build the right ``LangSmithAPIError`` for a non-2xx response, with what the user should fix."""
    status = response.status_code
    path = response.request.url.path
    detail = _detail_of(response)
    said = redact(_format_detail(detail), api_key)
    where = f"{response.request.method} {path}"
    if status == 401:
        message = (
            f"LangSmith rejected the API key ({where} answered 401: {said or 'unauthorized'}). "
            "Check LANGSMITH_API_KEY (or LANGCHAIN_API_KEY) and LANGSMITH_ENDPOINT."
        )
        return LangSmithAuthError(message, status=status, detail=detail, path=path)
    if status == 403:
        if "org_scoped_key_requires_workspace" in said:
            fix = "This is an organisation-scoped key: set LANGSMITH_WORKSPACE_ID to the workspace to export."
        else:
            fix = "Check that LANGSMITH_API_KEY has access to LANGSMITH_WORKSPACE_ID."
        message = f"LangSmith refused access ({where} answered 403: {said or 'forbidden'}). {fix}"
        return LangSmithAuthError(message, status=status, detail=detail, path=path)
    if status == 404:
        message = (
            f"Not found: {where} answered 404 ({said or 'not found'}). "
            "Check the dataset or session id, and that LANGSMITH_ENDPOINT points at the API root."
        )
        return LangSmithNotFoundError(message, status=status, detail=detail, path=path)
    if status == 422:
        message = f"LangSmith rejected a parameter of {where} (422): {said}"
        return LangSmithValidationError(message, status=status, detail=detail, path=path)
    if status == 429:
        message = f"Rate limited by LangSmith on {where} (429) after all retries: {said}"
        return LangSmithRateLimitError(message, status=status, detail=detail, path=path)
    message = f"LangSmith answered {status} to {where}: {said}"
    return LangSmithAPIError(message, status=status, detail=detail, path=path)
