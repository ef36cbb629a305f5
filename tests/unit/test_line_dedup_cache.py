"""The line-hash cache of pipeline/ccnet/line_dedup.py changes no hash and stays bounded, on real text."""

from __future__ import annotations

import hashlib

import numpy as np
from pipeline_corpus import BOILERPLATE, sentences

from pipeline.ccnet import line_dedup
from pipeline.ccnet.text_normalization import normalize_for_dedup


def uncached(text: str) -> list[int]:
    """cc_net's compute_hashes, written out: sha1 of the normalized line, first 8 bytes little-endian."""
    return [int.from_bytes(hashlib.sha1(normalize_for_dedup(line).encode("utf-8", "surrogatepass")).digest()[:8],
                           "little") for line in text.split("\n")]


def test_cached_hashes_equal_the_uncached_ones_on_repeated_real_lines():
    pool = sentences("de")[:40] + ["x" * 500 + " long line, never cached"]
    documents = ["\n".join([*BOILERPLATE[:2], pool[i], pool[i + 1], pool[-1], *BOILERPLATE[2:]]) for i in range(20)]
    line_dedup._LINE_DIGESTS.clear()
    first = [line_dedup.line_hashes(doc) for doc in documents]
    second = [line_dedup.line_hashes(doc) for doc in documents]  # now from the cache
    for doc, a, b in zip(documents, first, second, strict=True):
        assert a.tolist() == b.tolist() == uncached(doc)
        assert a.dtype == np.dtype("<u8")
    assert pool[-1] not in line_dedup._LINE_DIGESTS  # long lines are not kept
    assert BOILERPLATE[0] in line_dedup._LINE_DIGESTS


def test_the_cache_is_cleared_when_full(monkeypatch):
    monkeypatch.setattr(line_dedup, "_LINE_DIGESTS_MAX", 8)
    line_dedup._LINE_DIGESTS.clear()
    lines = sentences("fr")[:30]
    short = [line for line in lines if len(line) <= line_dedup._CACHED_LINE_CHARS]
    hashes = line_dedup.line_hashes("\n".join(lines))
    assert hashes.tolist() == uncached("\n".join(lines))
    assert 0 < len(line_dedup._LINE_DIGESTS) <= 8
    assert len(short) > 8  # the bound was reached
