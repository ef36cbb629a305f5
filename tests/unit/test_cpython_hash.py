"""signals.cpython_hash reproduces CPython's seeded hash(str) / hash((str, str)) in any process.

The reference is the real built-in ``hash()`` of CPython processes started with PYTHONHASHSEED=42
(RPv2's value), 7 and 0 (randomization disabled), run as subprocesses.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
from conftest import shared_path

from signals.cpython_hash import (
    CPythonHash,
    hash_secret,
    resolve_algorithm,
    siphash_keys,
    siphash_many,
    siphash_scalar,
)
from signals.document import Document

# Reads the strings as JSON lists of code points (JSON text would merge an adjacent lone surrogate
# pair into one astral character); prints [hash(s) for s], [hash((a, b)) for consecutive a, b].
_HASH_SCRIPT = (
    "import json, sys\n"
    "w = [''.join(map(chr, cps)) for cps in json.load(sys.stdin)]\n"
    "print(json.dumps([[hash(s) for s in w], [hash((a, b)) for a, b in zip(w, w[1:])]]))\n"
)

# code points by PEP 393 kind: latin-1 (1 byte), BMP incl. combining marks and lone surrogates (2), astral (4)
_LATIN1 = "aZ09 ,.'-\x00\x1f\x7f\x80\xa0\xe9\xff"
_UCS2 = "\u0100\u0301\u0308\u0627\u0915\u4e16\u6f22\uac00\ud800\udbff\udc00\udfff\ufeff\uffff"
_UCS4 = "\U00010000\U0001f595\U0001f600\U00020000\U0010ffff"


def _real_hashes(strings: list[str], seed: str) -> tuple[list[int], list[int]]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    proc = subprocess.run([sys.executable, "-c", _HASH_SCRIPT], input=json.dumps([[ord(c) for c in s] for s in strings]), env=env,
                          capture_output=True, text=True, check=True, timeout=120)
    unigrams, pairs = json.loads(proc.stdout)
    return unigrams, pairs


def _random_strings(count: int, rng: random.Random) -> list[str]:
    """Strings of every kind, mixed kinds, every length around the 8-byte block boundaries, and empties."""
    out: list[str] = ["", "", "a", "\xe9", "\u0301", "\ud800", "\U0001f600", "e\u0301", "a" * 7, "a" * 8]
    pools = [_LATIN1, _LATIN1 + _UCS2, _LATIN1 + _UCS2 + _UCS4, _UCS2, _UCS4]
    while len(out) < count:
        pool = rng.choice(pools)
        length = rng.choice([0, rng.randint(1, 17), rng.randint(1, 17), rng.randint(18, 300)])
        out.append("".join(rng.choice(pool) for _ in range(length)))
    # long messages: thousands of blocks (the scalar tail path) and one of each kind
    out += ["x" * 40_000, "\u4e16" * 3_001, "\U0001f600" * 2_503, "ab\u0301" * 1_111]
    rng.shuffle(out)
    return out


@pytest.fixture(scope="module")
def strings() -> list[str]:
    return _random_strings(4_000, random.Random(20260425))


@pytest.mark.parametrize("seed", ["42", "7", "0"])
def test_str_and_pair_hashes_equal_real_hash_of_a_seeded_process(strings, seed):
    unigrams, pairs = _real_hashes(strings, seed)
    hasher = CPythonHash(int(seed))
    got = hasher.hash_strs_uncached(strings)
    assert got.dtype == np.int64 and got.tolist() == unigrams
    assert hasher.hash_str_pairs(got[:-1], got[1:]).tolist() == pairs
    assert hasher.gram_hashes(strings).tolist() == unigrams + pairs


def test_scalar_reference_equals_real_hash(strings):
    unigrams, pairs = _real_hashes(strings[:300], "42")
    hasher = CPythonHash(42)
    assert [hasher.hash_str(s) for s in strings[:300]] == unigrams
    assert [hasher.hash_pair(a, b) for a, b in zip(strings[:300], strings[1:300], strict=False)] == pairs


def test_cached_hashes_equal_uncached_across_calls(strings):
    hasher = CPythonHash(42, cache_size=1_000)  # small: the cache is cleared and refilled
    expected = CPythonHash(42).hash_strs_uncached(strings)
    for start in range(0, len(strings), 700):
        chunk = strings[start:start + 1_400]
        assert np.array_equal(hasher.hash_strs(chunk), expected[start:start + len(chunk)])
        assert len(hasher._cache) <= 1_000 + 1_400


def test_groundtruth_document_grams_equal_real_hash_under_seed_42():
    words: list[str] = []
    with open(shared_path("groundtruth", "rpv2", "public", "docs.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            words.extend(Document.from_record(json.loads(line)).raw_words)
    assert len(words) > 100_000
    unigrams, pairs = _real_hashes(words, "42")
    assert CPythonHash(42).gram_hashes(words).tolist() == unigrams + pairs


def test_empty_string_and_empty_batch():
    hasher = CPythonHash(42)
    assert hasher.hash_str("") == 0
    assert hasher.hash_strs_uncached([]).shape == (0,)
    assert hasher.hash_strs(["", ""]).tolist() == [0, 0]


def test_tuple_hash_of_minus_one_is_1546275796_as_cpython():
    # Find item hashes (a, b) whose xxHash accumulator ends at 2**64 - 1 (C's -1) by inverting the
    # last steps; small ints hash to themselves, so the real hash((a, b)) checks the special case.
    mask = (1 << 64) - 1
    p1, p2, p5 = 11400714785074694791, 14029467366897019727, 2870177450012600261
    inv1, inv2 = pow(p1, -1, 1 << 64), pow(p2, -1, 1 << 64)

    def rotl(x: int, b: int) -> int:
        return ((x << b) | (x >> (64 - b))) & mask

    for a in range(1, 10_000):
        acc1 = rotl((p5 + a * p2) & mask, 31) * p1 & mask
        before_mult = (mask - (2 ^ (p5 ^ 3527539))) * inv1 & mask
        b_unsigned = (rotl(before_mult, 33) - acc1) * inv2 & mask
        b = b_unsigned - (1 << 64) if b_unsigned >= 1 << 63 else b_unsigned
        if abs(b) < (1 << 61) - 1 and b != -1:
            break
    assert hash((a, b)) == 1546275796
    got = CPythonHash.hash_str_pairs(np.array([a], dtype=np.int64), np.array([b], dtype=np.int64))
    assert got.tolist() == [1546275796]


def test_seed_secret_is_cpythons_lcg():
    assert hash_secret(0) == bytes(24)  # PYTHONHASHSEED=0 disables randomization
    x, expected = 42, bytearray()
    for _ in range(24):
        x = (x * 214013 + 2531011) % 2**32
        expected.append((x >> 16) & 0xFF)
    assert hash_secret(42) == bytes(expected)
    assert siphash_keys(42) == (int.from_bytes(expected[:8], "little"), int.from_bytes(expected[8:16], "little"))
    with pytest.raises(ValueError, match="PYTHONHASHSEED"):
        hash_secret(2**32)


def test_siphash24_equals_the_reference_test_vector():
    # SipHash paper (Aumasson & Bernstein), appendix A: key 00..0f, message 00..0e -> a129ca6149be45e5;
    # CPython <= 3.10's siphash24 is this function.
    k0, k1 = int.from_bytes(bytes(range(8)), "little"), int.from_bytes(bytes(range(8, 16)), "little")
    assert siphash_scalar(k0, k1, bytes(range(15)), 2, 4) == 0xA129CA6149BE45E5
    messages = [bytes(range(n)) for n in range(64)]
    stream = np.frombuffer(b"".join(messages), dtype=np.uint8)
    got = siphash_many(k0, k1, stream, np.arange(64, dtype=np.int64), 2, 4)
    assert got.tolist() == [siphash_scalar(k0, k1, m, 2, 4) for m in messages]
    assert got[15] == 0xA129CA6149BE45E5


def test_running_interpreter_algorithm_is_detected_and_unknown_ones_refused():
    assert CPythonHash(42).algorithm == sys.hash_info.algorithm == resolve_algorithm()
    with pytest.raises(NotImplementedError, match="fnv"):
        CPythonHash(42, algorithm="fnv")
