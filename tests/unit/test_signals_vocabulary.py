"""The shared word table behind the per-word signal answers (signals/vocabulary.py).

Per-word values (stop word, ``str.isupper``, contains [a-zA-Z], DSIR hash) are computed once per
distinct word and gathered by id; these tests hold them to the value of asking each word directly,
on real documents, across batches and across a vocabulary that fills up.
"""

from __future__ import annotations

import json
import re

import numpy as np
from conftest import shared_path

from signals import vocabulary
from signals.cpython_hash import CPythonHash
from signals.document import Document
from signals.natural_language import _has_ascii_letter
from signals.natural_language import _is_upper as _word_is_upper
from signals.stable_hash import gram_buckets, gram_buckets_from_ids, stable_word_hash
from signals.vocabulary import Vocabulary, shared_vocabulary


def _raw_words() -> list[tuple[str, ...]]:
    path = shared_path("groundtruth", "rpv2", "public", "docs.jsonl")
    with open(path, encoding="utf-8") as f:
        return [Document(json.loads(line)["raw_content"]).raw_words for line in f]


DOCS = _raw_words()


def _is_upper(words: list[str]) -> np.ndarray:
    return np.array([w.isupper() for w in words], dtype=np.bool_)


def test_ids_number_words_in_order_of_first_appearance():
    vocab = Vocabulary()
    assert vocab.ids(("b", "a", "b", "c")).tolist() == [0, 1, 0, 2]
    assert vocab.ids(("c", "d", "a")).tolist() == [2, 3, 1]
    assert vocab.words == ["b", "a", "c", "d"]
    assert vocab.ids(()).shape == (0,)


def test_columns_equal_asking_each_word_across_batches():
    vocab = Vocabulary()
    for words in DOCS:
        ids = vocab.ids(words)
        got = vocab.column("isupper", _is_upper, np.bool_)[ids]
        assert got.tolist() == [w.isupper() for w in words]
    assert len(vocab) == len(set().union(*DOCS))


def test_a_full_vocabulary_is_replaced_and_documents_keep_theirs(monkeypatch):
    monkeypatch.setattr(vocabulary, "_shared", Vocabulary(max_words=50))
    first = shared_vocabulary()
    doc = Document("Alpha beta GAMMA, delta " * 3 + " ".join(f"w{i}" for i in range(60)))
    ids = doc.raw_word_ids
    assert doc.vocabulary is first and first.full
    fresh = shared_vocabulary()
    assert fresh is not first and len(fresh) == 0
    # the document's ids still index its own table
    assert [first.words[i] for i in ids.tolist()] == list(doc.raw_words)
    other = Document("GAMMA beta")
    assert other.raw_word_ids.tolist() == [0, 1] and other.vocabulary is fresh


def test_word_answers_equal_rpv2s_per_token_expressions():
    ascii_letter = re.compile(r"[a-zA-Z]")
    for words in DOCS[:80]:
        doc = Document(" ".join(words))  # same tokens, re-split
        upper = doc.raw_word_column("isupper", _word_is_upper, np.bool_)
        alpha = doc.raw_word_column("has_ascii_letter", _has_ascii_letter, np.bool_)
        assert upper.tolist() == [w.isupper() for w in doc.raw_words]
        assert alpha.tolist() == [ascii_letter.search(w) is not None for w in doc.raw_words]


def test_dsir_buckets_from_ids_equal_hashing_the_words():
    hasher = CPythonHash(42, algorithm="siphash13")
    vocab = Vocabulary()  # every document adds words: the columns grow batch by batch
    for words in DOCS[:60]:
        if not words:
            continue
        ids = vocab.ids(words)
        uni = hasher.hash_strs_uncached(list(words))
        pairs = CPythonHash.hash_str_pairs(uni[:-1], uni[1:])
        want = (np.abs(np.concatenate((uni, pairs))).view(np.uint64) % np.uint64(10_000)).tolist()
        assert gram_buckets_from_ids(ids, vocab, 10_000, "rpv2").tolist() == want
        stable = gram_buckets_from_ids(ids, vocab, 997, "stable")
        assert stable[: len(words)].tolist() == [stable_word_hash(w) % 997 for w in words]
        assert stable.tolist() == gram_buckets(words, 997, "stable").tolist()


def test_rule_based_signals_are_the_same_with_and_without_word_ids():
    from signals.registry import QualitySignals

    path = shared_path("groundtruth", "rpv2", "public", "docs.jsonl")
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    computer = QualitySignals(shared_path("groundtruth", "rpv2", "artifacts"), with_models=False)
    for record in records:
        direct = computer.document(record)
        assert not direct.use_vocabulary  # no DSIR scorer: per-token counts
        shared = Document(direct.raw_content, direct.domain, direct.language, use_vocabulary=True)
        assert computer.rule_based(shared) == computer.rule_based(direct)
        assert direct.vocabulary is None
