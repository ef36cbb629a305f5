"""The one atomic publish: bytes, local files and Arrow tables to any Beam FileSystems URI.

A writer fills ``.<name>.<uuid>.tmp`` beside the destination, then renames it over the final name, so a
reader never sees half a file and a retried or resumed step replaces earlier output whole. On local
disk the rename is ``os.rename`` (atomic); on gs:// and s3:// Beam's rename is copy-then-delete, and an
object appears whole or not at all, so the guarantee is the same. Hidden names (leading dot) are skipped
by pyarrow.dataset, Spark and DuckDB if a crash leaves a temporary behind.

Beam is imported inside the functions: this module is used by commands whose start-up should not pay
for importing Beam until they write (and by dedup/'s state files, which stay importable without Beam).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from typing import Any

_COPY_CHUNK = 8 * 1024 * 1024
PARQUET_COMPRESSION = "zstd"


def publish(destination: str, write: Callable[[Any], None]) -> None:
    """Write ``destination`` atomically: ``write(sink)`` fills a hidden temporary file beside it, which is
    renamed over the final name (an existing file is replaced)."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    directory, _, name = destination.rstrip("/").rpartition("/")
    temporary = f"{directory}/.{name}.{uuid.uuid4().hex}.tmp" if directory else f".{name}.{uuid.uuid4().hex}.tmp"
    sink = FileSystems.create(temporary, compression_type=CompressionTypes.UNCOMPRESSED)
    try:
        write(sink)
    except BaseException:
        sink.close()
        FileSystems.delete([temporary])
        raise
    sink.close()
    try:
        if not _is_local(destination) and FileSystems.exists(destination):
            FileSystems.delete([destination])  # object stores' copy-rename does not overwrite everywhere
        FileSystems.rename([temporary], [destination])
    except Exception:
        FileSystems.delete([temporary])
        raise


def publish_bytes(data: bytes, destination: str) -> None:
    """Write ``data`` to ``destination`` atomically."""
    publish(destination, lambda sink: sink.write(data))


def publish_file(local_file: str, destination: str) -> None:
    """Copy a finished local file to ``destination`` atomically."""
    with open(local_file, "rb") as src:
        publish(destination, lambda sink: shutil.copyfileobj(src, sink, _COPY_CHUNK))


def publish_table(table: Any, destination: str, **parquet_options: Any) -> None:
    """Write a pyarrow Table as Parquet (zstd unless told otherwise) to ``destination`` atomically."""
    import pyarrow.parquet as pq

    parquet_options.setdefault("compression", PARQUET_COMPRESSION)
    publish(destination, lambda sink: pq.write_table(table, sink, **parquet_options))


def read_bytes(uri: str) -> bytes:
    """A whole file through Beam FileSystems (local, gs://, s3://...)."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(uri) as handle:
        return handle.read()


def exists(uri: str) -> bool:
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.exists(uri)


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def remove_stale_temporaries(root: str) -> int:
    """Delete the hidden ``.<name>.<uuid>.tmp`` files that :func:`publish` left under ``root`` when its
    process was killed between writing and renaming (readers skip them, but they would accumulate and
    a rerun's output would not equal an uninterrupted run's). Returns how many were removed."""
    from apache_beam.io.filesystems import FileSystems

    pattern = f"{root.rstrip('/')}/**.tmp"
    stale = [m.path for r in FileSystems.match([pattern]) for m in r.metadata_list
             if m.path.rsplit("/", 1)[-1].startswith(".")]
    if stale:
        FileSystems.delete(stale)
    return len(stale)
