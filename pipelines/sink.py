"""The Parquet sink: Hive-partitioned tables on a local disk or an object store, replaced whole.

Layout: ``<root>/<table>/<partition_column>=<value>/*.parquet``. A partition is always written into
``<root>/_staging/<write id>/`` first, so a failed write never touches the published partition.

Local disk (atomic): the old partition directory is renamed into the write's trash, the staged one
renamed into place, the trash removed. A crash before the swap leaves the old partition untouched;
a crash between the two renames is repaired by ``recover()`` (run at the start of every write).
Readers never see a mix of versions.

Object stores (``s3://``, ``gs://``; no atomic rename): the staged objects are moved into the
partition under names carrying the write id, then every other object of the partition is deleted.
Between the first move and the last delete, a reader listing the partition can see the old and the
new rows together; the window is the time of those server-side moves and deletes (seconds, not the
export). If a write dies inside it, the next write of that partition removes every object that is
not its own, so it converges to exactly one copy.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipelines.flatten.common import JSON_TEXT

log = logging.getLogger(__name__)

STAGING = "_staging"
# Staging folders of crashed writes are removed once this old (a live write is never this old).
STALE_STAGING_SECONDS = 6 * 3600


@dataclass(frozen=True)
class ParquetOptions:
    """How files are written. zstd level 3 compresses JSON text a little better than level 1 for a
    little more CPU (benchmarks/ and shared/performance-notes.md); configurable either way."""

    compression: str = "zstd"
    compression_level: int | None = 3
    row_group_rows: int = 50_000


@dataclass
class PartitionInfo:
    """What a committed partition holds; ``path`` is within ``filesystem``."""

    table: str
    path: str
    files: int
    rows: int
    bytes: int
    uri: str = ""
    filesystem: pafs.FileSystem | None = field(default=None, repr=False)


def is_json_text(field: pa.Field) -> bool:
    """A column of JSON text (inputs, outputs, metadata, ...), as ``flatten.common.column`` marks it."""
    return (field.metadata or {}).get(JSON_TEXT) == b"true"


def parquet_writer_options(options: ParquetOptions, schema: pa.Schema) -> dict[str, object]:
    """The Parquet writer settings every file of every table is written with.

    Statistics (min, max, null count) for every column a query can prune row groups on, not for JSON
    text: nobody filters on the minimum of the inputs, and comparing kilobytes of JSON that share long
    prefixes cost about a sixth of the runs table's write time.
    """
    return {
        "compression": options.compression,
        "compression_level": options.compression_level,
        "use_dictionary": ["run_type", "status", "session_id", "name", "feedback_key"],
        "write_statistics": [f.name for f in schema if not is_json_text(f)],
        "store_schema": True,
    }


def resolve_root(root: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str, str]:
    """(filesystem, path within it, display URI) for a local path or an ``s3://`` / ``gs://`` URI.

    S3 takes the usual AWS variables (credentials, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` for MinIO or
    other S3-compatible stores); GCS the usual Google credentials.
    """
    text = os.fspath(root)
    if "://" not in text:
        path = os.path.abspath(text)
        return pafs.LocalFileSystem(), path, path
    fs, path = pafs.FileSystem.from_uri(text)
    return fs, path.rstrip("/"), text.rstrip("/")


@dataclass
class StagedPartition:
    """One partition being written aside; ``write`` appends row groups to named files."""

    sink: ParquetSink
    table: str
    schema: pa.Schema
    partition: str
    staged_dir: str
    final_dir: str
    _writers: dict[str, pq.ParquetWriter] = field(default_factory=dict)
    _rows: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, file_name: str, table: pa.Table) -> None:
        """Append ``table`` (exactly the declared schema) to ``file_name`` in this partition."""
        if table.num_rows == 0:
            return
        if not table.schema.equals(self.schema, check_metadata=False):
            raise TypeError(f"{self.table}: table does not match the declared schema:\n{table.schema}")
        with self._lock:
            writer = self._writers.get(file_name)
            if writer is None:
                if self.sink.local:  # object stores need no folders (and would keep marker objects)
                    self.sink.fs.create_dir(self.staged_dir, recursive=True)
                writer = pq.ParquetWriter(
                    f"{self.staged_dir}/{file_name}",
                    self.schema,
                    filesystem=self.sink.fs,
                    **parquet_writer_options(self.sink.options, self.schema),  # type: ignore[arg-type]
                )
                self._writers[file_name] = writer
            self._rows += table.num_rows
        # A ParquetWriter is never shared across threads: each slice writes its own file.
        writer.write_table(table, row_group_size=self.sink.options.row_group_rows)

    def writable_dir(self) -> str:
        """The folder where files written outside ``write`` (e.g. by a worker process) must go."""
        if self.sink.local:
            self.sink.fs.create_dir(self.staged_dir, recursive=True)
        return self.staged_dir

    def add_rows(self, rows: int) -> None:
        with self._lock:
            self._rows += rows

    def commit(self) -> PartitionInfo:
        """Close the files and publish them in place of the old partition."""
        for writer in self._writers.values():
            writer.close()
        staged = self.sink.list_files(self.staged_dir)
        self.sink.publish(self.staged_dir if staged else None, self.final_dir)
        published = self.sink.list_files(self.final_dir)
        return PartitionInfo(
            self.table,
            self.final_dir,
            len(published),
            self._rows,
            sum(f.size or 0 for f in published),
            uri=self.sink.uri_of(self.final_dir),
            filesystem=self.sink.fs,
        )

    def abort(self) -> None:
        for writer in self._writers.values():
            try:
                writer.close()
            except Exception:  # pragma: no cover - best effort on an error path
                log.debug("closing a writer of an aborted partition failed", exc_info=True)
        self.sink.delete_dir(self.staged_dir)


class ParquetSink:
    """An export root: a local folder or an object-store URI."""

    def __init__(self, root: str | os.PathLike[str], options: ParquetOptions | None = None) -> None:
        self.fs, self.root, self.root_uri = resolve_root(root)
        self.local = isinstance(self.fs, pafs.LocalFileSystem)
        self.options = options or ParquetOptions()
        self.write_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"
        self._work = f"{self.root}/{STAGING}/{self.write_id}"
        self._lock = threading.Lock()
        self._swaps = 0

    def uri_of(self, path: str) -> str:
        return self.root_uri + path[len(self.root) :]

    def table_dir(self, table: str) -> str:
        return f"{self.root}/{table}"

    def list_files(self, directory: str) -> list[pafs.FileInfo]:
        infos = self.fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
        return sorted(
            (i for i in infos if i.type == pafs.FileType.File and i.base_name.endswith(".parquet")),
            key=lambda i: i.path,
        )

    def delete_dir(self, directory: str) -> None:
        with contextlib.suppress(FileNotFoundError, OSError):
            self.fs.delete_dir(directory)

    def begin(self, table: str, schema: pa.Schema, partition_column: str, value: str) -> StagedPartition:
        """Start writing ``<table>/<partition_column>=<value>`` aside.

        ``partition_column`` may name several Hive levels (``source=runs/partition``)."""
        self.recover()
        key = f"{partition_column}={value}"
        return StagedPartition(
            sink=self,
            table=table,
            schema=schema,
            partition=key,
            staged_dir=f"{self._work}/new/{table}/{key}",
            final_dir=f"{self.table_dir(table)}/{key}",
        )

    def publish(self, staged: str | None, final: str) -> None:
        """Replace ``final`` by ``staged`` (or remove it, when the new version is empty)."""
        if self.local:
            self._swap_local(staged, final)
        else:
            self._replace_objects(staged, final)

    def _swap_local(self, staged: str | None, final: str) -> None:
        with self._lock:
            self._swaps += 1
            trash = f"{self._work}/trash/{self._swaps}"
            os.makedirs(os.path.dirname(final), exist_ok=True)
            if os.path.exists(final):
                os.makedirs(os.path.dirname(trash), exist_ok=True)
                # Where it came from, so recover() can put it back if we die before the next rename.
                with open(f"{trash}.target", "w", encoding="utf-8") as target:
                    target.write(os.path.relpath(final, self.root))
                os.rename(final, trash)
            if staged is not None:
                os.rename(staged, final)
            self.delete_dir(trash)
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{trash}.target")

    def _replace_objects(self, staged: str | None, final: str) -> None:
        new = set()
        for info in self.list_files(staged) if staged else []:
            target = f"{final}/{self.write_id}-{info.base_name}"
            self.fs.move(info.path, target)  # a server-side copy and a delete on S3 and GCS
            new.add(target)
        for info in self.list_files(final):
            if info.path not in new:
                self.fs.delete_file(info.path)

    def recover(self) -> None:
        """Undo a local swap interrupted between its renames; drop stale staging of crashed writes."""
        base = f"{self.root}/{STAGING}"
        if not self.local or not os.path.isdir(base):
            return
        now = time.time()
        for name in os.listdir(base):
            work = f"{base}/{name}"
            if work == self._work:
                continue
            trash = f"{work}/trash"
            # A live swap holds its trash for microseconds; only a dead write's trash is this old.
            if os.path.isdir(trash) and now - os.stat(trash).st_mtime > 60:
                for entry in os.listdir(trash):
                    if not entry.endswith(".target"):
                        continue
                    old = f"{trash}/{entry[: -len('.target')]}"
                    with open(f"{trash}/{entry}", encoding="utf-8") as target:
                        final = os.path.join(self.root, target.read())
                    if os.path.exists(old) and not os.path.exists(final):
                        log.warning("restoring %s from an interrupted swap", final)
                        os.makedirs(os.path.dirname(final), exist_ok=True)
                        os.rename(old, final)
            if now - os.stat(work).st_mtime > STALE_STAGING_SECONDS:
                self.delete_dir(work)

    def close(self) -> None:
        self.delete_dir(self._work)
        if self.local:
            with contextlib.suppress(OSError):  # other writers' staging may still be there
                os.rmdir(f"{self.root}/{STAGING}")
