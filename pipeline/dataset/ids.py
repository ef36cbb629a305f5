"""RedPajama-V2 names: snapshots, document ids, ``id_int`` and ``shard_id`` (the one home of each).

RPv2 names every document by the CCNet output file it would live in plus its row in that file:
``id = "<snapshot>/<shard:04d>/<lang>_<bucket>.json.gz/<row>"`` (e.g. ``2023-06/0000/en_head.json.gz/17``),
and ``id_int`` is the first 8 bytes of ``sha1(id)`` read little-endian (RPv2's worker,
``int.from_bytes(hashlib.sha1(id.encode()).digest()[:8], "little")``). The ``<shard_id>`` that RPv2
writes beside it (minhash and duplicates parquet files) is the id without its row.

We keep these ids although our files are Parquet, so that RPv2 users can join our output with RPv2's
published signals, minhashes and duplicate lists unchanged. Pure Python: dedup/ imports it too.
"""

from __future__ import annotations

import hashlib
import re

_SNAPSHOT_NAME = re.compile(r"^(?:CC-MAIN-)?(\d{4}-\d{2})$")
# RPv2 finds a snapshot anywhere in an id or path with word boundaries (core/worker.py Worker.snapsh_re,
# bloomfilter.py, ccnet_downloader.py: r'\b\d{4}-\d{2}\b'), so the digits of a longer number or a name
# such as ``run12345-678`` or ``crawl_2023-06`` are not taken for one; its uri_id is the path from there on
# (Worker.uri_id_re).
_SNAPSHOT_IN_ID = re.compile(r"\b\d{4}-\d{2}\b")
_URI_ID_IN_PATH = re.compile(_SNAPSHOT_IN_ID.pattern + "/.*")


def normalize_snapshot(snapshot: str) -> str:
    """``"2023-06"`` or ``"CC-MAIN-2023-06"`` -> ``"CC-MAIN-2023-06"``; ValueError naming the value otherwise."""
    m = _SNAPSHOT_NAME.match(str(snapshot).strip())
    if not m:
        raise ValueError(
            f"invalid snapshot {snapshot!r}: expected CC-MAIN-YYYY-WW (e.g. CC-MAIN-2023-06) "
            "or YYYY-WW (2023-06)"
        )
    return f"CC-MAIN-{m.group(1)}"


def short_snapshot(snapshot: str) -> str:
    """``"CC-MAIN-2023-06"`` or ``"2023-06"`` -> ``"2023-06"``, RPv2's form in ids and partition names."""
    return normalize_snapshot(snapshot)[len("CC-MAIN-") :]


def snapshot_of(doc_id: str | None, fallback: str | None = None) -> str | None:
    """The snapshot in a document or shard id (``2023-06/0000/en_head.json.gz/17`` -> ``2023-06``), found
    as RPv2 finds it; else the one in ``fallback``, else ``fallback`` itself."""
    match = _SNAPSHOT_IN_ID.search(doc_id or "")
    if match:
        return match.group(0)
    if fallback:
        match = _SNAPSHOT_IN_ID.search(fallback)
        return match.group(0) if match else fallback
    return None


def uri_id_of(path: str) -> str | None:
    """RPv2's ``uri_id`` of a documents file: its path from the snapshot directory on
    (``/data/2023-06/0000/en_head.json.gz`` -> ``2023-06/0000/en_head.json.gz``), None without one."""
    match = _URI_ID_IN_PATH.search(path)
    return match.group(0) if match else None


def shard_file_id(snapshot: str, shard: int, language: str, bucket: str) -> str:
    """RPv2's ``shard_id``: ``<snapshot>/<shard:04d>/<lang>_<bucket>.json.gz``."""
    return f"{short_snapshot(snapshot)}/{shard:04d}/{language}_{bucket}.json.gz"


def document_id(snapshot: str, shard: int, language: str, bucket: str, row: int) -> str:
    """RPv2's document id: the shard file id, then the 0-based row of the document in that file."""
    return f"{shard_file_id(snapshot, shard, language, bucket)}/{row}"


def shard_id_of(doc_id: str) -> str:
    """RPv2's ``shard_id`` of a document id: the id without its trailing ``/<row>``."""
    return doc_id.rpartition("/")[0]


def document_id_int(doc_id: str) -> int:
    """RPv2's ``id_int``: sha1(id)[:8] as an unsigned little-endian 64-bit integer."""
    return int.from_bytes(hashlib.sha1(doc_id.encode("utf-8")).digest()[:8], "little", signed=False)
