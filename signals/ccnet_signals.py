"""The seven ccnet_* signals: CCNet's own fields echoed as RPv2 document-level signals.

RPv2 (app/src/core/worker.py, ``Worker.__process_record``) copies ``length``, ``original_length``,
``nlines``, ``original_nlines``, ``language_score`` and ``perplexity`` as floats, and maps ``bucket``
head/middle/tail to 0.0/1.0/2.0 (anything else None). The span is ``(0, len(raw_content))``. A field that
is missing or not a number gives None here (RPv2's reader would reject the whole record).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from signals.document import Document

Spans = list[tuple[int, int, float | int | None]]

_BUCKETS = {"head": 0.0, "middle": 1.0, "tail": 2.0}


def _as_float(value: Any) -> float | None:
    if type(value) is float:
        return value
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _field_signal(field: str) -> Callable[[Document, Mapping[str, Any]], Spans]:
    def signal(doc: Document, record: Mapping[str, Any]) -> Spans:
        return [(0, doc.num_chars, _as_float(record.get(field)))]

    signal.__name__ = f"ccnet_{field}"
    signal.__doc__ = f"CCNet's ``{field}`` as a float (RPv2 ccnet_{field})."
    return signal


ccnet_length = _field_signal("length")
ccnet_original_length = _field_signal("original_length")
ccnet_nlines = _field_signal("nlines")
ccnet_original_nlines = _field_signal("original_nlines")
ccnet_language_score = _field_signal("language_score")
ccnet_perplexity = _field_signal("perplexity")


def ccnet_bucket(doc: Document, record: Mapping[str, Any]) -> Spans:
    """CCNet's perplexity bucket: head 0.0, middle 1.0, tail 2.0, else None (RPv2 _ccnet_bucket_to_int)."""
    bucket = record.get("bucket")
    return [(0, doc.num_chars, _BUCKETS.get(bucket) if isinstance(bucket, str) else None)]


# RPv2 emit order
SIGNALS: dict[str, Callable[[Document, Mapping[str, Any]], Spans]] = {
    "ccnet_length": ccnet_length,
    "ccnet_original_length": ccnet_original_length,
    "ccnet_nlines": ccnet_nlines,
    "ccnet_original_nlines": ccnet_original_nlines,
    "ccnet_language_score": ccnet_language_score,
    "ccnet_perplexity": ccnet_perplexity,
    "ccnet_bucket": ccnet_bucket,
}


def ccnet_signals(doc: Document, record: Mapping[str, Any]) -> dict[str, Spans]:
    """All seven ccnet_* signals in RPv2 emit order (the functions above, without a call each)."""
    end = doc.num_chars
    get = record.get
    bucket = get("bucket")
    return {
        "ccnet_length": [(0, end, _as_float(get("length")))],
        "ccnet_original_length": [(0, end, _as_float(get("original_length")))],
        "ccnet_nlines": [(0, end, _as_float(get("nlines")))],
        "ccnet_original_nlines": [(0, end, _as_float(get("original_nlines")))],
        "ccnet_language_score": [(0, end, _as_float(get("language_score")))],
        "ccnet_perplexity": [(0, end, _as_float(get("perplexity")))],
        "ccnet_bucket": [(0, end, _BUCKETS.get(bucket) if isinstance(bucket, str) else None)],
    }
