"""Dagster resources: the LangSmith connection and the Parquet export root.

The API key is never a config value: it is read from ``LANGSMITH_API_KEY`` (or the legacy
``LANGCHAIN_API_KEY``) when a run starts, so it appears in no run config the UI shows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from pipelines.client import DEFAULT_ENDPOINT, LangSmithClient, RateLimiter, RetryPolicy
from pipelines.export.common import fetch_sessions
from pipelines.export.experiments import ExperimentsExportOptions, Grouping
from pipelines.export.runs import RunsExportOptions
from pipelines.records import Decoded, SessionV1
from pipelines.sink import ParquetOptions, ParquetSink

DEFAULT_EXPORT_ROOT = "./langsmith-data"


def env_first(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


class LangSmithResource(ConfigurableResource):
    """Where and how to read LangSmith. Endpoint and workspace default to the SDK's variables."""

    endpoint: str | None = Field(
        default=None,
        description="API root; default LANGSMITH_ENDPOINT, LANGCHAIN_ENDPOINT, then LangSmith Cloud",
    )
    workspace_id: str | None = Field(
        default=None,
        description="Sent as X-Tenant-Id; default LANGSMITH_WORKSPACE_ID / LANGCHAIN_WORKSPACE_ID",
    )
    page_size: int = Field(default=1000, ge=1, le=1000, description="Runs per page of /api/v2/runs/query")
    slices: int = Field(default=32, ge=1, description="Time slices a day is cut into (fetched concurrently)")
    concurrency: int = Field(
        default=32, ge=1, description="Slices fetched at once, over the calling process and its workers"
    )
    workers: int = Field(
        default=1,
        ge=0,
        description=(
            "Processes that fetch, decode, flatten and write runs besides the calling process, which"
            " does its share too; 0: all in the calling process"
        ),
    )
    flush_rows: int = Field(
        default=10_000,
        ge=1,
        description="Runs of a slice per file (per table); pages are written into it as they arrive",
    )
    requests_per_10s: int = Field(
        default=250, ge=1, description="Client-side rate limit (LangSmith Cloud allows ~300 per 10 s per key)"
    )
    max_attempts: int = Field(default=6, ge=1, description="Attempts per request, first included")
    max_backoff_seconds: float = Field(default=30.0, gt=0, description="Cap of one backoff wait")
    include_projects: list[str] = Field(
        default_factory=list, description="Only these sessions (names or ids); empty = all"
    )
    exclude_projects: list[str] = Field(
        default_factory=list, description="Skip these sessions (names or ids)"
    )
    experiment_groupings: list[str] = Field(
        default_factory=lambda: ["run_metadata:ls_model_name"],
        description="Grouped examples-with-runs to export: 'run_metadata:KEY' or 'example_metadata:KEY'",
    )
    examples_page_size: int = Field(default=100, ge=1, description="Examples per page of examples-with-runs")

    # Sessions are fetched once per run (per process) and shared by every asset that needs them.
    _sessions: Decoded[SessionV1] | None = PrivateAttr(default=None)

    def resolved_endpoint(self) -> str:
        return self.endpoint or env_first("LANGSMITH_ENDPOINT", "LANGCHAIN_ENDPOINT") or DEFAULT_ENDPOINT

    @contextmanager
    def client(self) -> Iterator[LangSmithClient]:
        with LangSmithClient(
            api_key=env_first("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"),
            endpoint=self.resolved_endpoint(),
            workspace_id=self.workspace_id or env_first("LANGSMITH_WORKSPACE_ID", "LANGCHAIN_WORKSPACE_ID"),
            retry=RetryPolicy(max_attempts=self.max_attempts, max_delay=self.max_backoff_seconds),
            rate_limiter=RateLimiter(self.requests_per_10s, 10.0),
            max_connections=max(4, self.concurrency * 2),
        ) as client:
            yield client

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._sessions = None

    def sessions(self, client: LangSmithClient) -> Decoded[SessionV1]:
        """Every session with stats, filtered by include/exclude; fetched once per resource instance."""
        if self._sessions is None:
            fetched = fetch_sessions(client, include_stats=True)
            keep = [self.wants(s.id, s.name) for s in fetched.items]
            self._sessions = Decoded(
                [s for s, k in zip(fetched.items, keep, strict=True) if k],
                [u for u, k in zip(fetched.unknown, keep, strict=True) if k] if fetched.unknown else None,
                fetched.rejected,
            )
        return self._sessions

    def experiments_options(self) -> ExperimentsExportOptions:
        return ExperimentsExportOptions(
            examples_page_size=self.examples_page_size,
            groupings=tuple(Grouping.parse(spec) for spec in self.experiment_groupings),
        )

    def runs_options(self) -> RunsExportOptions:
        return RunsExportOptions(
            page_size=self.page_size,
            slices=self.slices,
            concurrency=self.concurrency,
            flush_rows=self.flush_rows,
        )

    def wants(self, session_id: str, name: str | None) -> bool:
        """The include/exclude filters, matching a session by id or name."""
        keys = {session_id, name or ""}
        if self.include_projects and not keys & set(self.include_projects):
            return False
        return not keys & set(self.exclude_projects)


class ParquetSinkResource(ConfigurableResource):
    """Where tables are written and how."""

    root: str | None = Field(
        default=None, description="Export root; default LANGSMITH_EXPORT_ROOT, then ./langsmith-data"
    )
    compression: str = Field(default="zstd", description="Parquet codec")
    compression_level: int = Field(
        default=3, description="zstd level (1 is ~2x faster to write, ~20% larger)"
    )
    row_group_rows: int = Field(default=50_000, ge=1, description="Rows per Parquet row group at most")

    def resolved_root(self) -> str:
        return self.root or env_first("LANGSMITH_EXPORT_ROOT") or DEFAULT_EXPORT_ROOT

    def sink(self) -> ParquetSink:
        return ParquetSink(
            self.resolved_root(),
            ParquetOptions(
                compression=self.compression,
                compression_level=self.compression_level,
                row_group_rows=self.row_group_rows,
            ),
        )
