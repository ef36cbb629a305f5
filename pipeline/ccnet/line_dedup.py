"""CCNet's line-level dedup within a shard, with hashes held in numpy arrays.

Reproduces facebookresearch/cc_net ``dedup.py`` as run by ``mine.py`` (``deduplicate_two_pass``):

1. pass 1: every line of every document of the shard (``raw_content.split("\\n")``) is normalized with
   ``normalize_for_dedup`` and hashed: sha1 of the UTF-8 bytes, first 8 bytes read as a little-endian
   uint64 (cc_net's ``compute_hashes`` / ``_b2i``);
2. pass 2: a line whose hash occurs two or more times in the shard is removed, *every* occurrence of it
   (not "keep the first"), and the document keeps ``line_ids`` (indices of the kept lines in the
   original document), ``nlines`` and ``length`` of what is left (cc_net's ``finalize_doc``).

Lines that normalize to the empty string (blank lines, whitespace, lone punctuation) all share one
hash; in any real shard that hash is seen thousands of times, so cc_net removes them. We remove them
unconditionally, so that a tiny shard behaves like a real one and the result does not depend on shard
size.

Memory: cc_net keeps a flat hash set; we keep hashes as uint64 numpy chunks, periodically compacted
into two sorted arrays (hashes seen once, hashes seen at least twice), so memory is 8 bytes per
distinct line plus a bounded buffer, and repeated boilerplate costs nothing extra.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from pipeline.ccnet.text_normalization import normalize_for_dedup

HASH_DTYPE = np.dtype("<u8")  # cc_net: np.uint64 read from the first 8 bytes of sha1, little-endian
HASH_SIZE = HASH_DTYPE.itemsize


def line_hash(normalized_line: str) -> int:
    """The 64-bit hash of one already-normalized line (cc_net's ``str_hash``)."""
    digest = hashlib.sha1(normalized_line.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:HASH_SIZE], "little")


EMPTY_LINE_HASH = line_hash("")


def line_hashes(raw_content: str) -> np.ndarray:
    """Hashes of ``normalize_for_dedup(line)`` for every line of ``raw_content`` (cc_net's compute_hashes).

    Lone surrogates (invalid UTF-16 halves that a broken page can carry) are encoded with
    ``surrogatepass`` instead of raising; on valid text this is plain UTF-8, as cc_net.
    """
    sha1 = hashlib.sha1
    digests = b"".join(
        sha1(normalize_for_dedup(line).encode("utf-8", "surrogatepass")).digest()[:HASH_SIZE]
        for line in raw_content.split("\n")
    )
    return np.frombuffer(digests, dtype=HASH_DTYPE)


class DuplicateLineSet:
    """The hashes that occur at least twice in a shard: a sorted uint64 array with vectorized lookup.

    Picklable (a numpy array), so it can travel as a Beam side input.
    """

    __slots__ = ("hashes",)

    def __init__(self, hashes: np.ndarray | Iterable[int] = ()):
        arr = np.asarray(hashes if isinstance(hashes, np.ndarray) else list(hashes), dtype=HASH_DTYPE)
        self.hashes = np.unique(arr)  # sorted, unique

    def __len__(self) -> int:
        return int(self.hashes.size)

    def __getstate__(self) -> np.ndarray:
        return self.hashes

    def __setstate__(self, state: np.ndarray) -> None:
        self.hashes = state

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DuplicateLineSet) and np.array_equal(self.hashes, other.hashes)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """Boolean mask: which of ``hashes`` are duplicates."""
        hashes = np.asarray(hashes, dtype=HASH_DTYPE)
        if self.hashes.size == 0:
            return np.zeros(hashes.shape, dtype=bool)
        idx = np.searchsorted(self.hashes, hashes)
        idx[idx == self.hashes.size] = 0
        return self.hashes[idx] == hashes

    @property
    def nbytes(self) -> int:
        return int(self.hashes.nbytes)


class ShardLineHashes:
    """Pass 1 of the line dedup: the multiset of line hashes of one shard, reduced to once/twice+.

    ``add(raw_content)`` per document, then ``duplicates()``. Shards hashed in pieces (e.g. per WET
    file on different workers) combine with ``merge``; the result does not depend on the order.
    """

    def __init__(self, buffer_size: int = 1 << 22):
        self.buffer_size = buffer_size  # hashes buffered before a compaction (4M = 32 MB)
        self._pending: list[np.ndarray] = []
        self._pending_count = 0
        self._once = np.empty(0, dtype=HASH_DTYPE)  # sorted hashes seen exactly once
        self._dups = np.empty(0, dtype=HASH_DTYPE)  # sorted hashes seen two or more times
        self.n_lines = 0
        self.n_docs = 0

    def add(self, raw_content: str | None) -> np.ndarray:
        """Add every line of one document; returns that document's line hashes."""
        hashes = line_hashes(raw_content or "")
        self.n_docs += 1
        self.add_hashes(hashes)
        return hashes

    def add_hashes(self, hashes: np.ndarray) -> None:
        hashes = np.asarray(hashes, dtype=HASH_DTYPE)
        self._pending.append(hashes)
        self._pending_count += hashes.size
        self.n_lines += hashes.size
        if self._pending_count >= self.buffer_size:
            self._compact()

    def merge(self, other: ShardLineHashes) -> ShardLineHashes:
        """Fold another partial count of the same shard into this one (in place; returns self)."""
        other._compact()
        self._pending.extend([other._once, other._dups, other._dups])  # twice: stays a duplicate
        self._pending_count += other._once.size + 2 * other._dups.size
        self.n_lines += other.n_lines
        self.n_docs += other.n_docs
        self._compact()
        return self

    def _compact(self) -> None:
        if not self._pending:
            return
        # _dups goes in twice so that its members keep a count >= 2 whatever the new chunk holds.
        values, counts = np.unique(
            np.concatenate([self._once, self._dups, self._dups, *self._pending]), return_counts=True
        )
        self._once = values[counts == 1]
        self._dups = values[counts >= 2]
        self._pending = []
        self._pending_count = 0

    def duplicates(self) -> DuplicateLineSet:
        """The hashes to remove: seen two or more times in the shard, plus the empty line's."""
        self._compact()
        return DuplicateLineSet(np.union1d(self._dups, np.array([EMPTY_LINE_HASH], dtype=HASH_DTYPE)))

    @property
    def n_distinct(self) -> int:
        self._compact()
        return int(self._once.size + self._dups.size)

    @property
    def nbytes(self) -> int:
        return int(self._once.nbytes + self._dups.nbytes + sum(p.nbytes for p in self._pending))

    def __getstate__(self) -> dict[str, Any]:
        self._compact()
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def dedup_document(
    doc: Mapping[str, Any], dups: DuplicateLineSet, hashes: np.ndarray | None = None
) -> dict[str, Any]:
    """Pass 2 for one document: drop its duplicated and empty lines (cc_net's ``finalize_doc``).

    Returns a new dict with ``raw_content`` rebuilt from the kept lines (joined by "\\n"), ``nlines``,
    ``length`` (characters) and ``line_ids`` (indices of the kept lines in the original document, or
    the document's earlier ``line_ids`` when it already has them, as cc_net). ``original_nlines`` and
    ``original_length`` are set from the input if absent. Every other field is kept. A document left
    with no line (``nlines == 0``) is for the caller to drop ("empty_after_dedup").

    ``hashes``: the document's line hashes from pass 1 (``ShardLineHashes.add``), so that a shard's
    lines are hashed once, not twice.
    """
    out = dict(doc)
    content = doc.get("raw_content")
    if not isinstance(content, str):
        content = ""
    lines = content.split("\n")
    out.setdefault("original_nlines", doc.get("nlines", len(lines)))
    out.setdefault("original_length", doc.get("length", len(content)))

    keep = ~dups.contains(line_hashes(content) if hashes is None else hashes)
    if not keep.any():
        kept_ids: list[int] = []
        kept_lines: list[str] = []
    else:
        previous_ids = doc.get("line_ids")
        if previous_ids is None or len(previous_ids) != len(lines):
            previous_ids = range(len(lines))
        kept_ids = [int(previous_ids[i]) for i in np.flatnonzero(keep)]
        kept_lines = [lines[i] for i in np.flatnonzero(keep)]
    out["raw_content"] = "\n".join(kept_lines)
    out["nlines"] = len(kept_lines)
    out["length"] = len(out["raw_content"])
    out["line_ids"] = kept_ids
    return out


def dedup_shard(docs: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], DuplicateLineSet]:
    """Both passes over an in-memory shard (for tests, the sample and single-machine use).

    Returns the deduplicated documents that still have lines, in input order, and the duplicate set.
    """
    docs = list(docs)
    counter = ShardLineHashes()
    for doc in docs:
        content = doc.get("raw_content")
        counter.add(content if isinstance(content, str) else "")
    dups = counter.duplicates()
    kept = [d for d in (dedup_document(doc, dups) for doc in docs) if d["nlines"] > 0]
    return kept, dups
