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

Both modes can hash each distinct word once per process: the per-word values (unigram bucket and the
word's share of any bigram key) are a column of the shared :class:`signals.vocabulary.Vocabulary`,
so a document costs one gather by word id plus the bigram and bucket arithmetic in numpy. With the C
kernel (signals/_signals_kernel.c), "rpv2" mode instead hashes every word of the document in C and counts
its grams in the same loop (:func:`rpv2_gram_counts`): SipHash of a short word costs less than looking
it up in a large word table, whose entries are rarely in the CPU caches. Same counts either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from signals.cpython_hash import (
    _TUPLE_LEN2_MANGLE,
    _TUPLE_MINUS_ONE,
    _XXPRIME_1,
    _XXPRIME_2,
    _XXPRIME_5,
    CPythonHash,
    tuple_hash_finish,
    tuple_hash_follow,
    tuple_hash_lead,
)
from signals.vocabulary import Column, Vocabulary, shared_vocabulary

HASH_MODES = ("stable", "rpv2")
RPV2_HASH_SEED = 42  # RPv2's app/Dockerfile: PYTHONHASHSEED=42
RPV2_HASH_ALGORITHM = "siphash13"  # CPython 3.11's str hash (RPv2 ran python:3.11)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_FMIX_C1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_C2 = np.uint64(0xC4CEB9FE1A85EC53)

try:  # signals/_signals_kernel.c: the bigram arithmetic and the counting in one C loop
    from signals import _signals_kernel
except ImportError:  # pragma: no cover - built by `pip install -e .`
    _signals_kernel = None
# the constants each mode's bigram finish uses in the kernel (the numpy code below uses the same ones)
_KERNEL_CONSTANTS = {
    "rpv2": (int(_XXPRIME_1), int(_TUPLE_LEN2_MANGLE), _TUPLE_MINUS_ONE & (2**64 - 1)),
    "stable": (int(_FMIX_C1), int(_FMIX_C2), 0),
}
_TUPLE_CONSTANTS = (int(_XXPRIME_1), int(_XXPRIME_2), _XXPRIME_5, int(_TUPLE_LEN2_MANGLE),
                    _TUPLE_MINUS_ONE & (2**64 - 1))
# With the kernel, "rpv2" mode hashes every raw word in C (tens of ns each) and needs no vocabulary:
# cheaper than a lookup in a process-wide word table, whose misses in the CPU caches cost more.
NATIVE_RPV2_COUNTS = _signals_kernel is not None


def stable_word_hash(word: str) -> int:
    """The stable 64-bit hash of one word (see module docstring), as an unsigned int."""
    data = word.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, person=b"rpv2-dsir").digest(), "little")


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


def _rpv2_gram_column(buckets: int) -> Column:
    """Per word, for RPv2's hash: [unigram bucket, tuple-hash state after the word as first item,
    the word's contribution as second item] (CPython's ``tuplehash`` mixes the two items' hashes
    one after the other, so each item's share depends on that item alone and is computed once)."""

    def compute(words: list[str]) -> np.ndarray:
        hashes = rpv2_hasher().hash_strs_uncached(words)
        out = np.empty((len(words), 3), dtype=np.uint64)
        # abs() read as uint64 is exact even for -2**63
        out[:, 0] = np.abs(hashes).view(np.uint64) % np.uint64(buckets)
        with np.errstate(over="ignore"):
            out[:, 1] = tuple_hash_lead(hashes)
            out[:, 2] = tuple_hash_follow(hashes)
        return out

    return compute


def _stable_gram_column(buckets: int) -> Column:
    """Per word, for the stable hash: [unigram bucket, w * golden, w] (the bigram key is
    ``fmix64(w(a) * golden + w(b))``)."""

    def compute(words: list[str]) -> np.ndarray:
        hashes = np.fromiter(map(stable_word_hash, words), dtype=np.uint64, count=len(words))
        out = np.empty((len(words), 3), dtype=np.uint64)
        out[:, 0] = hashes % np.uint64(buckets)
        with np.errstate(over="ignore"):
            out[:, 1] = hashes * _GOLDEN
        out[:, 2] = hashes
        return out

    return compute


_GRAM_COLUMNS = {"rpv2": _rpv2_gram_column, "stable": _stable_gram_column}


def gram_buckets_from_ids(word_ids: np.ndarray, vocab: Vocabulary, buckets: int, mode: str) -> np.ndarray:
    """:func:`gram_buckets` for words given as ids of ``vocab`` (the Document's ``raw_word_ids``).

    Each distinct word is hashed once per vocabulary (a column of ``vocab``); a document then costs
    one gather and a few numpy operations on its bigrams.
    """
    if mode not in _GRAM_COLUMNS:
        raise ValueError(f"unknown DSIR hash mode {mode!r}; expected one of {HASH_MODES}")
    if len(word_ids) == 0:
        return np.zeros(0, dtype=np.intp)
    column = vocab.column(("dsir", mode, buckets), _GRAM_COLUMNS[mode](buckets), np.dtype((np.uint64, 3)))
    per_word = column[word_ids]
    with np.errstate(over="ignore"):
        key = per_word[:-1, 1] + per_word[1:, 2]
        if mode == "rpv2":
            bigram = tuple_hash_finish(key)
            np.abs(bigram, out=bigram)
            key = bigram.view(np.uint64)
        else:
            key = _fmix64(key)
    out = np.empty(2 * len(word_ids) - 1, dtype=np.intp)
    out[: len(word_ids)] = per_word[:, 0]
    np.remainder(key, np.uint64(buckets), out=key)
    out[len(word_ids):] = key
    return out


def gram_counts_from_ids(
    word_ids: np.ndarray, vocab: Vocabulary, buckets: int, mode: str, native: bool = True
) -> np.ndarray:
    """The float64 count vector (RPv2's ``hash_features`` as ``np.inner`` reads it) of the document whose
    raw words have ids ``word_ids``: ``features_from_buckets(gram_buckets_from_ids(...))``, in one C call
    when the kernel is built (``native=False`` forces the numpy path; tests compare both)."""
    if mode not in _GRAM_COLUMNS:
        raise ValueError(f"unknown DSIR hash mode {mode!r}; expected one of {HASH_MODES}")
    if not native or _signals_kernel is None or len(word_ids) == 0:
        return features_from_buckets(gram_buckets_from_ids(word_ids, vocab, buckets, mode), buckets)
    column = vocab.column(("dsir", mode, buckets), _GRAM_COLUMNS[mode](buckets), np.dtype((np.uint64, 3)))
    ids = np.ascontiguousarray(word_ids, dtype=np.int64)
    counts = _signals_kernel.gram_counts(ids, column, buckets, mode == "rpv2", *_KERNEL_CONSTANTS[mode])
    return np.frombuffer(counts, dtype=np.float64)


def rpv2_gram_counts(words: Sequence[str], buckets: int) -> np.ndarray:
    """The "rpv2" mode's float64 count vector of ``words`` (a document's raw words) in one C call: the
    same numbers as ``gram_counts_from_ids`` over the vocabulary (tests compare them). Needs the kernel."""
    hasher = rpv2_hasher()
    counts = _signals_kernel.cpython_gram_counts(
        words, hasher.k0, hasher.k1, hasher.c_rounds, hasher.d_rounds, buckets, _TUPLE_CONSTANTS
    )
    return np.frombuffer(counts, dtype=np.float64)


def gram_buckets(words: Sequence[str], buckets: int, mode: str = "stable") -> np.ndarray:
    """Bucket ids of every unigram then every bigram of ``words``, as RPv2's ``hash_feature``.

    RPv2 counts each unigram and each (overlapping) bigram once, so the result has
    ``2 * len(words) - 1`` entries (0 for an empty document).
    """
    if mode not in _GRAM_COLUMNS:
        raise ValueError(f"unknown DSIR hash mode {mode!r}; expected one of {HASH_MODES}")
    vocab = shared_vocabulary()
    return gram_buckets_from_ids(vocab.ids(words), vocab, buckets, mode)


def features_from_buckets(gram_bucket_ids: np.ndarray, buckets: int) -> np.ndarray:
    """The float64 count vector of the grams (RPv2's ``hash_features``, as ``np.inner`` reads it)."""
    return np.bincount(gram_bucket_ids, minlength=buckets).astype(np.float64)


def hash_features(words: Sequence[str], buckets: int, mode: str = "stable") -> np.ndarray:
    """The int64 count vector of RPv2's ``Document.hash_features`` (unigrams + bigrams)."""
    if len(words) == 0:
        return np.zeros(buckets, dtype=np.int64)
    return np.bincount(gram_buckets(words, buckets, mode), minlength=buckets).astype(np.int64)
