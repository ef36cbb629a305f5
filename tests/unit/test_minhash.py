"""MinHash signatures: bit-identical to RPv2's reference output and consistent with datasketch.

The specification is ../shared/groundtruth/rpv2 (README §3): expected.jsonl holds RPv2's bands as hex and
public/native/*.minhash.parquet the files RPv2's Worker wrote.
"""

from __future__ import annotations

import json
import random
import re
import string
import unicodedata
from functools import lru_cache

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import shared_path
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.minhash import (
    RPV2_BANDS_ROWS,
    SIGNATURE_COLUMNS,
    RPv2MinHash,
    band_hex,
    minhash_parquet_schema,
    optimal_param,
    permuted_min,
    rpv2_permutations,
    sha1_hash32,
    write_rpv2_minhash_parquet,
)

# datasketch's (and RPv2's) constants, written here independently of dedup.minhash
MERSENNE_PRIME = np.uint64((1 << 61) - 1)
MAX_HASH = np.uint64((1 << 32) - 1)

try:  # the production document views (helper A1); RPv2's normalization reproduced below until they land
    from signals.document import Document as _Document
except ModuleNotFoundError:  # pragma: no cover - depends on which parts have landed
    _Document = None

_PUNCT = str.maketrans("", "", string.punctuation)


def normalized_words(raw: str) -> tuple[str, ...]:
    """``Document(raw).normalized_words``: RPv2's utilities.text.normalize(raw).split()."""
    if _Document is not None:
        return tuple(_Document(raw).normalized_words)
    text = raw.translate(_PUNCT).lower().strip()
    text = re.sub(r"\s+", " ", text)
    return tuple(unicodedata.normalize("NFD", text).split())


@lru_cache(maxsize=1)
def ground_truth() -> list[tuple[dict, dict]]:
    public = shared_path("groundtruth", "rpv2", "public")
    with open(public / "docs.jsonl", encoding="utf-8") as fh:
        docs = [json.loads(line) for line in fh]
    with open(public / "expected.jsonl", encoding="utf-8") as fh:
        expected = [json.loads(line) for line in fh]
    assert [d["id"] for d in docs] == [e["id"] for e in expected]
    return list(zip(docs, expected, strict=True))


@pytest.fixture(scope="module")
def minhash() -> RPv2MinHash:
    return RPv2MinHash()


def test_bands_bit_identical_to_rpv2_for_every_public_document(minhash):
    pairs = ground_truth()
    matches = 0
    mismatched = []
    for doc, exp in pairs:
        got = band_hex(minhash.banded_signatures(normalized_words(doc["raw_content"])))
        if got == exp["minhash"]:
            matches += 1
        else:
            mismatched.append(doc["id"])
    print(f"minhash: {matches}/{len(pairs)} docs match")
    assert not mismatched, f"band mismatch for {mismatched[:5]}"
    assert sum(exp["minhash"]["signature_sim1.0"] is None for _, exp in pairs) == 9  # README: 9 null docs


def test_bands_equal_rpv2_native_minhash_parquet(minhash):
    by_id = {doc["id"]: doc for doc, _ in ground_truth()}
    files = sorted(shared_path("groundtruth", "rpv2", "public", "native").rglob("*.minhash.parquet"))
    assert len(files) == 13
    rows = 0
    for path in files:
        for row in pq.read_table(path).to_pylist():
            bands = minhash.banded_signatures(normalized_words(by_id[row["id"]]["raw_content"]))
            assert {k: row[k] for k in SIGNATURE_COLUMNS} == bands, row["id"]
            rows += 1
    assert rows == len(by_id)


def test_writer_reproduces_rpv2_minhash_parquet(tmp_path):
    native = shared_path("groundtruth", "rpv2", "public", "native", "2023-06", "0000", "en_head.minhash.parquet")
    table = pq.read_table(native)
    out = tmp_path / "nested" / "en_head.minhash.parquet"
    assert write_rpv2_minhash_parquet(str(out), table.to_pylist()) == table.num_rows
    written = pq.read_table(out)
    assert written.schema.equals(table.schema)
    assert written.schema.equals(minhash_parquet_schema())
    assert written.to_pylist() == table.to_pylist()
    assert not list(out.parent.glob(".*tmp*"))  # atomic write leaves no temp file


def test_band_layouts_are_rpv2_optimal_params():
    # RPv2 derives (bands, rows) with optimal_param(threshold, 128); the constant table must agree.
    assert {t: optimal_param(t, 128) for t in RPV2_BANDS_ROWS} == RPV2_BANDS_ROWS


def test_permutations_drawn_a_then_b_from_randomstate_42():
    perms = rpv2_permutations()
    rng = np.random.RandomState(42)
    first_a = rng.randint(1, MERSENNE_PRIME, dtype=np.uint64)
    first_b = rng.randint(0, MERSENNE_PRIME, dtype=np.uint64)
    assert perms.shape == (2, 128) and perms.dtype == np.uint64
    assert (perms[0, 0], perms[1, 0]) == (first_a, first_b)
    assert (perms[0] >= 1).all() and (perms < MERSENNE_PRIME).all()


def _reference_permuted_min(hashes: list[int], perms: np.ndarray) -> list[int]:
    """RPv2's formula with Python ints: uint64 wrap of a*h+b, then mod p, then 32-bit mask."""
    out = []
    for a, b in zip(perms[0].tolist(), perms[1].tolist(), strict=True):
        out.append(min((((a * h + b) % 2**64) % int(MERSENNE_PRIME)) & int(MAX_HASH) for h in hashes))
    return out


@settings(max_examples=60, deadline=None)
@given(
    hashes=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=40),
    extra=st.lists(st.tuples(st.integers(1, 2**61 - 2), st.integers(0, 2**61 - 2)), min_size=1, max_size=8),
)
def test_permuted_min_equals_python_int_arithmetic(hashes, extra):
    # include the Mersenne edge: a=1, b near p, so (h + b) mod p needs the conditional subtraction
    edge = [(1, 2**61 - 2), (1, 2**61 - 8), (2**61 - 2, 2**61 - 2)]
    perms = np.array(edge + extra, dtype=np.uint64).T.copy()
    got = permuted_min(np.array(hashes, dtype=np.uint64), perms)
    assert got.dtype == np.uint32
    assert got.tolist() == _reference_permuted_min(hashes, perms)
    assert permuted_min(np.array(hashes, dtype=np.uint64), perms, block_rows=3).tolist() == got.tolist()


def _realdata_paragraphs() -> list[str]:
    text = shared_path("realdata", "corpora", "wikitext-2_test.txt").read_text(encoding="utf-8")
    paras = [p for p in text.split("\n") if len(p.split()) >= 20]
    return paras[:60]


def test_signature_consistent_with_datasketch_legacy_minhash(minhash):
    a, b = minhash.permutations
    texts = [doc["raw_content"] for doc, _ in ground_truth()[:60]] + _realdata_paragraphs()
    compared = 0
    for text in texts:
        words = normalized_words(text)
        ours = minhash.signature(words)
        if ours is None:
            continue
        shingles = {" ".join(words[i : i + 13]) for i in range(len(words) - 12)}
        ref = MinHash(num_perm=128, hashfunc=sha1_hash32, permutations=(a, b), scheme="legacy")
        ref.update_batch([s.encode("utf-8") for s in sorted(shingles)])
        assert ours.astype(np.uint64).tolist() == ref.hashvalues.tolist()
        compared += 1
    assert compared >= 100


def test_exact_duplicates_have_identical_signatures(minhash):
    pairs = ground_truth()
    by_url = {doc["url"]: doc for doc, _ in pairs}
    dups = [doc for doc, _ in pairs if doc.get("dup_of")]
    assert len(dups) >= 4
    for doc in dups:
        src = by_url[doc["dup_of"]]
        a = minhash.signature(normalized_words(doc["raw_content"]))
        b = minhash.signature(normalized_words(src["raw_content"]))
        assert a is not None and np.array_equal(a, b)


def test_near_duplicates_share_bands_as_the_readme_states(minhash):
    pairs = ground_truth()
    by_url = {doc["url"]: doc for doc, _ in pairs}
    near = [doc for doc, _ in pairs if doc.get("near_dup_of")]
    assert len(near) == 3
    for doc in near:
        src = by_url[doc["near_dup_of"]]
        ours = minhash.banded_signatures(normalized_words(doc["raw_content"]))
        theirs = minhash.banded_signatures(normalized_words(src["raw_content"]))
        shared = {
            k: sum(x == y for x, y in zip(ours[k], theirs[k], strict=True)) for k in SIGNATURE_COLUMNS
        }
        assert shared["signature_sim1.0"] == 0  # not exact duplicates
        if doc["language"] == "en":
            assert 9 <= shared["signature_sim0.7"] <= 11 and 2 <= shared["signature_sim0.9"] <= 3
        else:
            assert shared["signature_sim0.7"] == 4


def test_fewer_than_13_words_gives_null_bands(minhash):
    words12 = tuple(f"w{i}" for i in range(12))
    assert minhash.signature(words12) is None
    assert minhash.banded_signatures(words12) == {k: None for k in SIGNATURE_COLUMNS}
    bands = minhash.banded_signatures(words12 + ("last",))
    assert [len(bands[k]) for k in SIGNATURE_COLUMNS] == [1, 5, 9, 14]
    assert [len(bands[k][0]) for k in SIGNATURE_COLUMNS] == [512, 100, 52, 36]


def test_single_shingle_signature_is_the_permuted_sha1_hash(minhash):
    words = tuple("één twee drie vier vijf zes zeven acht negen tien elf twaalf dertien".split())
    h = sha1_hash32(" ".join(words).encode("utf-8"))
    assert minhash.signature(words).tolist() == _reference_permuted_min([h], minhash.permutations)


def test_order_of_words_matters_but_repeated_shingles_do_not(minhash):
    rng = random.Random(7)
    period = tuple(rng.choice(["alpha", "beta", "gamma", "delta", "ünïcode"]) for _ in range(20))
    words = period * 3
    sig = minhash.signature(words)
    # a periodic text: one more period adds only shingles already present, so the set is unchanged
    assert np.array_equal(sig, minhash.signature(period * 4))
    assert not np.array_equal(sig, minhash.signature(tuple(reversed(words))))


def test_lone_surrogates_do_not_crash(minhash):
    words = tuple(["bad\udcff"] + [f"w{i}" for i in range(20)])
    assert minhash.signature(words) is not None
