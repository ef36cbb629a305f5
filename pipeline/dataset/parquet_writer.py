"""Parquet output: one file per (snapshot, language, bucket, shard), written atomically.

Layout (ARCHITECTURE.md, contract), hive-partitioned so DuckDB, Polars, Spark and pyarrow.dataset prune
by directory::

    <out>/documents/snapshot=<id>/language=<lang>/bucket=<head|middle|tail|all>/<shard:04d>.parquet

A shard's rows are streamed into local temporary Parquet files (bounded memory: a row group at a time),
then each file is published to its final place through Beam's FileSystems (local, gs://, s3://...) under
a hidden temporary name and renamed, so a reader never sees a half-written file and a retried shard
replaces its earlier output whole. The bytes depend only on the rows: zstd, fixed row-group sizes (by
row count and text size, both properties of the data), and no timestamps in the file metadata.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.dataset.completion import local_file_digest
from pipeline.dataset.layout import shard_file_path
from pipeline.io.publish import PARQUET_COMPRESSION, publish_file

ROW_GROUP_ROWS = 2_000
ROW_GROUP_TEXT_BYTES = 64 * 1024 * 1024  # flush early for shards of huge pages



class ShardParquetWriter:
    """Streams one shard's output rows into one Parquet file per (language, bucket).

    Rows must arrive in the order they should be stored (the shard's input order); ``close()``
    publishes every file and returns ``{(language, bucket): (final path, rows)}``. Use as a context
    manager: leaving with an exception discards the local files and publishes nothing.
    """

    def __init__(
        self,
        output_root: str,
        snapshot: str,
        shard: int,
        schema: pa.Schema,
        *,
        work_dir: str | None = None,
        row_group_rows: int = ROW_GROUP_ROWS,
        row_group_text_bytes: int = ROW_GROUP_TEXT_BYTES,
    ) -> None:
        self.output_root = output_root
        self.snapshot = snapshot
        self.shard = shard
        self.schema = schema
        self.row_group_rows = row_group_rows
        self.row_group_text_bytes = row_group_text_bytes
        self._tmp = tempfile.mkdtemp(prefix=f"rpv2-shard{shard:04d}-", dir=work_dir)
        self._writers: dict[tuple[str, str], pq.ParquetWriter] = {}
        self._buffers: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        self._buffer_bytes: dict[tuple[str, str], int] = {}
        self._rows: dict[tuple[str, str], int] = {}
        self.file_digests: dict[str, tuple[int, str]] = {}  # published path -> (bytes, sha256)

    def __enter__(self) -> ShardParquetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            return
        self.abort()

    def rows_written(self, language: str, bucket: str) -> int:
        """Rows already given for (language, bucket): the next row's index in its file."""
        return self._rows.get((language, bucket), 0)

    def write(self, language: str, bucket: str, row: Mapping[str, Any]) -> None:
        key = (language, bucket)
        self._buffers.setdefault(key, []).append(row)
        self._rows[key] = self._rows.get(key, 0) + 1
        size = len(row.get("raw_content") or "")
        self._buffer_bytes[key] = self._buffer_bytes.get(key, 0) + size
        if len(self._buffers[key]) >= self.row_group_rows or self._buffer_bytes[key] >= self.row_group_text_bytes:
            self._flush(key)

    def _flush(self, key: tuple[str, str]) -> None:
        rows = self._buffers.get(key)
        if not rows:
            return
        writer = self._writers.get(key)
        if writer is None:
            path = os.path.join(self._tmp, f"{key[0]}_{key[1]}.parquet")
            writer = pq.ParquetWriter(path, self.schema, compression=PARQUET_COMPRESSION)
            self._writers[key] = writer
        table = pa.Table.from_pylist(rows, schema=self.schema)
        writer.write_table(table, row_group_size=len(rows))
        self._buffers[key] = []
        self._buffer_bytes[key] = 0

    def close(self) -> dict[tuple[str, str], tuple[str, int]]:
        """Flush, publish every file atomically (in sorted key order) and clean up."""
        published: dict[tuple[str, str], tuple[str, int]] = {}
        try:
            for key in sorted(self._buffers):
                self._flush(key)
            for key in sorted(self._writers):
                self._writers[key].close()
            for key in sorted(self._writers):
                language, bucket = key
                destination = shard_file_path(self.output_root, self.snapshot, language, bucket, self.shard)
                local = os.path.join(self._tmp, f"{language}_{bucket}.parquet")
                self.file_digests[destination] = local_file_digest(local)  # (bytes, sha256) for the record
                publish_file(local, destination)
                published[key] = (destination, self._rows[key])
        finally:
            self._writers.clear()
            shutil.rmtree(self._tmp, ignore_errors=True)
        return published

    def abort(self) -> None:
        """Discard everything written so far; nothing is published."""
        for writer in self._writers.values():
            try:
                writer.close()
            except Exception:  # best effort on the error path
                pass
        self._writers.clear()
        self._buffers.clear()
        shutil.rmtree(self._tmp, ignore_errors=True)
