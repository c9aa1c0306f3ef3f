"""The Parquet sink: Hive-partitioned tables, written aside and swapped in whole.

Layout: ``<root>/<table>/<partition_column>=<value>/part-NNNNN.parquet``. A partition is written
into ``<root>/_staging/<write id>/`` first (same filesystem, so renames are atomic), then swapped in:
the old partition directory is renamed into the write's trash, the staged one renamed into place,
and the trash removed. A crash before the swap leaves the old partition untouched; a crash between
the two renames is repaired by ``recover()`` (run at the start of every write), which puts the old
version back. Readers never see a half-written file: files appear only by directory rename.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

STAGING = "_staging"
# Staging folders of crashed writes are removed once this old (a live write is never this old).
STALE_STAGING_SECONDS = 6 * 3600


@dataclass(frozen=True)
class ParquetOptions:
    """How files are written. zstd level 3 compresses JSON text ~20% better than level 1 for ~2x the
    CPU (see shared/performance-notes.md); both are sane, so it is configurable."""

    compression: str = "zstd"
    compression_level: int | None = 3
    row_group_rows: int = 50_000


@dataclass
class PartitionInfo:
    """What a committed partition holds."""

    table: str
    path: str
    files: int
    rows: int
    bytes: int


@dataclass
class StagedPartition:
    """One partition being written aside; ``write`` appends row groups to named files."""

    sink: ParquetSink
    table: str
    schema: pa.Schema
    partition: str
    staged_dir: Path
    final_dir: Path
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
                self.staged_dir.mkdir(parents=True, exist_ok=True)
                options = self.sink.options
                writer = pq.ParquetWriter(
                    self.staged_dir / file_name,
                    self.schema,
                    compression=options.compression,
                    compression_level=options.compression_level,
                    use_dictionary=["run_type", "status", "session_id", "name", "feedback_key"],
                    write_statistics=True,
                    store_schema=True,
                )
                self._writers[file_name] = writer
            self._rows += table.num_rows
        # ParquetWriter is not shared across threads: each slice writes its own file.
        writer.write_table(table, row_group_size=self.sink.options.row_group_rows)

    def commit(self) -> PartitionInfo:
        """Close the files and swap the staged partition in place of the old one."""
        for writer in self._writers.values():
            writer.close()
        files = sorted(self.staged_dir.glob("*.parquet")) if self.staged_dir.exists() else []
        size = sum(f.stat().st_size for f in files)
        self.sink.swap(self.staged_dir if files else None, self.final_dir)
        return PartitionInfo(self.table, str(self.final_dir), len(files), self._rows, size)

    def abort(self) -> None:
        for writer in self._writers.values():
            try:
                writer.close()
            except Exception:  # pragma: no cover - best effort on an error path
                log.debug("closing a writer of an aborted partition failed", exc_info=True)
        shutil.rmtree(self.staged_dir, ignore_errors=True)


class ParquetSink:
    """A local export root (object stores: see the README's scale-out notes)."""

    def __init__(self, root: str | os.PathLike[str], options: ParquetOptions | None = None) -> None:
        self.root = Path(root)
        self.options = options or ParquetOptions()
        self.write_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"
        self._work = self.root / STAGING / self.write_id
        self._lock = threading.Lock()
        self._swaps = 0

    def table_dir(self, table: str) -> Path:
        return self.root / table

    def begin(self, table: str, schema: pa.Schema, partition_column: str, value: str) -> StagedPartition:
        """Start writing ``<table>/<partition_column>=<value>`` aside.

        ``partition_column`` may name several Hive levels (``table=runs/partition``)."""
        self.recover()
        key = f"{partition_column}={value}"
        return StagedPartition(
            sink=self,
            table=table,
            schema=schema,
            partition=key,
            staged_dir=self._work / "new" / table / key,
            final_dir=self.table_dir(table) / key,
        )

    def swap(self, staged: Path | None, final: Path) -> None:
        """Replace ``final`` by ``staged`` (or remove it, when the new version is empty)."""
        with self._lock:
            self._swaps += 1
            trash = self._work / "trash" / str(self._swaps)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                trash.parent.mkdir(parents=True, exist_ok=True)
                # Where it came from, so recover() can put it back if we die before the next rename.
                trash.with_suffix(".target").write_text(str(final.relative_to(self.root)), encoding="utf-8")
                os.rename(final, trash)
            if staged is not None:
                os.rename(staged, final)
            shutil.rmtree(trash, ignore_errors=True)
            trash.with_suffix(".target").unlink(missing_ok=True)

    def recover(self) -> None:
        """Undo a swap interrupted between its two renames; drop stale staging of crashed writes."""
        base = self.root / STAGING
        if not base.exists():
            return
        now = time.time()
        for work in base.iterdir():
            trash = work / "trash"
            # A live swap holds its trash for microseconds; only a dead write's trash is this old.
            if work != self._work and trash.exists() and now - trash.stat().st_mtime > 60:
                for target in trash.glob("*.target"):
                    old = target.with_suffix("")
                    final = self.root / target.read_text(encoding="utf-8")
                    if old.exists() and not final.exists():
                        log.warning("restoring %s from an interrupted swap", final)
                        final.parent.mkdir(parents=True, exist_ok=True)
                        os.rename(old, final)
            if work != self._work and now - work.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(work, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self._work, ignore_errors=True)
        with contextlib.suppress(OSError):  # other writers' staging may still be there
            (self.root / STAGING).rmdir()
