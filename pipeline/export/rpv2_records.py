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


def dumps_signals_record(obj: dict[str, Any]) -> str:
    """One signals line: compact JSON (``","``/``":"``), UTF-8 text unescaped as RPv2 writes it."""
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
