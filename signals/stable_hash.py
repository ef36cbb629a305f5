"""Gram hashing for the DSIR importance weights: a stable hash, and RPv2's seed-dependent one.

RPv2 buckets every raw unigram (a ``str``) and raw bigram (a ``tuple`` of two ``str``) with
``abs(hash(gram)) % buckets`` (``core/quality_signals/utils/dsir.py``). Python's ``hash()`` of a
``str`` is salted per process (SipHash-1-3 keyed by PYTHONHASHSEED), so RPv2's counts and scores are
only reproducible in a process started with PYTHONHASHSEED=42. We keep two modes:

``"rpv2"``
    Exactly RPv2's bucket ids: ``hash(word)`` for unigrams and ``hash((a, b))`` for bigrams, then
    ``abs(h) % buckets``, with ``hash()`` as CPython 3.11 (SipHash-1-3, RPv2's python:3.11 image)
    computes it in a process started with PYTHONHASHSEED=42 (RPv2's Dockerfile value). Built-in
    ``hash()`` is not called: :class:`signals.cpython_hash.CPythonHash` reproduces it with numpy, so
    this mode gives RPv2's values in any process, whatever its own PYTHONHASHSEED.

``"stable"`` (our default for the artifacts we build)
    Independent of PYTHONHASHSEED, Python version and platform:

    * word hash ``w(x)`` = the 8 bytes, little-endian, of ``blake2b(x.encode("utf-8",
      "surrogatepass"), digest_size=8, person=b"rpv2-dsir")``;
    * unigram key = ``w(x)``;
    * bigram key = ``fmix64(w(a) * 0x9E3779B97F4A7C15 + w(b))`` (arithmetic mod 2**64, ``fmix64`` is
      MurmurHash3's 64-bit finaliser), so (a, b) and (b, a) differ;
    * bucket = ``key % buckets`` on the unsigned 64-bit key.

Both modes keep a bounded word -> hash cache (a document costs about one dictionary lookup per
known word) and do the bigram and bucket arithmetic in numpy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from signals.cpython_hash import CPythonHash

HASH_MODES = ("stable", "rpv2")
RPV2_HASH_SEED = 42  # RPv2's app/Dockerfile: PYTHONHASHSEED=42
RPV2_HASH_ALGORITHM = "siphash13"  # CPython 3.11's str hash (RPv2 ran python:3.11)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_FMIX_C1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_C2 = np.uint64(0xC4CEB9FE1A85EC53)

_STABLE_CACHE_MAX = 1 << 20


def stable_word_hash(word: str) -> int:
    """The stable 64-bit hash of one word (see module docstring), as an unsigned int."""
    data = word.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, person=b"rpv2-dsir").digest(), "little")


class _StableHashCache(dict):
    """word -> stable hash as the signed int64 of the same bits (numpy converts those fastest);
    ``__missing__`` computes a word's hash the first time it is looked up."""

    def __missing__(self, word: str) -> int:
        h = stable_word_hash(word)
        value = self[word] = h - (1 << 64) if h >= 1 << 63 else h
        return value


_stable_word_cache = _StableHashCache()


def _stable_word_hashes(words: Sequence[str]) -> np.ndarray:
    if len(_stable_word_cache) >= _STABLE_CACHE_MAX:  # bounded memory on huge vocabularies
        _stable_word_cache.clear()
    lookup = _stable_word_cache.__getitem__
    return np.fromiter(map(lookup, words), dtype=np.int64, count=len(words)).view(np.uint64)


_rpv2_hasher: CPythonHash | None = None


def rpv2_hasher() -> CPythonHash:
    """The shared emulation of RPv2's ``hash()`` (seed 42, SipHash-1-3), created on first use."""
    global _rpv2_hasher
    if _rpv2_hasher is None:
        _rpv2_hasher = CPythonHash(RPV2_HASH_SEED, algorithm=RPV2_HASH_ALGORITHM)
    return _rpv2_hasher


def _fmix64(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(33))
    x = x * _FMIX_C1
    x = x ^ (x >> np.uint64(33))
    x = x * _FMIX_C2
    return x ^ (x >> np.uint64(33))


def gram_buckets(words: Sequence[str], buckets: int, mode: str = "stable") -> np.ndarray:
    """Bucket ids of every unigram then every bigram of ``words``, as RPv2's ``hash_feature``.

    RPv2 counts each unigram and each (overlapping) bigram once, so the result has
    ``2 * len(words) - 1`` entries (0 for an empty document).
    """
    n = len(words)
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    with np.errstate(over="ignore"):
        if mode == "rpv2":
            # hash() of the str and of the (str, str) tuple as in RPv2's seed-42 process (emulated,
            # so independent of this process's seed). abs() read as uint64 is exact even for -2**63.
            keys = np.abs(rpv2_hasher().gram_hashes(words)).view(np.uint64)
        elif mode == "stable":
            hashes = _stable_word_hashes(words)
            bigram_keys = _fmix64(hashes[:-1] * _GOLDEN + hashes[1:])
            keys = np.concatenate((hashes, bigram_keys))
        else:
            raise ValueError(f"unknown DSIR hash mode {mode!r}; expected one of {HASH_MODES}")
    return (keys % np.uint64(buckets)).astype(np.intp)


def hash_features(words: Sequence[str], buckets: int, mode: str = "stable") -> np.ndarray:
    """The int64 count vector of RPv2's ``Document.hash_features`` (unigrams + bigrams)."""
    if len(words) == 0:
        return np.zeros(buckets, dtype=np.int64)
    return np.bincount(gram_buckets(words, buckets, mode), minlength=buckets).astype(np.int64)
