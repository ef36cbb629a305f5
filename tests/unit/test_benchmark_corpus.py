"""benchmarks/corpus.py: the benchmark documents are distinct, deterministic, CCNet-shaped and multilingual.

The speed figures in the README come from this corpus, so what it promises is checked: no two documents share
their text (a repeated document would flatter every cache), the same seed gives the same bytes, a smaller corpus
is the prefix of a larger one (the linearity check compares like with like), and every record has the CCNet
fields `rpv2 signals` reads, consistent with its text.
"""

from __future__ import annotations

import base64
import hashlib
import sys
from functools import lru_cache

from conftest import REPO_ROOT, shared_path

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import corpus  # noqa: E402

CCNET_FIELDS = {"url", "date_download", "digest", "length", "nlines", "source_domain", "title", "raw_content",
                "cc_segment", "original_nlines", "original_length", "line_ids", "language", "language_score",
                "perplexity", "bucket"}


@lru_cache(maxsize=1)
def documents() -> tuple[dict, ...]:
    shared_path("realdata", "groundtruth", "langid", "lingua_sentences")  # fails loudly without the data
    return tuple(corpus.iter_documents(600, seed=3))


def test_no_two_documents_share_their_text() -> None:
    texts = [d["raw_content"] for d in documents()]
    assert len(set(texts)) == len(texts)


def test_same_seed_same_documents_and_smaller_corpus_is_a_prefix() -> None:
    assert tuple(corpus.iter_documents(150, seed=3)) == documents()[:150]
    assert tuple(corpus.iter_documents(50, seed=4)) != documents()[:50]


def test_records_are_ccnet_shaped_and_consistent_with_their_text() -> None:
    for doc in documents():
        assert CCNET_FIELDS <= set(doc)
        text = doc["raw_content"]
        assert doc["length"] == len(text)
        assert doc["nlines"] == text.count("\n") + 1
        assert doc["digest"] == "sha1:" + base64.b32encode(hashlib.sha1(text.encode("utf-8")).digest()).decode()
        assert doc["original_nlines"] >= doc["nlines"] and doc["original_length"] >= len(text.encode("utf-8"))
        assert len(doc["line_ids"]) == doc["nlines"] and doc["line_ids"] == sorted(set(doc["line_ids"]))
        assert doc["bucket"] in ("head", "middle", "tail")


def test_languages_and_lengths_look_like_a_crawl() -> None:
    docs = documents()
    languages = {d["language"] for d in docs}
    assert {"en", "de", "fr", "es", "it"} <= languages
    lengths = sorted(len(d["raw_content"]) for d in docs)
    assert lengths[0] < 500 and lengths[-1] > 5 * lengths[len(lengths) // 2]  # short pages, a long tail
    assert any("wikipedia.org" in d["url"] for d in docs)


def test_written_corpus_reads_back(tmp_path) -> None:
    path = corpus.write_corpus(tmp_path, 40, seed=3)
    assert path == corpus.corpus_path(tmp_path, 40, seed=3)
    assert tuple(corpus.read_corpus(path)) == documents()[:40]
