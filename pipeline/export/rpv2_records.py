"""RPv2's quality-signals record, the one definition shared by `rpv2 signals` and `rpv2 export`.

RPv2's worker (app/src/core/worker.py ``record_data``) writes one JSON object per document::

    {"id", "id_int", "metadata": {cc_segment, cc_net_source, url, source_domain, language, snapshot_id},
     "quality_signals": {name: [[start, end, score], ...]}}

`rpv2 signals` builds it from a CCNet record it has just scored, `rpv2 export` from a row of our Parquet
output; both must produce the same bytes, so the builder and its compact JSON dump live here, in the
export room, and the command imports them (a library does not import a command).
"""

from __future__ import annotations

import json
from typing import Any

try:  # signals/_signals_kernel.c writes the quality_signals object (most of a line) in one C call
    from signals._signals_kernel import signals_json as _signals_json
except ImportError:  # pragma: no cover - built by `pip install -e .`
    _signals_json = None

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_RECORD_KEYS = ["id", "id_int", "metadata", "quality_signals"]


def dumps_signals_record(obj: dict[str, Any]) -> str:
    """One signals line: compact JSON (``","``/``":"``), UTF-8 text unescaped as RPv2 writes it.

    The string ``json.dumps(obj, ensure_ascii=False, separators=(",", ":"))`` gives (``ensure_ascii=True``
    when a string holds a lone surrogate UTF-8 cannot carry). For the record :func:`signals_record` builds,
    the kernel writes the quality signals (hundreds of small spans per document) 3x faster than ``json``;
    tests/unit/test_signals_speed_paths.py checks the bytes are the same.
    """
    if _signals_json is not None and type(obj) is dict and list(obj) == _RECORD_KEYS:
        signals = _signals_json(obj["quality_signals"])
        if signals is not None:
            head = _ENCODER.encode({"id": obj["id"], "id_int": obj["id_int"], "metadata": obj["metadata"]})
            try:
                if not head.isascii():
                    head.encode("utf-8")
                return f'{head[:-1]},"quality_signals":{signals}}}'
            except UnicodeEncodeError:
                pass  # the slow path below escapes it
    return dumps_signals_record_json(obj)


def dumps_signals_record_json(obj: dict[str, Any]) -> str:
    """:func:`dumps_signals_record` with ``json`` alone (the reference; the fallback)."""
    try:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:  # lone surrogates in a string field: escape them, still valid JSON
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":"))


def signals_record(
    record: dict[str, Any], quality_signals: dict[str, list], uri_id: str, row: int, snapshot_id: str | None
) -> dict[str, Any]:
    """RPv2's output record (worker.py ``record_data``) for one input record."""
    from pipeline.dataset.ids import document_id_int

    doc_id = f"{uri_id}/{row}"
    return {
        "id": doc_id,
        "id_int": document_id_int(doc_id),
        "metadata": {
            "cc_segment": record.get("cc_segment"),
            "cc_net_source": uri_id,
            "url": record.get("url"),
            "source_domain": record.get("source_domain"),
            "language": record.get("language"),
            "snapshot_id": snapshot_id,
        },
        "quality_signals": quality_signals,
    }
