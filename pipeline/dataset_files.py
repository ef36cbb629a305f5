"""Finding the pipeline's documents Parquet files: the one place that knows the output layout
``<out>/documents/snapshot=<s>/language=<l>/bucket=<b>/<shard>.parquet`` for the dedup steps."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

_HIVE_SEGMENT = re.compile(r"(?:^|/)([A-Za-z_][A-Za-z0-9_]*)=([^/]+)(?=/)")


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


def partition_values(path: str) -> dict[str, str]:
    """The hive ``key=value`` directory segments of a documents file's path, e.g.
    ``{"snapshot": "2023-06", "language": "en", "bucket": "head"}``."""
    return {key: value for key, value in _HIVE_SEGMENT.findall(path.replace("\\", "/"))}


def read_documents_file(source: Any, path: str | None = None, columns: Sequence[str] | None = None) -> Any:
    """One documents Parquet file as a pyarrow Table with its partition columns (snapshot, language,
    bucket) restored from the path, placed where the document model has them.

    ``source`` is a path or an open file; ``path`` names it when ``source`` is a file object. Only the
    requested ``columns`` are read (partition columns among them come from the path).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.output_schema import PARTITION_COLUMNS

    path = path or str(source)
    values = partition_values(path)
    wanted = None if columns is None else [c for c in columns if c not in PARTITION_COLUMNS]
    table = pq.read_table(source, columns=wanted)
    for name in PARTITION_COLUMNS:
        if name in table.column_names or (columns is not None and name not in columns):
            continue
        if name not in values:
            continue
        column = pa.array([values[name]] * table.num_rows, type=pa.string())
        # language after line_ids and bucket after perplexity, as CCNet's records; snapshot last
        anchor = {"language": "line_ids", "bucket": "perplexity"}.get(name)
        index = table.column_names.index(anchor) + 1 if anchor in table.column_names else table.num_columns
        table = table.add_column(index, name, column)
    return table
