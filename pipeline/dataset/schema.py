"""The Parquet schema of the pipeline's document output (ARCHITECTURE.md, "Output (contract)").

One row per kept document: CCNet's fields, RPv2's ids, then the quality signals flattened into columns
(a float64 per document-level signal, a list<float64> per line-level signal aligned with ``line_spans``)
and the MinHash bands per similarity threshold as list<binary> columns named as RPv2's minhash parquet
(``signature_sim0.7`` ...). The signal and threshold lists are inputs, so the same builder serves a run
without signals (the CCNet stage alone) and a run with all 45.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import pyarrow as pa

from dedup.minhash import signature_column

# RPv2's MinHash thresholds, in the order RPv2 writes its minhash parquet columns.
MINHASH_THRESHOLDS: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7)

# CCNet's output fields plus RPv2's ids, in CCNet's order (cc_net mine.py / RPv2's InputSpec).
DOCUMENT_FIELDS: tuple[tuple[str, pa.DataType], ...] = (
    ("url", pa.string()),
    ("date_download", pa.string()),
    ("digest", pa.string()),
    ("length", pa.int64()),
    ("nlines", pa.int64()),
    ("source_domain", pa.string()),
    ("title", pa.string()),
    ("raw_content", pa.string()),
    ("cc_segment", pa.string()),
    ("original_nlines", pa.int64()),
    ("original_length", pa.int64()),
    ("line_ids", pa.list_(pa.int64())),
    ("language", pa.string()),
    ("language_score", pa.float64()),
    ("perplexity", pa.float64()),  # null where the language has no LM (bucket "all")
    ("bucket", pa.string()),
    ("id", pa.string()),
    ("id_int", pa.uint64()),
    ("shard_id", pa.string()),
)

# Hive partition keys of the documents dataset (ARCHITECTURE.md). Their values live in the directory
# names only, not inside the files, as Spark and pyarrow's write_dataset lay out a hive dataset: a column
# stored in both places is a type conflict for pyarrow.parquet.read_table and an error for Spark. Read
# single files with pipeline.dataset.files.read_documents_file, which restores them from the path.
PARTITION_COLUMNS: tuple[str, ...] = ("snapshot", "language", "bucket")

LINE_SPAN_TYPE = pa.struct([("start", pa.int64()), ("end", pa.int64())])

# RPv2's line split (Document.raw_lines): every line keeps its trailing "\n"; a last line without one
# is a line too; offsets are code points.
_RPV2_LINE = re.compile(r"([^\n]*\n|[^\n]+$)")


def document_schema(
    doc_signals: Sequence[str] = (),
    line_signals: Sequence[str] = (),
    minhash_thresholds: Sequence[float] = (),
) -> pa.Schema:
    """The output schema for the given document-level and line-level signal names and thresholds.

    ``line_spans`` is present whenever line-level signals are, so that their lists can be read back
    as RPv2's ``[start, end, score]`` triples.
    """
    fields = [pa.field(name, dtype) for name, dtype in DOCUMENT_FIELDS if name not in PARTITION_COLUMNS]
    fields += [pa.field(name, pa.float64()) for name in doc_signals]
    if line_signals:
        fields.append(pa.field("line_spans", pa.list_(LINE_SPAN_TYPE)))
        fields += [pa.field(name, pa.list_(pa.float64())) for name in line_signals]
    fields += [pa.field(signature_column(t), pa.list_(pa.binary())) for t in minhash_thresholds]
    return pa.schema(fields)


def line_spans(text: str) -> list[tuple[int, int]]:
    """RPv2's line spans of ``text``: (start, end) per line, each including its newline."""
    return [m.span() for m in _RPV2_LINE.finditer(text)]


_START_END = itemgetter(0, 1)
_SCORE = itemgetter(2)


def _as_float(value: Any) -> float | None:
    return None if value is None else float(value)


def signal_columns(
    quality_signals: Mapping[str, Sequence[Sequence[Any]]],
    raw_content: str,
    doc_signals: Sequence[str],
    line_signals: Sequence[str],
) -> dict[str, Any]:
    """Flatten RPv2's ``{name: [[start, end, score], ...]}`` into output columns.

    A document-level signal has one span ``[0, len(text)]``: its score becomes the column value. A
    line-level signal becomes the list of its scores in ``line_spans`` order; a span RPv2 does not give
    is null. The only RPv2 span outside the line spans is ``rps_lines_start_with_bulletpoint``'s
    ``[0, 0, null]`` for a text with no lines, which carries no value and is left out.
    """
    columns: dict[str, Any] = {}
    get = quality_signals.get
    for name in doc_signals:
        spans = get(name)
        value = spans[0][2] if spans else None
        columns[name] = None if value is None else float(value)
    if line_signals:
        spans = line_spans(raw_content)
        columns["line_spans"] = [{"start": s, "end": e} for s, e in spans]
        for name in line_signals:
            given = get(name) or ()
            # the usual case, compared and converted by C loops (map) rather than per-span Python
            if len(given) == len(spans) and list(map(_START_END, given)) == spans:
                scores = list(map(_SCORE, given))
                columns[name] = list(map(float, scores)) if None not in scores else list(map(_as_float, scores))
            else:
                by_span = {(g[0], g[1]): g[2] for g in given}
                columns[name] = [_as_float(by_span.get(span)) for span in spans]
    return columns


def minhash_columns(
    bands: Mapping[str, Sequence[bytes] | None] | None, thresholds: Sequence[float]
) -> dict[str, list[bytes] | None]:
    """MinHash bands per threshold as columns, from RPv2's ``compute_banded_signatures`` output
    (``{"signature_sim0.7": [band bytes, ...] | None, ...}``); null where RPv2 gives no signature
    (fewer than 13 normalized words)."""
    columns: dict[str, list[bytes] | None] = {}
    for threshold in thresholds:
        name = signature_column(threshold)
        value = None if bands is None else bands.get(name)
        columns[name] = None if value is None else list(value)
    return columns
