"""CPython's ``hash(str)`` and ``hash((str, str))`` for a chosen PYTHONHASHSEED, in any process.

WHY: RPv2 buckets its DSIR grams with ``abs(hash(gram)) % 10000`` (``core/quality_signals/utils/dsir.py``)
in a CPython 3.11 process started with PYTHONHASHSEED=42 (its Dockerfile). Built-in ``hash()`` is salted
per process, so reproducing RPv2's counts and scores used to need a process started with that seed.
This module recomputes those hashes with numpy, whatever this process's own PYTHONHASHSEED is.

What is reproduced (CPython 3.8-3.13 sources, 64-bit builds):

* **Key** (``Python/bootstrap_hash.c``, ``_Py_HashRandomization_Init``): PYTHONHASHSEED=0 zeroes the
  24-byte ``_Py_HashSecret``; any other seed fills it with ``lcg_urandom(seed)``:
  ``x = x * 214013 + 2531011 (mod 2**32)``, byte ``i`` = ``(x >> 16) & 0xff`` after the i-th step.
  SipHash's ``k0``/``k1`` are bytes 0-7 and 8-15 read little-endian (``_le64toh``).
* **Bytes hashed** (``Objects/unicodeobject.c``, ``unicode_hash``): ``_Py_HashBytes(PyUnicode_DATA(s),
  len(s) * PyUnicode_KIND(s))``, i.e. the PEP 393 canonical representation: 1 byte per character when
  every code point is < 256, else 2 (UCS-2, little-endian on x86/ARM) when all are < 65536, else 4.
  Lone surrogates are ordinary UCS-2 code units there.
* **_Py_HashBytes** (``Python/pyhash.c``): length 0 -> 0; ``Py_HASH_CUTOFF`` (``sys.hash_info.cutoff``,
  0 by default: no DJBX33A small-string path); a result of -1 becomes -2.
* **SipHash** (``Python/pyhash.c``): ``siphash13`` (default since 3.11) or ``siphash24`` (3.4-3.10):
  8-byte little-endian blocks, the last block holds the 0-7 remaining bytes and ``len << 56``;
  CPython's ``ROTATE``/``HALF_ROUND`` macros; output ``v0 ^ v1 ^ v2 ^ v3``.
* **Tuples** (``Objects/tupleobject.c``, ``tuplehash`` since 3.8, xxHash-like over the item hashes):
  ``acc = P5; for lane: acc = rotl(acc + lane * P2, 31) * P1; acc += n ^ (P5 ^ 3527539)``; an ``acc``
  of -1 becomes **1546275796** (not -2: that rule is the strings').

Speed: all grams of a document are hashed at once. The messages are padded to whole 8-byte blocks in
one buffer, sorted by block count, and compressed in lockstep (step ``r`` updates the prefix of
messages that still have an ``r``-th full block); the finalisation runs once over all of them. A very
long single token (thousands of blocks, as in a 5 MB line without spaces) finishes in a scalar loop
once few messages are left. :class:`CPythonHash` also keeps a bounded word -> hash cache, since a
vocabulary repeats across documents (the signals use :mod:`signals.vocabulary` columns instead).
``tuple_hash_lead``/``tuple_hash_follow``/``tuple_hash_finish`` split ``hash((a, b))`` into a part per
item, so a caller can compute each word's share once and a bigram's hash with three operations.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence

import numpy as np

try:  # signals/_signals_kernel.c: the same SipHash in C, one call per batch of words
    from signals import _signals_kernel
except ImportError:  # pragma: no cover - built by `pip install -e .`
    _signals_kernel = None

ALGORITHMS = {"siphash13": (1, 3), "siphash24": (2, 4)}  # name -> (compression, finalisation) rounds
MAX_SEED = 4_294_967_295  # PYTHONHASHSEED's range
_SECRET_SIZE = 24  # sizeof(_Py_HashSecret_t)
_MASK64 = (1 << 64) - 1

_SIP_C = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573)

# Objects/tupleobject.c, 64-bit Py_uhash_t
_XXPRIME_1 = np.uint64(11400714785074694791)
_XXPRIME_2 = np.uint64(14029467366897019727)
_XXPRIME_5 = 2870177450012600261
_TUPLE_LEN2_MANGLE = np.uint64(2 ^ (_XXPRIME_5 ^ 3527539))
_TUPLE_MINUS_ONE = 1546275796

_CACHE_MAX = 1 << 20
_SCALAR_TAIL_MESSAGES = 4  # finish in Python once this few messages still have blocks left
_SCALAR_TAIL_MIN_STEPS = 32


def hash_secret(seed: int) -> bytes:
    """The 24 bytes of ``_Py_HashSecret`` in a process started with PYTHONHASHSEED=``seed``."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"PYTHONHASHSEED must be in [0, {MAX_SEED}], got {seed}")
    if seed == 0:  # "0" disables randomization: the secret stays zero-filled
        return bytes(_SECRET_SIZE)
    out = bytearray(_SECRET_SIZE)
    x = seed
    for i in range(_SECRET_SIZE):
        x = (x * 214013 + 2531011) & 0xFFFFFFFF
        out[i] = (x >> 16) & 0xFF
    return bytes(out)


def siphash_keys(seed: int) -> tuple[int, int]:
    """SipHash ``(k0, k1)`` of CPython's ``pysiphash`` for PYTHONHASHSEED=``seed``."""
    secret = hash_secret(seed)
    return int.from_bytes(secret[:8], "little"), int.from_bytes(secret[8:16], "little")


def resolve_algorithm(algorithm: str | None = None) -> str:
    """``algorithm`` or the running interpreter's, checked to be one this module reproduces exactly."""
    info = sys.hash_info
    if algorithm is None and info.width != 64:
        raise NotImplementedError(f"only 64-bit Py_hash_t is reproduced; this build has width {info.width}")
    name = algorithm or info.algorithm
    if name not in ALGORITHMS:
        raise NotImplementedError(
            f"string hash algorithm {name!r} is not reproduced (supported: {sorted(ALGORITHMS)}); "
            "sys.hash_info says " + repr(info)
        )
    if algorithm is None and info.cutoff != 0:
        raise NotImplementedError(
            f"this CPython was built with Py_HASH_CUTOFF={info.cutoff} (DJBX33A for short strings), "
            "which is not reproduced; pass algorithm= explicitly to emulate a default build"
        )
    return name


# ----------------------------------------------------------------------------------- scalar reference
def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _MASK64


def _sipround_scalar(v0: int, v1: int, v2: int, v3: int) -> tuple[int, int, int, int]:
    """CPython's SINGLE_ROUND on Python ints (used for long messages and as the readable reference)."""
    v0 = (v0 + v1) & _MASK64
    v2 = (v2 + v3) & _MASK64
    v1 = _rotl(v1, 13) ^ v0
    v3 = _rotl(v3, 16) ^ v2
    v0 = _rotl(v0, 32)
    v2 = (v2 + v1) & _MASK64
    v0 = (v0 + v3) & _MASK64
    v1 = _rotl(v1, 17) ^ v2
    v3 = _rotl(v3, 21) ^ v0
    v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def siphash_scalar(k0: int, k1: int, data: bytes, c_rounds: int = 1, d_rounds: int = 3) -> int:
    """CPython's ``siphash13``/``siphash24`` of ``data`` as an unsigned 64-bit int (no -1 rule)."""
    v0, v1, v2, v3 = k0 ^ _SIP_C[0], k1 ^ _SIP_C[1], k0 ^ _SIP_C[2], k1 ^ _SIP_C[3]
    full = len(data) // 8 * 8
    for off in range(0, full, 8):
        mi = int.from_bytes(data[off:off + 8], "little")
        v3 ^= mi
        for _ in range(c_rounds):
            v0, v1, v2, v3 = _sipround_scalar(v0, v1, v2, v3)
        v0 ^= mi
    b = ((len(data) << 56) & _MASK64) | int.from_bytes(data[full:], "little")
    v3 ^= b
    for _ in range(c_rounds):
        v0, v1, v2, v3 = _sipround_scalar(v0, v1, v2, v3)
    v0 ^= b
    v2 ^= 0xFF
    for _ in range(d_rounds):
        v0, v1, v2, v3 = _sipround_scalar(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


def pep393_bytes(s: str) -> bytes:
    """The bytes CPython hashes for ``s``: its 1-, 2- or 4-byte-per-character PEP 393 data."""
    top = max(map(ord, s), default=0)
    if top < 0x100:
        return s.encode("latin-1")
    if top < 0x10000:
        return s.encode("utf-16-le", "surrogatepass")
    return s.encode("utf-32-le", "surrogatepass")


def _signed(u: int) -> int:
    return u - (1 << 64) if u >= 1 << 63 else u


# ----------------------------------------------------------------------------------- vectorized core
def _rotl_inplace(x: np.ndarray, b: int, tmp: np.ndarray) -> None:
    np.left_shift(x, np.uint64(b), out=tmp)
    np.right_shift(x, np.uint64(64 - b), out=x)
    np.bitwise_or(x, tmp, out=x)


_SHIFTS_1 = np.array([[13], [16]], dtype=np.uint64)  # v1, v3 in the first half round
_SHIFTS_2 = np.array([[17], [21]], dtype=np.uint64)  # v1, v3 in the second
_SHIFTS_1C = np.uint64(64) - _SHIFTS_1
_SHIFTS_2C = np.uint64(64) - _SHIFTS_2


def _rotl_rows(x: np.ndarray, shifts: np.ndarray, complement: np.ndarray, tmp: np.ndarray) -> None:
    np.left_shift(x, shifts, out=tmp)
    np.right_shift(x, complement, out=x)
    np.bitwise_or(x, tmp, out=x)


def _sipround(a: np.ndarray, b: np.ndarray, tmp: np.ndarray) -> None:
    """CPython's SINGLE_ROUND, in place, with ``a`` = rows (v0, v2) and ``b`` = rows (v1, v3).

    Pairing the lanes that CPython's HALF_ROUND updates alike halves the number of numpy calls:
    HALF_ROUND(v0,v1,v2,v3,13,16) then HALF_ROUND(v2,v1,v0,v3,17,21).
    """
    a += b  # v0 += v1; v2 += v3
    _rotl_rows(b, _SHIFTS_1, _SHIFTS_1C, tmp)  # v1 = rotl(v1, 13); v3 = rotl(v3, 16)
    b ^= a  # v1 ^= v0; v3 ^= v2
    _rotl_inplace(a[0], 32, tmp[0])  # v0 = rotl(v0, 32)
    a += b[::-1]  # v2 += v1; v0 += v3
    _rotl_rows(b, _SHIFTS_2, _SHIFTS_2C, tmp)  # v1 = rotl(v1, 17); v3 = rotl(v3, 21)
    b ^= a[::-1]  # v1 ^= v2; v3 ^= v0
    _rotl_inplace(a[1], 32, tmp[1])  # v2 = rotl(v2, 32)


def _pep393_stream(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All strings' PEP 393 bytes concatenated (uint8) and each string's byte length (int64)."""
    n = len(strings)
    lengths = np.fromiter(map(len, strings), dtype=np.int64, count=n)
    joined = "".join(strings)
    if joined.isascii():  # the common case: every string is 1 byte per character
        return np.frombuffer(joined.encode("ascii"), dtype=np.uint8), lengths
    cps = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    kinds = np.ones(n, dtype=np.int64)
    nonempty = np.flatnonzero(lengths)
    if nonempty.size:
        starts = (np.cumsum(lengths) - lengths)[nonempty]
        top = np.maximum.reduceat(cps, starts)
        kinds[nonempty] = np.where(top < 0x100, 1, np.where(top < 0x10000, 2, 4))
    cp_kinds = np.repeat(kinds, lengths)
    # bytes of each code point in little-endian order; keep the first `kind` of its 4 bytes
    lanes = cps.astype("<u4", copy=False).view(np.uint8).reshape(-1, 4)
    flat = lanes[np.arange(4) < cp_kinds[:, None]]
    return flat, lengths * kinds


def siphash_many(
    k0: int, k1: int, stream: np.ndarray, byte_lengths: np.ndarray, c_rounds: int = 1, d_rounds: int = 3
) -> np.ndarray:
    """Unsigned SipHash of every message (``byte_lengths`` consecutive slices of ``stream``), as uint64.

    The caller maps empty messages to 0 and -1 to -2 (``_Py_HashBytes``); this is the raw ``siphash``.
    """
    m = byte_lengths.size
    if m == 0:
        return np.zeros(0, dtype=np.uint64)
    full = byte_lengths // 8  # full 8-byte blocks per message
    nblocks = full + 1  # + the final block: 0-7 tail bytes | len << 56
    block_start = np.cumsum(nblocks) - nblocks
    byte_start = np.cumsum(byte_lengths) - byte_lengths
    padded = np.zeros(int(nblocks.sum()) * 8, dtype=np.uint8)
    if stream.size:
        shift = np.repeat(block_start * 8 - byte_start, byte_lengths)
        padded[np.arange(stream.size, dtype=np.int64) + shift] = stream
    blocks = padded.view("<u8").astype(np.uint64, copy=False)
    last = block_start + full
    blocks[last] |= byte_lengths.astype(np.uint64) << np.uint64(56)

    # lockstep over messages sorted by decreasing block count: step r touches a prefix
    order = np.argsort(-full, kind="stable")
    full_sorted = full[order]
    start_sorted = block_start[order]
    a = np.empty((2, m), dtype=np.uint64)  # rows v0, v2
    b = np.empty((2, m), dtype=np.uint64)  # rows v1, v3
    a[0], a[1] = np.uint64(k0 ^ _SIP_C[0]), np.uint64(k0 ^ _SIP_C[2])
    b[0], b[1] = np.uint64(k1 ^ _SIP_C[1]), np.uint64(k1 ^ _SIP_C[3])
    tmp = np.empty((2, m), dtype=np.uint64)
    max_full = int(full_sorted[0])
    active_counts = np.searchsorted(-full_sorted, -np.arange(max_full), side="left")  # #messages with > r
    for r in range(max_full):
        k = int(active_counts[r])
        if k <= _SCALAR_TAIL_MESSAGES and max_full - r >= _SCALAR_TAIL_MIN_STEPS:
            _finish_scalar(a, b, blocks, start_sorted, full_sorted, k, r, c_rounds)
            break
        mi = blocks[start_sorted[:k] + r]
        a_k, b_k = a[:, :k], b[:, :k]
        b_k[1] ^= mi
        for _ in range(c_rounds):
            _sipround(a_k, b_k, tmp[:, :k])
        a_k[0] ^= mi
    final = blocks[last[order]]
    b[1] ^= final
    for _ in range(c_rounds):
        _sipround(a, b, tmp)
    a[0] ^= final
    a[1] ^= np.uint64(0xFF)
    for _ in range(d_rounds):
        _sipround(a, b, tmp)
    out = np.empty(m, dtype=np.uint64)
    out[order] = (a[0] ^ a[1]) ^ (b[0] ^ b[1])
    return out


def _finish_scalar(
    a: np.ndarray, b: np.ndarray, blocks: np.ndarray, starts: np.ndarray, fulls: np.ndarray,
    k: int, r: int, c_rounds: int,
) -> None:
    """Compress blocks r.. of the first ``k`` (long) messages with Python ints, writing back the state."""
    for j in range(k):
        v0, v2 = (int(x) for x in a[:, j])
        v1, v3 = (int(x) for x in b[:, j])
        first = int(starts[j])
        for mi in blocks[first + r:first + int(fulls[j])].tolist():
            v3 ^= mi
            for _ in range(c_rounds):
                v0, v1, v2, v3 = _sipround_scalar(v0, v1, v2, v3)
            v0 ^= mi
        a[:, j] = np.array([v0, v2], dtype=np.uint64)
        b[:, j] = np.array([v1, v3], dtype=np.uint64)


def tuple_hash_lead(first: np.ndarray) -> np.ndarray:
    """uint64 state of CPython's 2-tuple ``tuplehash`` after its first item (hash ``first``).

    ``tuplehash`` folds the items in one after the other, so the state after the first item depends
    on that item alone: a caller that hashes many pairs of the same words can compute it per word.
    """
    acc = np.asarray(first, dtype=np.int64).view(np.uint64) * _XXPRIME_2
    acc += np.uint64(_XXPRIME_5)
    tmp = np.empty_like(acc)
    _rotl_inplace(acc, 31, tmp)
    acc *= _XXPRIME_1
    return acc


def tuple_hash_follow(second: np.ndarray) -> np.ndarray:
    """uint64 share of the second item (hash ``second``) in CPython's 2-tuple ``tuplehash``."""
    return np.asarray(second, dtype=np.int64).view(np.uint64) * _XXPRIME_2


def tuple_hash_finish(state: np.ndarray) -> np.ndarray:
    """int64 ``hash((a, b))`` from ``tuple_hash_lead(hash(a)) + tuple_hash_follow(hash(b))``
    (modulo 2**64); ``state`` is modified in place and returned as its int64 view."""
    tmp = np.empty_like(state)
    _rotl_inplace(state, 31, tmp)
    state *= _XXPRIME_1
    state += _TUPLE_LEN2_MANGLE
    out = state.view(np.int64)
    out[out == -1] = _TUPLE_MINUS_ONE
    return out


class CPythonHash:
    """``hash(str)`` and ``hash((str, str))`` as in a CPython started with PYTHONHASHSEED=``seed``.

    ``algorithm``: ``None`` uses the running interpreter's (``sys.hash_info.algorithm``); pass
    ``"siphash13"`` (CPython >= 3.11) or ``"siphash24"`` (3.4-3.10) to reproduce another version.
    """

    def __init__(self, seed: int = 42, algorithm: str | None = None, cache_size: int = _CACHE_MAX) -> None:
        self.seed = seed
        self.algorithm = resolve_algorithm(algorithm)
        self.c_rounds, self.d_rounds = ALGORITHMS[self.algorithm]
        self.k0, self.k1 = siphash_keys(seed)
        self.cache_size = cache_size
        self._cache: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"CPythonHash(seed={self.seed}, algorithm={self.algorithm!r})"

    # -- vectorized
    def hash_strs_uncached(self, strings: Sequence[str]) -> np.ndarray:
        """int64 ``hash(s)`` of every string, all computed (no cache); in C when the kernel is built."""
        if _signals_kernel is not None:
            return np.frombuffer(
                _signals_kernel.siphash_strs(strings, self.k0, self.k1, self.c_rounds, self.d_rounds),
                dtype=np.int64,
            )
        return self.hash_strs_uncached_numpy(strings)

    def hash_strs_uncached_numpy(self, strings: Sequence[str]) -> np.ndarray:
        """:meth:`hash_strs_uncached` in numpy (the fallback without the C kernel; tests compare both)."""
        stream, byte_lengths = _pep393_stream(strings)
        raw = siphash_many(self.k0, self.k1, stream, byte_lengths, self.c_rounds, self.d_rounds).view(np.int64)
        raw[raw == -1] = -2  # _Py_HashBytes: -1 is the error value
        raw[byte_lengths == 0] = 0  # _Py_HashBytes: len 0 -> 0
        return raw

    def hash_strs(self, strings: Sequence[str]) -> np.ndarray:
        """int64 ``hash(s)`` of every string; words seen before come from a bounded cache.

        -1 is never a CPython hash, so it marks cache misses; the misses are hashed in one batch.
        """
        n = len(strings)
        if self.cache_size <= 0:
            return self.hash_strs_uncached(strings)
        cache = self._cache
        out = np.fromiter(map(cache.get, strings, itertools.repeat(-1)), dtype=np.int64, count=n)
        misses = np.flatnonzero(out == -1)
        if misses.size:
            if len(cache) + misses.size > self.cache_size:
                cache.clear()
            missing = list(dict.fromkeys([strings[i] for i in misses.tolist()]))
            cache.update(zip(missing, self.hash_strs_uncached(missing).tolist(), strict=True))
            out[misses] = np.fromiter(map(cache.__getitem__, (strings[i] for i in misses.tolist())),
                                      dtype=np.int64, count=misses.size)
        return out

    @staticmethod
    def hash_str_pairs(a_hashes: np.ndarray, b_hashes: np.ndarray) -> np.ndarray:
        """int64 ``hash((a, b))`` from the items' hashes (CPython's ``tuplehash``, 3.8+)."""
        with np.errstate(over="ignore"):
            return tuple_hash_finish(tuple_hash_lead(a_hashes) + tuple_hash_follow(b_hashes))

    def gram_hashes(self, words: Sequence[str]) -> np.ndarray:
        """``hash(w)`` of every word, then ``hash((w[i], w[i+1]))`` of every bigram (RPv2's gram order)."""
        unigrams = self.hash_strs(words)
        return np.concatenate((unigrams, self.hash_str_pairs(unigrams[:-1], unigrams[1:])))

    # -- scalar conveniences (tests, debugging)
    def hash_str(self, s: str) -> int:
        """``hash(s)`` for one string, computed with the scalar reference implementation."""
        data = pep393_bytes(s)
        if not data:
            return 0
        h = _signed(siphash_scalar(self.k0, self.k1, data, self.c_rounds, self.d_rounds))
        return -2 if h == -1 else h

    def hash_pair(self, a: str, b: str) -> int:
        """``hash((a, b))`` for one pair of strings."""
        return int(self.hash_str_pairs(np.array([self.hash_str(a)]), np.array([self.hash_str(b)]))[0])
