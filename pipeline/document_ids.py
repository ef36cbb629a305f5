"""RedPajama-V2 document ids.

RPv2 names every document by the CCNet output file it would live in plus its row in that file:
``id = "<snapshot>/<shard:04d>/<lang>_<bucket>.json.gz/<row>"`` (e.g. ``2023-06/0000/en_head.json.gz/17``),
and ``id_int`` is the first 8 bytes of ``sha1(id)`` read little-endian (RPv2's worker,
``int.from_bytes(hashlib.sha1(id.encode()).digest()[:8], "little")``). The ``<shard_id>`` that RPv2
writes beside it (minhash and duplicates parquet files) is the id without its row.

We keep these ids although our files are Parquet, so that RPv2 users can join our output with RPv2's
published signals, minhashes and duplicate lists unchanged.
"""

from __future__ import annotations

import hashlib


def short_snapshot(snapshot: str) -> str:
    """``CC-MAIN-2023-06`` -> ``2023-06`` (RPv2 names snapshots by the short form); idempotent."""
    return snapshot[len("CC-MAIN-") :] if snapshot.startswith("CC-MAIN-") else snapshot


def shard_file_id(snapshot: str, shard: int, language: str, bucket: str) -> str:
    """RPv2's ``shard_id``: ``<snapshot>/<shard:04d>/<lang>_<bucket>.json.gz``."""
    return f"{short_snapshot(snapshot)}/{shard:04d}/{language}_{bucket}.json.gz"


def document_id(snapshot: str, shard: int, language: str, bucket: str, row: int) -> str:
    """RPv2's document id: the shard file id, then the 0-based row of the document in that file."""
    return f"{shard_file_id(snapshot, shard, language, bucket)}/{row}"


def document_id_int(doc_id: str) -> int:
    """RPv2's ``id_int``: sha1(id)[:8] as an unsigned little-endian 64-bit integer."""
    return int.from_bytes(hashlib.sha1(doc_id.encode("utf-8")).digest()[:8], "little", signed=False)
