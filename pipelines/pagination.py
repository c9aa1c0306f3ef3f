"""Paginators, one per pagination style, as generators of pages; callers decide what to keep.

Shape after dlt's RESTClient paginators: an initial request, state updated from each response, the
next request derived from the state, and a has-next test. The caller's params and body are copied,
never mutated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pipelines.client import LangSmithClient

P = TypeVar("P")


class _CursorPage(Protocol):
    next_cursor: str | None


CP = TypeVar("CP", bound=_CursorPage)


@dataclass
class CursorPaginator:
    """``POST`` with a JSON body; follows ``next_cursor`` (passed back as ``cursor``) until absent.

    ``before_body``: see ``LangSmithClient.request``."""

    client: LangSmithClient
    path: str
    body: Mapping[str, Any]
    label: str = ""
    before_body: Callable[[], None] | None = None

    def pages(self, decode: Callable[[bytes], CP]) -> Iterator[CP]:
        body = dict(self.body)
        number = 1
        while True:
            page = self.client.request(
                "POST",
                self.path,
                json=body,
                decode=decode,
                what=f"{self.label}page {number}".strip(),
                before_body=self.before_body,
            )
            self.client.stats.add(pages=1)
            cursor = page.next_cursor
            yield page
            del page  # not held while the next one is fetched: the caller may be done with it
            if not cursor:
                return
            body = {**self.body, "cursor": cursor}
            number += 1


@dataclass
class OffsetPaginator:
    """Offset + limit, in the query string (``GET``) or the JSON body (``POST``).

    Stops on a short or empty page. ``count`` tells how many items a decoded page holds.
    """

    client: LangSmithClient
    path: str
    limit: int
    method: str = "GET"
    params: Mapping[str, Any] | None = None
    body: Mapping[str, Any] | None = None

    def pages(self, decode: Callable[[bytes], P], count: Callable[[P], int]) -> Iterator[P]:
        offset = 0
        while True:
            what = f"offset {offset}"
            if self.method == "GET":
                params = {**(self.params or {}), "offset": offset, "limit": self.limit}
                page = self.client.request("GET", self.path, params=params, decode=decode, what=what)
            else:
                body = {**(self.body or {}), "offset": offset, "limit": self.limit}
                page = self.client.request(self.method, self.path, json=body, decode=decode, what=what)
            self.client.stats.add(pages=1)
            n = count(page)
            if n:
                yield page
            if n < self.limit:
                return
            offset += n
