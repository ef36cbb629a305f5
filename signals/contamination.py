"""Benchmark contamination: which of a document's word n-grams occur in a benchmark, as pure functions.

A document's n-grams are the windows of ``n`` consecutive RPv2-normalized words (the words every RPv2
signal reads: ``Document.normalized_words``, i.e. ``fast_normalize(text).split()``: ASCII punctuation
removed, lower-cased, whitespace collapsed, NFD), as GPT-3's and Llama's 13-gram contamination checks
count them. Per document and per benchmark we report

* ``frac``: the fraction of the document's n-gram positions whose n-gram is in the benchmark (a
  repeated n-gram counts at every position; 0.0 for a document with fewer than ``n`` words, which has no
  n-gram and so cannot overlap);
* ``span``: the longest matching span in words: the longest run of consecutive matching n-gram
  positions ``r`` as ``r + n - 1`` words (0 when nothing matches).

N-grams are compared by a stable 64-bit hash (independent of PYTHONHASHSEED, platform and version),
computed for a whole document with a handful of numpy operations rather than per token in Python. An
n-gram is spelled as its words joined by single spaces (words hold no whitespace, so the spelling is
one-to-one), with UTF-8 bytes ``b_0 .. b_{L-1}`` (``surrogatepass``), and hashed as
``sum_j b_j * Q**j + L * C`` mod 2**64. Every
n-gram's sum is read off one prefix sum over the bytes of the document's normalized text
(``" ".join(words)``), ``P[i] = sum_{j<i} b_j Q**j``, as ``(P[end] - P[start]) * Q**-start``: Q is odd,
so it has an inverse mod 2**64. This is the rolling polynomial hash of the n-gram's text.

Two different n-grams share a hash with probability about 2**-64 per pair, so a lookup in a set of a
billion n-grams is wrong for about one document position in 10**10; the unit tests check the counts
against plain Python sets of word tuples. :class:`ExactNgramTable` holds the n-grams of one or more
benchmarks as one sorted array (a per-benchmark bit mask per n-gram), behind an occupancy bitmap of the
hashes' top bits that answers most misses without a binary search; :class:`NgramBloomFilter` holds a
very large benchmark approximately (false positives at a stated rate, no false negatives).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence

import numpy as np

from signals.text_normalization import fast_normalize

DEFAULT_N = 13  # GPT-3 / Llama: 13-grams
# what the words are and how n-grams are hashed; recorded in an index's manifest and checked at load
NORMALIZATION = "rpv2-normalize-v1"
NORMALIZATION_DESCRIPTION = (
    "RPv2 normalize(): ASCII punctuation removed, lower-cased, whitespace runs collapsed, Unicode NFD; "
    "words = whitespace split (signals/text_normalization.py)"
)
HASH = "rpv2-ngram-bytes-poly64-v2"
HASH_DESCRIPTION = (
    "n-gram text = its words joined by single spaces, UTF-8 bytes b_0..b_{L-1}; hash = sum_j b_j*Q^j + L*C "
    "mod 2^64, Q=0x9E3779B97F4A7C15, C=0x165667B19E3779F9 (signals/contamination.py)"
)
FRAC_PREFIX, FRAC_SUFFIX, SPAN_SUFFIX = "contam_", "_frac", "_span"
MAX_OVERLAP = "contam_max_overlap"
MAX_BENCHMARKS = 64  # one bit each in the exact table's uint64 masks
_BITS = np.array([1, 2, 4, 8, 16, 32, 64, 128], dtype=np.uint8)
_BLOCK = 32  # keys per block of the exact table's two-level search
_BYTE_SLOTS_BITS = 25  # occupancy tables of up to 2**25 slots take a byte per slot

_MASK64 = (1 << 64) - 1
_Q = 0x9E3779B97F4A7C15
_C = np.uint64(0x165667B19E3779F9)
_FMIX_C1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_C2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)


def fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser (a bijection on uint64 that spreads every input bit)."""
    x = x ^ (x >> _S33)
    x *= _FMIX_C1
    x ^= x >> _S33
    x *= _FMIX_C2
    x ^= x >> _S33
    return x


class _Powers:
    """``base**i`` and ``base**-i`` mod 2**64 for i < length, grown on demand (shared by threads: a
    grown table replaces the old one whole)."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.inverse = pow(base, -1, 1 << 64)
        self._lock = threading.Lock()
        self.forward = np.ones(0, dtype=np.uint64)
        self.backward = np.ones(0, dtype=np.uint64)

    @staticmethod
    def _table(base: int, length: int) -> np.ndarray:
        table = np.full(length, base, dtype=np.uint64)
        table[0] = 1
        return np.cumprod(table, dtype=np.uint64)  # wraps mod 2**64

    def get(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        forward, backward = self.forward, self.backward
        if len(forward) < length:
            with self._lock:
                if len(self.forward) < length:
                    size = max(length, 2 * len(self.forward), 4096)
                    self.backward = self._table(self.inverse, size)
                    self.forward = self._table(self.base, size)
                forward, backward = self.forward, self.backward
        return forward, backward


_BYTE_POWERS = _Powers(_Q)


def normalized_words(text: str) -> list[str]:
    """RPv2's normalized words of ``text`` (``Document.normalized_words``)."""
    return fast_normalize(text).split()


def ngram_hashes_from_content(normalized_content: str, n: int) -> np.ndarray:
    """The hash of every n-gram of ``normalized_content`` (words joined by single spaces, as
    ``Document.normalized_content``), in order: ``len(words) - n + 1`` of them, none for fewer words.

    An n-gram's text is its words joined by single spaces (a one-to-one spelling of the word tuple, as
    words hold no whitespace), so its hash is a polynomial over those bytes, read off one prefix sum
    over the whole text: a handful of numpy operations per document, whatever ``n``."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    data = np.frombuffer(normalized_content.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    size = len(data)
    if size == 0:
        return np.zeros(0, dtype=np.uint64)
    spaces = np.flatnonzero(data == 32)
    count = len(spaces) + 2 - n  # words - n + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64)
    starts = np.empty(count, dtype=np.intp)  # first byte of word i
    starts[0] = 0
    np.add(spaces[: count - 1], 1, out=starts[1:])
    ends = np.empty(count, dtype=np.intp)  # the byte after word i + n - 1
    ends[:-1] = spaces[n - 1:]
    ends[-1] = size
    forward, backward = _BYTE_POWERS.get(size + 1)
    prefix = np.empty(size + 1, dtype=np.uint64)
    prefix[0] = 0
    np.cumsum(np.multiply(data, forward[:size]), out=prefix[1:])
    sums = prefix[ends]
    sums -= prefix[starts]
    sums *= backward[starts]
    lengths = (ends - starts).view(np.uint64)
    lengths *= _C
    sums += lengths
    # no finaliser: a bijection would not change which n-grams collide, and the top bits that pick the
    # partition and the bitmap slot already depend on every byte (the products with Q's powers carry up)
    return sums


def ngram_hashes(words: Sequence[str], n: int) -> np.ndarray:
    """The n-gram hashes of normalized ``words`` (which hold no whitespace)."""
    return ngram_hashes_from_content(" ".join(words), n)


def text_ngram_hashes(text: str, n: int = DEFAULT_N) -> np.ndarray:
    """The n-gram hashes of a raw text (normalized here), in document order."""
    return ngram_hashes_from_content(fast_normalize(text), n)


def longest_run(matched: np.ndarray) -> int:
    """The length of the longest run of True in a boolean array."""
    if not matched.any():
        return 0
    padded = np.zeros(len(matched) + 2, dtype=np.int8)
    padded[1:-1] = matched
    edges = np.diff(padded)
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


def overlap(matched: np.ndarray, n: int) -> tuple[float, int]:
    """(fraction of n-gram positions matched, longest matching span in words) of one document."""
    if len(matched) == 0:
        return 0.0, 0
    run = longest_run(matched)
    return float(np.count_nonzero(matched)) / len(matched), (run + n - 1) if run else 0


def column_names(benchmarks: Sequence[str]) -> list[str]:
    """The output columns for ``benchmarks``: ``contam_<name>_frac``, ``contam_<name>_span`` per
    benchmark, then ``contam_max_overlap``."""
    names = []
    for name in benchmarks:
        names += [f"{FRAC_PREFIX}{name}{FRAC_SUFFIX}", f"{FRAC_PREFIX}{name}{SPAN_SUFFIX}"]
    return [*names, MAX_OVERLAP]


class ExactNgramTable:
    """The n-grams of up to 64 benchmarks: one sorted array of distinct hashes, a bit mask per hash
    (bit i: benchmark i holds it), and an occupancy table of the hashes' top ``prefix_bits`` bits (16 to
    32 slots per hash; a byte per slot up to 2**25 slots, i.e. about 2M hashes, else a bit) that answers 94-97% of the misses without a binary search: the
    binary searches, a cache miss per level in a large array, are what a lookup costs, not the bitmap.

    Args:
        sets: per benchmark, its sorted distinct n-gram hashes (bit i is the i-th benchmark).
    """

    def __init__(self, sets: Sequence[np.ndarray]) -> None:
        if len(sets) > MAX_BENCHMARKS:
            raise ValueError(f"at most {MAX_BENCHMARKS} exact benchmarks per index, got {len(sets)}")
        self.num_benchmarks = len(sets)
        arrays = [np.asarray(s, dtype=np.uint64) for s in sets]
        # the smallest unsigned type with a bit per benchmark: 1 byte per n-gram for up to 8 benchmarks
        mask_type = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if np.iinfo(t).bits >= len(sets))
        if len(arrays) == 1:
            keys = arrays[0]
            masks = np.ones(len(keys), dtype=mask_type)
        elif arrays:
            joined = np.concatenate(arrays)
            bits = np.concatenate([np.full(len(a), 1 << i, dtype=mask_type) for i, a in enumerate(arrays)])
            order = np.argsort(joined, kind="stable")
            joined, bits = joined[order], bits[order]
            keys, first = np.unique(joined, return_index=True)
            masks = np.bitwise_or.reduceat(bits, first) if len(first) else bits[:0]
        else:
            keys = np.zeros(0, dtype=np.uint64)
            masks = np.zeros(0, dtype=mask_type)
        # the binary search runs over every BLOCK-th key (a small array that stays in cache), then the
        # candidate's block of BLOCK consecutive keys (4 cache lines) is compared whole
        # (padded with copies of the last key and its mask); ``keys`` and ``masks`` are views of them
        blocks = -(-len(keys) // _BLOCK)
        pad = blocks * _BLOCK - len(keys)
        self._blocked_keys = np.concatenate([keys, np.repeat(keys[-1:], pad)]).reshape(blocks, _BLOCK)
        self._blocked_masks = np.concatenate([masks, np.repeat(masks[-1:], pad)]).reshape(blocks, _BLOCK)
        del arrays, keys, masks
        self.keys = self._blocked_keys.reshape(-1)[: self._blocked_keys.size - pad]
        self.masks = self._blocked_masks.reshape(-1)[: self._blocked_masks.size - pad]
        self._fences = self._blocked_keys[:, 0].copy()
        self.prefix_bits = int(min(36, max(12, math.ceil(math.log2(max(len(self.keys), 1))) + 4)))
        self._shift = np.uint64(64 - self.prefix_bits)
        slots = (self.keys >> self._shift).astype(np.intp)
        # up to 32 MiB a byte per slot (fewer operations per lookup), above that a bit per slot
        self._occupied: np.ndarray | None = None
        if self.prefix_bits <= _BYTE_SLOTS_BITS:
            self._occupied = np.zeros(1 << self.prefix_bits, dtype=np.bool_)
            self._occupied[slots] = True
            self.bitmap = self._occupied
        else:
            self.bitmap = np.zeros(1 << (self.prefix_bits - 3), dtype=np.uint8)
            np.bitwise_or.at(self.bitmap, slots >> 3, _BITS[slots & 7])

    def lookup_sparse(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions of the hashes some benchmark holds, ascending; their masks)."""
        if len(self.keys) == 0 or len(hashes) == 0:
            return np.zeros(0, dtype=np.intp), self.masks[:0]
        slots = (hashes >> self._shift).astype(np.intp)
        if self._occupied is not None:
            candidates = np.flatnonzero(self._occupied[slots])
        else:
            candidates = np.flatnonzero(self.bitmap[slots >> 3] & _BITS[slots & 7])
        if len(candidates) == 0:
            return candidates, self.masks[:0]
        wanted = hashes[candidates]
        block = np.searchsorted(self._fences, wanted, side="right") - 1  # the block whose first key <= it
        np.maximum(block, 0, out=block)
        equal = self._blocked_keys[block] == wanted[:, None]
        hit = equal.any(axis=1)
        block, column = block[hit], equal[hit].argmax(axis=1)
        return candidates[hit], self._blocked_masks[block, column]

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Per hash, the mask of the benchmarks holding it (0: none)."""
        out = np.zeros(len(hashes), dtype=np.uint64)
        positions, masks = self.lookup_sparse(hashes)
        out[positions] = masks
        return out

    @property
    def nbytes(self) -> int:
        return int(self._blocked_keys.nbytes + self._blocked_masks.nbytes + self._fences.nbytes + self.bitmap.nbytes)


def bloom_parameters(count: int, fpr: float) -> tuple[int, int]:
    """(bits, hash functions) of a Bloom filter holding ``count`` items at false-positive rate ``fpr``:
    ``m = -count ln(fpr) / ln(2)**2`` rounded up to a multiple of 64 (at least 64), ``k = round(m/count
    ln 2)`` (at least 1)."""
    if not 0.0 < fpr < 1.0:
        raise ValueError(f"Bloom false-positive rate must be within (0, 1), got {fpr}")
    bits = max(64, math.ceil(-max(count, 1) * math.log(fpr) / math.log(2) ** 2 / 64) * 64)
    hashes = max(1, round(bits / max(count, 1) * math.log(2)))
    return bits, hashes


def bloom_expected_fpr(count: int, bits: int, hashes: int) -> float:
    """The expected false-positive rate of a Bloom filter of ``bits`` bits and ``hashes`` hash functions
    holding ``count`` items: ``(1 - exp(-k count / m))**k``."""
    return (1.0 - math.exp(-hashes * count / bits)) ** hashes


_BLOOM_SALT = np.uint64(0x5851F42D4C957F2D)
_LOW32 = np.uint64(0xFFFFFFFF)
BLOOM_SCHEME = "km32-multiply-shift-v1"  # how probe positions are made; recorded in an index's manifest
MAX_BLOOM_BITS = 1 << 32  # per partition filter


def _bloom_probes(hashes: np.ndarray, hashes_count: int, bits: np.ndarray | int):
    """The probe bit positions (one array per hash function) of ``hashes`` in filters of ``bits`` (< 2**32)
    bits (:data:`BLOOM_SCHEME`): Kirsch-Mitzenmacher double hashing in 32 bits, ``g_i = (a + i b) mod
    2**32`` with ``a`` the hash's low 32 bits and ``b`` an odd 32-bit re-mix of it, mapped onto the
    filter by ``(g_i * m) >> 32`` (Lemire's multiply-shift: no division)."""
    low = hashes & _LOW32
    step = (fmix64(hashes ^ _BLOOM_SALT) >> np.uint64(32)) | np.uint64(1)
    size = np.asarray(bits, dtype=np.uint64)
    for index in range(hashes_count):
        yield (low * size) >> np.uint64(32)
        if index + 1 < hashes_count:
            low += step
            low &= _LOW32


def bloom_build(hashes: np.ndarray, bits: int, hashes_count: int) -> np.ndarray:
    """The bit array (packed little-endian bytes) of a Bloom filter of ``bits`` bits holding ``hashes``."""
    table = np.zeros(bits, dtype=np.bool_)
    for position in _bloom_probes(np.asarray(hashes, dtype=np.uint64), hashes_count, bits):
        table[position.astype(np.intp)] = True
    return np.packbits(table, bitorder="little")


class NgramBloomFilter:
    """One benchmark's n-grams as Bloom filters, one per hash-prefix partition (the filter of partition
    p holds the n-grams whose top ``partition_bits`` bits are p), concatenated into one bit array.

    Args:
        filters: per partition (in partition order), its packed bit array.
        sizes: per partition, its number of bits (a multiple of 8).
        hashes_count: hash functions per item (the same for every partition).
        partition_bits: the number of top hash bits that pick the partition.
    """

    def __init__(self, filters: Sequence[np.ndarray], sizes: Sequence[int], hashes_count: int,
                 partition_bits: int) -> None:
        if len(filters) != 1 << partition_bits or len(sizes) != len(filters):
            raise ValueError(f"expected {1 << partition_bits} partition filters, got {len(filters)}")
        self.bits = np.concatenate([np.asarray(f, dtype=np.uint8) for f in filters])
        self.sizes = np.asarray(sizes, dtype=np.uint64)
        self.bases = np.zeros(len(sizes), dtype=np.uint64)
        self.bases[1:] = np.cumsum(self.sizes)[:-1]
        self.hashes_count = hashes_count
        self._shift = np.uint64(64 - partition_bits)
        self.partition_bits = partition_bits

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """Per hash, whether the filter (maybe) holds it: no false negatives."""
        if len(hashes) == 0:
            return np.zeros(0, dtype=np.bool_)
        partition = (hashes >> self._shift).astype(np.intp) if self.partition_bits else np.zeros(len(hashes), np.intp)
        base, size = self.bases[partition], self.sizes[partition]
        found = np.ones(len(hashes), dtype=np.bool_)
        for position in _bloom_probes(hashes, self.hashes_count, size):
            index = (base + position).astype(np.intp)
            found &= (self.bits[index >> 3] & _BITS[index & 7]) != 0
        return found

    @property
    def nbytes(self) -> int:
        return int(self.bits.nbytes)


class ContaminationMatcher:
    """The per-document annotation: for each benchmark, the fraction of the document's n-grams it
    holds and the longest matching span, plus their maximum fraction.

    Args:
        n: the n-gram length the sets were built with.
        exact: the benchmarks held exactly, in the order of their bits in ``table``.
        table: their :class:`ExactNgramTable`.
        bloom: the benchmarks held as Bloom filters.
        order: every benchmark name in output order (default: exact, then Bloom).
    """

    def __init__(self, n: int, exact: Sequence[str] = (), table: ExactNgramTable | None = None,
                 bloom: Mapping[str, NgramBloomFilter] | None = None, order: Sequence[str] | None = None) -> None:
        self.n = n
        self.exact = tuple(exact)
        self.table = table if table is not None else ExactNgramTable([])
        if self.table.num_benchmarks != len(self.exact):
            raise ValueError(f"{len(self.exact)} exact benchmark names for a table of {self.table.num_benchmarks}")
        self.bloom = dict(bloom or {})
        self.benchmarks = tuple(order) if order is not None else (*self.exact, *self.bloom)
        if sorted(self.benchmarks) != sorted((*self.exact, *self.bloom)):
            raise ValueError("order must name every benchmark once")
        self.columns = column_names(self.benchmarks)
        self._zeros = dict.fromkeys(self.columns, 0.0)

    def matches(self, hashes: np.ndarray) -> dict[str, np.ndarray]:
        """Per benchmark, which of the n-gram ``hashes`` it holds."""
        masks = self.table.lookup(hashes)
        found = {name: ((masks >> np.uint64(bit)) & np.uint64(1)).astype(np.bool_)
                 for bit, name in enumerate(self.exact)}
        for name, bloom in self.bloom.items():
            found[name] = bloom.contains(hashes)
        return found

    def annotate_ngrams(self, grams: np.ndarray) -> dict[str, float]:
        """The contamination columns of a document given its n-gram hashes."""
        positions, hits = self.table.lookup_sparse(grams)
        blooms = {name: bloom.contains(grams) for name, bloom in self.bloom.items()}
        if len(positions) == 0 and not any(found.any() for found in blooms.values()):
            return dict(self._zeros)  # most documents: nothing matches, nothing more to compute
        masks = np.zeros(len(grams), dtype=np.uint64)
        masks[positions] = hits
        columns: dict[str, float] = {}
        best = 0.0
        for name in self.benchmarks:
            if name in blooms:
                matched = blooms[name]
            else:
                matched = ((masks >> np.uint64(self.exact.index(name))) & np.uint64(1)).astype(np.bool_)
            frac, span = overlap(matched, self.n)
            columns[f"{FRAC_PREFIX}{name}{FRAC_SUFFIX}"] = frac
            columns[f"{FRAC_PREFIX}{name}{SPAN_SUFFIX}"] = float(span)
            best = max(best, frac)
        columns[MAX_OVERLAP] = best
        return columns

    def annotate_content(self, normalized_content: str) -> dict[str, float]:
        """The contamination columns of a document given ``Document.normalized_content``."""
        return self.annotate_ngrams(ngram_hashes_from_content(normalized_content, self.n))

    def annotate_text(self, text: str) -> dict[str, float]:
        """The contamination columns of a raw document text (normalized here)."""
        return self.annotate_content(fast_normalize(text))
