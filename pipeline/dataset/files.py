"""Reading documents files back with their partition columns (which live only in directory names)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def read_documents_file(source: Any, path: str | None = None, columns: Sequence[str] | None = None) -> Any:
    """One documents Parquet file as a pyarrow Table with its partition columns (snapshot, language,
    bucket) restored from the path, placed where the document model has them.

    ``source`` is a path or an open file; ``path`` names it when ``source`` is a file object. Only the
    requested ``columns`` are read (partition columns among them come from the path).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.dataset.layout import partition_values
    from pipeline.dataset.schema import PARTITION_COLUMNS

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


def read_documents(paths: Iterable[str]) -> Any:
    """Read output files back into one table (tests, reports), partition columns restored from paths."""
    import pyarrow as pa

    return pa.concat_tables([read_documents_file(p) for p in paths])
