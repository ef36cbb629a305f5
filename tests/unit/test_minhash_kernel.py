"""The compiled MinHash kernel (dedup/_minhash_kernel.c) gives the numpy path's bits, which are RPv2's.

The kernel has two SHA-1 compressions (portable C from FIPS 180-4, and the x86 SHA instructions when the
CPU has them) and two permutation loops (generic, and AVX2/AVX-512 copies picked at run time); each is
checked here against hashlib, Python integer arithmetic, the numpy backend and the RPv2 ground truth.
CI builds the extension (`make install` runs `pip install -e .`), so its absence is a failure here.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_minhash import _reference_permuted_min, ground_truth, normalized_words

from dedup import minhash as mh
from dedup.minhash import (
    MERSENNE_PRIME,
    RPv2MinHash,
    band_hex,
    native_kernel_available,
    native_kernel_info,
    resolve_backend,
    shingle_hashes,
)


def kernel():
    assert native_kernel_available(), "dedup._minhash_kernel is not built: run `pip install -e .` (needs gcc)"
    from dedup import _minhash_kernel

    return _minhash_kernel


@pytest.fixture(scope="module")
def native() -> RPv2MinHash:
    return RPv2MinHash(backend="native")


@pytest.fixture(scope="module")
def numpy_backend() -> RPv2MinHash:
    return RPv2MinHash(backend="numpy")


@lru_cache(maxsize=1)
def ground_truth_words() -> list[tuple[dict, dict, tuple[str, ...]]]:
    return [(doc, exp, normalized_words(doc["raw_content"])) for doc, exp in ground_truth()]


def test_native_kernel_is_built_and_chosen_by_default(caplog):
    k = kernel()
    assert k.SHA1_IMPL in {"portable", "sha-ni"} and k.PERMUTED_MIN_IMPL in {"generic", "avx2", "avx512"}
    assert native_kernel_info() == f"sha1={k.SHA1_IMPL}, permutations={k.PERMUTED_MIN_IMPL}"
    with caplog.at_level(logging.INFO, logger="dedup.minhash"):
        assert RPv2MinHash().backend == "native"
        assert RPv2MinHash(backend="numpy").backend == "numpy"
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("MinHash backend: native C kernel (sha1=") for m in messages), messages
    assert "MinHash backend: numpy (C kernel not requested)" in messages


def test_resolve_backend():
    assert resolve_backend("auto") == "native"
    assert resolve_backend("numpy") == "numpy"
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend("cuda")


def test_missing_kernel_falls_back_to_numpy_or_raises_when_native_is_required(monkeypatch):
    monkeypatch.setattr(mh, "_minhash_kernel", None)
    assert resolve_backend("auto") == "numpy"
    assert RPv2MinHash().backend == "numpy"
    with pytest.raises(RuntimeError, match="not built"):
        RPv2MinHash(backend="native")


# --- SHA-1 --------------------------------------------------------------------------------------------


def test_sha1_equals_hashlib_at_every_padding_boundary():
    k = kernel()
    rng = random.Random(1)
    # 0..200 covers the one-block / two-block padding split at 55/56 bytes and the 64/119/120/128 edges
    for length in [*range(201), 1000, 4095, 4096, 65537]:
        data = rng.randbytes(length)
        want = hashlib.sha1(data).digest()
        assert k.sha1(data) == want, ("dispatched", length)
        assert k.sha1(data, True) == want, ("portable", length)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_sha1_equals_hashlib_on_generated_bytes(data):
    k = kernel()
    assert k.sha1(data) == k.sha1(data, True) == hashlib.sha1(data).digest()


def test_shingle_hashes_equal_numpy_on_ground_truth():
    k = kernel()
    compared = 0
    for _, _, words in ground_truth_words():
        for n in (1, 5, 13):
            want = shingle_hashes(words, n).astype(np.uint32)
            assert np.array_equal(np.frombuffer(k.shingle_hashes(words, n), dtype=np.uint32), want)
            assert np.array_equal(np.frombuffer(k.shingle_hashes(words, n, True), dtype=np.uint32), want)
            compared += len(want)
    assert compared > 100_000


# --- permutations -------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    hashes=st.lists(st.integers(0, 2**32 - 1), max_size=40),
    extra=st.lists(st.tuples(st.integers(1, 2**61 - 2), st.integers(0, 2**61 - 2)), min_size=1, max_size=20),
)
def test_permuted_min_equals_python_int_arithmetic(hashes, extra):
    k = kernel()
    # the Mersenne edges (a=1, b near p) need the conditional subtraction; 2^64 wrap-around needs big a*h
    edge = [(1, 2**61 - 2), (1, 2**61 - 8), (2**61 - 2, 2**61 - 2), (2**61 - 2, 0)]
    perms = np.array(edge + extra, dtype=np.uint64).T.copy()
    a, b = perms[0].tobytes(), perms[1].tobytes()
    h = np.array(hashes, dtype=np.uint32).tobytes()
    want = _reference_permuted_min(hashes, perms) if hashes else [2**32 - 1] * perms.shape[1]
    assert np.frombuffer(k.permuted_min(h, a, b), dtype=np.uint32).tolist() == want
    assert np.frombuffer(k.permuted_min(h, a, b, True), dtype=np.uint32).tolist() == want


def test_permuted_min_of_rpv2_permutations_equals_numpy(native):
    k = kernel()
    rng = np.random.default_rng(3)
    for n in (1, 7, 128, 1000):
        hashes = rng.integers(0, 2**32, size=n, dtype=np.uint64)
        want = mh.permuted_min(hashes, native.permutations)
        got = k.permuted_min(hashes.astype(np.uint32).tobytes(), native._a_bytes, native._b_bytes)
        assert np.array_equal(np.frombuffer(got, dtype=np.uint32), want)


# --- whole signatures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_bands_bit_identical_to_rpv2_on_all_ground_truth_documents(backend):
    minhash = RPv2MinHash(backend=backend)
    mismatched = [
        doc["id"] for doc, exp, words in ground_truth_words() if band_hex(minhash.banded_signatures(words)) != exp["minhash"]
    ]
    assert len(ground_truth_words()) == 262
    assert not mismatched, f"{backend}: band mismatch for {mismatched[:5]}"


def test_native_and_numpy_identical_on_all_ground_truth_documents(native, numpy_backend):
    k = kernel()
    for doc, _, words in ground_truth_words():
        want = numpy_backend.signature(words)
        got = native.signature(words)
        assert (got is None) == (want is None), doc["id"]
        if want is None:
            continue
        assert got.dtype == np.uint32 and np.array_equal(got, want), doc["id"]
        portable = k.signature(words, 13, native._a_bytes, native._b_bytes, False, True)
        assert np.array_equal(np.frombuffer(portable, dtype=np.uint32), want), doc["id"]
        assert native.banded_signatures(words) == numpy_backend.banded_signatures(words), doc["id"]


# words: ASCII, accented/NFD, CJK, emoji, lone surrogates (invalid UTF-8 decoded leniently upstream),
# and from a tiny vocabulary so that repeated shingles occur; also the empty string and inner spaces,
# which " ".join semantics must handle the same way in both paths.
_WORD = st.one_of(
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=12),
    st.sampled_from(["a", "b", "the", "e\u0301te\u0301", "\u4e2d\u6587", "\U0001f600", "x\udcff", "\ud800", "", "a b"]),
)


@settings(max_examples=150, deadline=None)
@given(words=st.lists(_WORD, max_size=60), ngram_size=st.integers(1, 15))
def test_native_equals_numpy_on_generated_word_lists(words, ngram_size):
    k = kernel()
    words = tuple(words)
    perms = mh.rpv2_permutations()
    a, b = perms[0].tobytes(), perms[1].tobytes()
    got = k.signature(words, ngram_size, a, b)
    if len(words) < ngram_size:
        assert got is None
        assert k.shingle_hashes(words, ngram_size) == b""
        return
    want = mh.permuted_min(shingle_hashes(words, ngram_size), perms)
    assert np.array_equal(np.frombuffer(got, dtype=np.uint32), want)
    assert np.array_equal(np.frombuffer(k.signature(words, ngram_size, a, b, True), dtype=">u4"), want)


@settings(max_examples=60, deadline=None)
@given(words=st.lists(_WORD, max_size=40))
def test_native_and_numpy_bands_equal_for_rpv2_settings(words):
    words = tuple(words)
    assert RPv2MinHash(backend="native").banded_signatures(words) == RPv2MinHash(backend="numpy").banded_signatures(
        words
    )


def test_fewer_than_13_words_and_empty_documents_give_null_bands(native):
    for words in [(), ("one",), tuple(f"w{i}" for i in range(12))]:
        assert native.signature(words) is None
        assert native.banded_signatures(words) == {k: None for k in native.keys}


def test_long_document_and_list_input(native, numpy_backend):
    rng = random.Random(5)
    vocab = [f"w{i}" for i in range(500)] + ["\u00e9t\u00e9", "na\u0131ve", "\u4e2d"]
    words = [rng.choice(vocab) for _ in range(50_000)]
    assert np.array_equal(native.signature(words), numpy_backend.signature(tuple(words)))


def test_threads_share_one_minhash(native, numpy_backend):
    # the kernel releases the GIL while hashing; concurrent calls must not interfere
    docs = [words for _, _, words in ground_truth_words()[:80]]
    want = [numpy_backend.banded_signatures(w) for w in docs]
    barrier = threading.Barrier(4)

    def run(offset: int) -> list:
        barrier.wait()
        return [native.banded_signatures(docs[(i + offset) % len(docs)]) for i in range(len(docs))]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(4)))
    for offset, got in enumerate(results):
        assert got == [want[(i + offset) % len(docs)] for i in range(len(docs))]


def test_bad_input_raises_clear_errors():
    k = kernel()
    perms = mh.rpv2_permutations()
    a, b = perms[0].tobytes(), perms[1].tobytes()
    with pytest.raises(TypeError, match="words must be str"):
        k.signature(["a", b"b"], 1, a, b)
    with pytest.raises(TypeError):
        k.signature(42, 1, a, b)
    with pytest.raises(ValueError, match="ngram_size"):
        k.signature(["a"], 0, a, b)
    with pytest.raises(ValueError, match="equal length"):
        k.signature(["a"], 1, a, b[:-8])
    with pytest.raises(ValueError, match="uint32"):
        k.permuted_min(b"abc", a, b)
    assert int(MERSENNE_PRIME) == 2**61 - 1
