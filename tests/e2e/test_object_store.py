"""The export on a real S3-compatible server (moto in server mode, over loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
from dagster import DagsterInstance, materialize
from moto.server import ThreadedMotoServer

from assets.runs import runs
from pipelines.definitions import ASSETS
from pipelines.dictionary import TABLES
from pipelines.simulator import Simulator
from pipelines.sink import ParquetSink
from tests.conftest import FIRST_DAY, resources_for

BUCKET = "lake"
RANGE = {
    "dagster/asset_partition_range_start": FIRST_DAY.isoformat(),
    "dagster/asset_partition_range_end": (FIRST_DAY + timedelta(days=2)).isoformat(),
}


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
        }.items():
            mp.setenv(name, value)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    server.stop()


def read_table(root: str, table: str) -> list[tuple]:
    """A table as a BI tool would load it (Hive partitions), minus the export timestamps, sorted."""
    fs, path = pafs.FileSystem.from_uri(root) if "://" in root else (pafs.LocalFileSystem(), root)
    data = ds.dataset(f"{path}/{table}", filesystem=fs, format="parquet", partitioning="hive").to_table()
    keep = [c for c in data.column_names if c not in ("exported_at", "snapshot_at")]
    return sorted(data.select(keep).to_pylist(), key=repr)  # type: ignore[arg-type]


def test_s3_export_equals_the_local_export_row_for_row(
    s3: str, api_env: Simulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    local = tmp_path / "local"
    remote = f"s3://{BUCKET}/exports/langsmith"
    for root in (str(local), remote):
        result = materialize(ASSETS, resources=resources_for(api_env, root), instance=instance, tags=RANGE)  # type: ignore[arg-type]
        assert result.success
        assert all(c.passed for c in result.get_asset_check_evaluations())
    for doc in TABLES:
        if doc.name == "_rejected":
            continue
        remote_rows = read_table(remote, doc.name)
        assert remote_rows, doc.name
        assert remote_rows == read_table(str(local), doc.name), doc.name
    objects = boto3.client("s3", endpoint_url=s3).list_objects_v2(Bucket=BUCKET, Prefix="exports/")
    keys = [o["Key"] for o in objects.get("Contents", [])]
    # Arrow's S3 filesystem keeps empty "directory" marker objects (keys ending in /); data must not stay.
    assert not [k for k in keys if "/_staging/" in k and not k.endswith("/")], "staged data left behind"
    assert all(k.endswith(".parquet") for k in keys if "/_staging/" not in k)


def test_an_interrupted_s3_rewrite_converges_to_one_copy(
    s3: str, api_env: Simulator, tmp_path: Path, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = f"s3://{BUCKET}/interrupted"
    key = FIRST_DAY.isoformat()
    resources = resources_for(api_env, remote)  # type: ignore[arg-type]
    assert materialize([runs], partition_key=key, resources=resources, instance=instance).success
    expected = read_table(remote, "runs")

    # Die after the new objects are in place but before the old ones are removed.
    def interrupted(self: ParquetSink, staged: str | None, final: str) -> None:
        for info in self.list_files(staged) if staged else []:
            self.fs.move(info.path, f"{final}/{self.write_id}-{info.base_name}")
        raise KeyboardInterrupt("killed between the moves and the deletes")

    with monkeypatch.context() as mp:
        mp.setattr(ParquetSink, "_replace_objects", interrupted)
        failed = materialize(
            [runs], partition_key=key, resources=resources, instance=instance, raise_on_error=False
        )
        assert not failed.success
    doubled = read_table(remote, "runs")
    assert len(doubled) == 2 * len(expected)  # what a reader sees in that window: both versions

    assert materialize([runs], partition_key=key, resources=resources, instance=instance).success
    assert read_table(remote, "runs") == expected


def test_a_failed_s3_write_never_removes_the_old_objects(s3: str, tmp_path: Path) -> None:
    schema = pa.schema([pa.field("id", pa.string())])
    sink = ParquetSink(f"s3://{BUCKET}/failed")
    first = sink.begin("t", schema, "d", "2024-01-01")
    first.write("p.parquet", pa.table({"id": ["a", "b"]}, schema=schema))
    first.commit()
    second = sink.begin("t", schema, "d", "2024-01-01")
    second.write("p.parquet", pa.table({"id": ["x"]}, schema=schema))
    second.abort()
    sink.close()
    assert [r["id"] for r in read_table(f"s3://{BUCKET}/failed", "t")] == ["a", "b"]
