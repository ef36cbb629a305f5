"""Finding the pipeline's documents Parquet files: the one place that knows the output layout
``<out>/documents/snapshot=<s>/language=<l>/bucket=<b>/<shard>.parquet`` for the dedup steps."""

from __future__ import annotations

from collections.abc import Iterable


def document_files(inputs: Iterable[str]) -> list[str]:
    """The documents Parquet files of each input (a run's output dir, its ``documents/`` dir, or a file),
    sorted and de-duplicated; any Beam filesystem URI."""
    import posixpath

    from apache_beam.io.filesystems import FileSystems

    found: set[str] = set()
    for uri in inputs:
        root = uri.rstrip("/")
        if root.endswith(".parquet"):
            found.update(m.path for r in FileSystems.match([root]) for m in r.metadata_list)
            continue
        for base in (posixpath.join(root, "documents"), root):
            pattern = posixpath.join(base, "snapshot=*", "language=*", "bucket=*", "*.parquet")
            matched = [m.path for r in FileSystems.match([pattern]) for m in r.metadata_list]
            if matched:
                found.update(matched)
                break
    return sorted(found)
