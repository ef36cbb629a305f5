"""CCNet's line-level dedup over a shard (or a group of shards), with hashes held in numpy arrays.

Reproduces facebookresearch/cc_net ``dedup.py`` as ``mine.py`` runs it (checked against cc_net's code,
commit bda555b):

1. hashing: every line of a document (``raw_content.split("\\n")``) is normalized with
   ``normalize_for_dedup`` and hashed: sha1 of the UTF-8 bytes, first 8 bytes read as a little-endian
   uint64 (``compute_hashes`` / ``_b2i``);
2. pass 1 (``mine.hashes`` -> ``_hashes_shard`` -> ``HashesCollector``): every document of a shard
   adds its line hashes to a ``FlatHashSet`` as *one batch*. ``AbstractDedupHashSet.add`` looks the
   whole batch up before writing it, so a hash is marked duplicate only when an *earlier document*
   already had it: a line repeated inside one document is not a duplicate; a line found in two or
   more documents is. Each shard's set is dumped to its own file;
3. grouping (``mine.mine``): the shards' hash files are cut into consecutive groups of
   ``hash_in_mem`` shards (``jsonql.grouper``, cc_net's default 50) and each shard is deduplicated
   against the set of *its group*: ``DuplicatesRemover`` loads the group's files into one
   ``FlatHashSet``, and loading a second file marks as duplicate every hash already present
   (``load_np`` -> ``merge``: ``contains | values``). So "duplicate" means "in two or more documents
   of the group". ``hash_group`` gives the grouping; our default is a group of one shard;
4. pass 2 (``DuplicatesRemover.do`` then ``finalize_doc``): the duplicate lines of a document are
   removed (their hash zeroed), then ``finalize_doc`` keeps the *first* occurrence of every remaining
   hash in the document and drops the later ones; the document keeps ``line_ids`` (indices of the
   kept lines in the original document, or its earlier ``line_ids``), ``nlines`` and ``length`` of
   what is left, and gains ``original_nlines`` / ``original_length``. A document with empty content,
   or left with no line, is dropped.

``dedup.deduplicate_two_pass`` (a file-level helper whose docstring says "this is what is done in
mine.py") is the same rule for one file; mine.py itself calls ``HashesCollector`` and
``DuplicatesRemover`` directly, with the groups above.

Our one deviation: lines that normalize to the empty string (blank lines, whitespace, lone
punctuation) are removed unconditionally. cc_net treats their hash like any other: removed when two
documents of the group have such a line (in any real shard, thousands do), otherwise the first one of
the document is kept. Removing them always makes a tiny shard behave like a real one, so the result
does not depend on shard size.

Memory: cc_net keeps a flat hash set; we keep hashes as uint64 numpy chunks, periodically compacted
into two sorted arrays (hashes in one document, hashes in two or more), so memory is 8 bytes per
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


# short line -> its 8 hash bytes, for the lines met recently: boilerplate (menus, footers, cookie
# banners) recurs on page after page, and is what line dedup exists for; cleared when full, so memory
# stays under _LINE_DIGESTS_MAX lines of at most _CACHED_LINE_CHARS characters.
_LINE_DIGESTS: dict[str, bytes] = {}
_LINE_DIGESTS_MAX = 1 << 16
_CACHED_LINE_CHARS = 200


def _line_digest(line: str) -> bytes:
    digest = hashlib.sha1(normalize_for_dedup(line).encode("utf-8", "surrogatepass")).digest()[:HASH_SIZE]
    if len(line) <= _CACHED_LINE_CHARS:
        if len(_LINE_DIGESTS) >= _LINE_DIGESTS_MAX:
            _LINE_DIGESTS.clear()
        _LINE_DIGESTS[line] = digest
    return digest


def line_hashes(raw_content: str) -> np.ndarray:
    """Hashes of ``normalize_for_dedup(line)`` for every line of ``raw_content`` (cc_net's compute_hashes).

    Lone surrogates (invalid UTF-16 halves that a broken page can carry) are encoded with
    ``surrogatepass`` instead of raising; on valid text this is plain UTF-8, as cc_net.
    """
    cached = _LINE_DIGESTS.get
    digests = b"".join(cached(line) or _line_digest(line) for line in raw_content.split("\n"))
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
    """Pass 1 of the line dedup: in how many documents each line hash occurs, reduced to one/two+.

    ``add(raw_content)`` per document, then ``duplicates()``. A document counts once per distinct
    line hash, whatever the number of copies it holds (cc_net's ``HashesCollector`` adds a document's
    hashes as one batch), so "duplicate" means "in two or more documents".

    One instance may hold one shard or a *group* of shards (cc_net's ``hash_in_mem``, see
    ``hash_group``): add the documents of every shard of the group, or ``merge`` the instances of
    pieces of it (e.g. per WET file, or per shard, on different workers), then deduplicate every
    shard of the group against the one ``duplicates()``. The result does not depend on the order.
    """

    def __init__(self, buffer_size: int = 1 << 22):
        self.buffer_size = buffer_size  # hashes buffered before a compaction (4M = 32 MB)
        self._pending: list[np.ndarray] = []
        self._pending_count = 0
        self._once = np.empty(0, dtype=HASH_DTYPE)  # sorted hashes found in exactly one document
        self._dups = np.empty(0, dtype=HASH_DTYPE)  # sorted hashes found in two or more documents
        self.n_lines = 0
        self.n_docs = 0

    def add(self, raw_content: str | None) -> np.ndarray:
        """Add every line of one document; returns that document's line hashes (all of them, in order)."""
        hashes = line_hashes(raw_content or "")
        self.n_docs += 1
        self.add_hashes(hashes)
        return hashes

    def add_hashes(self, hashes: np.ndarray) -> None:
        """Add the line hashes of ONE document as one batch: its repeated lines count once."""
        hashes = np.asarray(hashes, dtype=HASH_DTYPE)
        distinct = np.unique(hashes)
        self._pending.append(distinct)
        self._pending_count += distinct.size
        self.n_lines += hashes.size
        if self._pending_count >= self.buffer_size:
            self._compact()

    def merge(self, other: ShardLineHashes) -> ShardLineHashes:
        """Fold in the count of other documents (another piece of the shard, or another shard of the
        group; never the same documents twice). In place; returns self."""
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
        """The hashes to remove: found in two or more documents, plus the empty line's (our deviation)."""
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


def first_occurrences(hashes: np.ndarray) -> np.ndarray:
    """Boolean mask of the first occurrence of every hash (cc_net's ``finalize_doc`` ``seen`` set)."""
    first = np.zeros(hashes.shape, dtype=bool)
    first[np.unique(hashes, return_index=True)[1]] = True  # return_index: index of the first occurrence
    return first


def dedup_document(
    doc: Mapping[str, Any], dups: DuplicateLineSet, hashes: np.ndarray | None = None
) -> dict[str, Any]:
    """Pass 2 for one document (cc_net's ``DuplicatesRemover.do`` + ``finalize_doc``).

    Drops the lines whose hash is in ``dups`` (found in two or more documents of the shard or group,
    and the empty line's), and every later copy of a line already found earlier in this document
    (the first copy stays, as cc_net).

    Returns a new dict with ``raw_content`` rebuilt from the kept lines (joined by "\\n"), ``nlines``,
    ``length`` (characters) and ``line_ids`` (indices of the kept lines in the original document, or
    the document's earlier ``line_ids`` when it already has them, as cc_net). ``original_nlines`` and
    ``original_length`` are set from the input if absent. Every other field is kept. A document left
    with no line (``nlines == 0``) is for the caller to drop ("empty_after_dedup").

    ``hashes``: the document's line hashes from pass 1 (``ShardLineHashes.add``), so that a shard's
    lines are hashed once, not twice; one per line, else ``ValueError``.
    """
    out = dict(doc)
    content = doc.get("raw_content")
    if not isinstance(content, str):
        content = ""
    lines = content.split("\n")
    out.setdefault("original_nlines", doc.get("nlines", len(lines)))
    out.setdefault("original_length", doc.get("length", len(content)))

    hashes = line_hashes(content) if hashes is None else np.asarray(hashes, dtype=HASH_DTYPE)
    if hashes.size != len(lines):
        raise ValueError(f"{hashes.size} line hashes for a document of {len(lines)} lines")
    # the lines not in ``dups`` whose hash was not seen earlier in the document (a duplicate hash is a
    # duplicate at every occurrence, so this is ~dups & first_occurrences; a set beats np.unique on the
    # few lines of a page)
    seen: set[int] = set()
    keep_index: list[int] = []
    for index, (value, duplicate) in enumerate(zip(hashes.tolist(), dups.contains(hashes).tolist(), strict=True)):
        if not duplicate and value not in seen:
            seen.add(value)
            keep_index.append(index)
    if not keep_index:
        kept_ids: list[int] = []
        kept_lines: list[str] = []
    else:
        previous_ids = doc.get("line_ids")
        if previous_ids is None or len(previous_ids) != len(lines):
            kept_ids = keep_index
        else:
            kept_ids = [int(previous_ids[i]) for i in keep_index]
        kept_lines = [lines[i] for i in keep_index]
    out["raw_content"] = "\n".join(kept_lines)
    out["nlines"] = len(kept_lines)
    out["length"] = len(out["raw_content"])
    out["line_ids"] = kept_ids
    return out


def hash_group(shard: int, num_shards: int, hash_in_mem: int) -> range:
    """The shards whose line hashes ``shard`` is deduplicated against (cc_net's ``hash_in_mem``).

    cc_net's ``mine.mine`` cuts the shards 0..num_shards-1 into consecutive groups of ``hash_in_mem``
    (``jsonql.grouper``; the last group may be shorter) and gives shard ``s`` the group
    ``s // hash_in_mem``. With the default 1 every shard is its own group.
    """
    if hash_in_mem < 1:
        raise ValueError(f"hash_in_mem must be >= 1, got {hash_in_mem}")
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} is not in 0..{num_shards - 1}")
    start = shard // hash_in_mem * hash_in_mem
    return range(start, min(start + hash_in_mem, num_shards))


def _text(doc: Mapping[str, Any]) -> str:
    content = doc.get("raw_content")
    return content if isinstance(content, str) else ""


def dedup_shard(docs: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], DuplicateLineSet]:
    """Both passes over an in-memory shard (for tests, the sample and single-machine use).

    Returns the deduplicated documents that still have lines, in input order, and the duplicate set.
    """
    docs = list(docs)
    counter = ShardLineHashes()
    pass_one = [counter.add(_text(doc)) for doc in docs]
    dups = counter.duplicates()
    kept = [d for d in map(dedup_document, docs, [dups] * len(docs), pass_one) if d["nlines"] > 0]
    return kept, dups


def dedup_shards(
    shards: Iterable[Iterable[Mapping[str, Any]]], hash_in_mem: int
) -> list[list[dict[str, Any]]]:
    """Both passes over in-memory shards 0..n-1, each deduplicated against its ``hash_group``.

    Returns, per shard, its deduplicated documents that still have lines, in input order. With
    ``hash_in_mem=1`` this is ``dedup_shard`` on every shard.
    """
    shards = [list(docs) for docs in shards]
    out: list[list[dict[str, Any]]] = [[] for _ in shards]
    for shard in range(len(shards)):
        group = hash_group(shard, len(shards), hash_in_mem)
        if shard != group.start:
            continue  # done with its group
        counter = ShardLineHashes()
        pass_one = {s: [counter.add(_text(doc)) for doc in shards[s]] for s in group}
        dups = counter.duplicates()
        for s in group:
            documents = map(dedup_document, shards[s], [dups] * len(shards[s]), pass_one[s])
            out[s] = [d for d in documents if d["nlines"] > 0]
    return out
