"""Reading documents files back with their partition columns (which live only in directory names)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def read_parquet(source: Any, columns: Sequence[str] | None = None, *, missing_ok: bool = False) -> Any:
    """A Parquet file (a path or an open Python file object) as a pyarrow Table, read on the calling
    thread: Arrow's thread pools and pre-buffering are off.

    Why: reading through a Python file object makes every page an ``arrow::py::PyBuffer``; with threads
    or pre-buffering, Arrow's pool threads drop the last references to them after the read returned,
    and ``~PyBuffer`` must take the GIL. If the interpreter is finalizing by then, CPython 3.11 ends that
    thread with ``pthread_exit``, whose unwind hits a noexcept destructor: std::terminate ("terminate
    called without an active exception", exit 134) after all output was written. Reproduced with
    pyarrow 25 alone (6 aborts in 200 runs of read_table(handle) then exit; 0 in 200 with this read).
    ``missing_ok`` reads the columns that exist and leaves the others out.
    """
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source, pre_buffer=False)
    try:
        wanted = None if columns is None else list(columns)
        if wanted is not None and missing_ok:
            names = set(parquet.schema_arrow.names)
            wanted = [c for c in wanted if c in names]
        return parquet.read(columns=wanted, use_threads=False)
    finally:
        parquet.close()


def read_documents_file(source: Any, path: str | None = None, columns: Sequence[str] | None = None) -> Any:
    """One documents Parquet file as a pyarrow Table with its partition columns (snapshot, language,
    bucket) restored from the path, placed where the document model has them.

    ``source`` is a path or an open file; ``path`` names it when ``source`` is a file object. Only the
    requested ``columns`` are read (partition columns among them come from the path).
    """
    import pyarrow as pa

    from pipeline.dataset.layout import partition_values
    from pipeline.dataset.schema import PARTITION_COLUMNS

    path = path or str(source)
    values = partition_values(path)
    wanted = None if columns is None else [c for c in columns if c not in PARTITION_COLUMNS]
    table = read_parquet(source, wanted)
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
