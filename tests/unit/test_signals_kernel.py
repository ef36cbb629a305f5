"""The compiled signals kernel (signals/_signals_kernel.c) gives the Python paths' values, which are RPv2's.

Each of the nine repetition signals (rps_doc_frac_chars_top_{2,3,4}gram, rps_doc_frac_chars_dupe_{5..10}grams)
is computed twice per document, by the kernel and by signals/repetition.py's pure-Python path, and must be
the identical float: on all ground-truth documents (whose RPv2 values tests/test_signals_groundtruth.py
checks) and on generated word lists built to repeat (empty, one word, fewer than n words, one word
repeated, small vocabularies). The line signals (signals/lines.py), whose per-line counts the kernel
gives too, are compared the same way on the ground truth and on generated texts full of the characters
where str's predicates are subtle (Unicode whitespace, numerals, title case). CI builds the extension (`pip install -e .`), so its absence fails here.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pytest
from conftest import shared_path
from hypothesis import given, settings
from hypothesis import strategies as st

from signals import lines, repetition
from signals.document import Document
from signals.repetition import (
    DUPE_NGRAMS,
    TOP_NGRAMS,
    frac_chars_dupe_ngrams_python,
    frac_chars_top_ngram_python,
    kernel_fractions,
    native_kernel_available,
)


def kernel():
    assert native_kernel_available(), "signals._signals_kernel is not built: run `pip install -e .` (needs gcc)"
    from signals import _signals_kernel

    return _signals_kernel


@lru_cache(maxsize=1)
def ground_truth_docs() -> list[dict]:
    with open(shared_path("groundtruth", "rpv2", "public", "docs.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def python_fractions(doc: Document) -> dict[tuple[str, int], float]:
    values = {("top", n): frac_chars_top_ngram_python(doc, n) for n in TOP_NGRAMS}
    values.update({("dupe", n): frac_chars_dupe_ngrams_python(doc, n) for n in DUPE_NGRAMS})
    return values


def assert_same(doc: Document) -> None:
    want = python_fractions(doc)
    got = kernel_fractions(doc)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert type(got[key]) is float and got[key] == value, (key, got[key], value)


def words_document(words: list[str]) -> Document:
    """A real Document whose normalized words are ``words`` (lower-case letters, no punctuation)."""
    doc = Document(" ".join(words))
    assert doc.normalized_words == tuple(words)
    return doc


def test_kernel_is_built_and_used_by_the_signals():
    k = kernel()
    assert repetition._signals_kernel is k
    doc = words_document("the cat sat on the mat the cat sat on the mat again".split())
    assert repetition.rps_doc_frac_chars_top_2gram(doc)[0][2] == frac_chars_top_ngram_python(doc, 2) > 0
    assert "repetition.kernel" in doc.cache  # the signal went through the kernel


def test_kernel_equals_python_on_every_ground_truth_document():
    docs = ground_truth_docs()
    assert len(docs) == 262
    nonzero = 0
    for record in docs:
        doc = Document.from_record(record)
        assert_same(doc)
        nonzero += any(kernel_fractions(doc).values())
    assert nonzero > 200  # the comparison is not between zeros only


def first_position_ids(words) -> np.ndarray:
    first: dict[str, int] = {}
    return np.array([first.setdefault(w, i) for i, w in enumerate(words)], dtype=np.int64)


def test_signals_without_the_kernel_give_the_same_spans():
    # the fallback a machine without a C compiler takes: word table, dispatch and all nine signals
    records = ground_truth_docs()[::5]
    with_kernel = [{name: f(Document.from_record(r)) for name, f in repetition.SIGNALS.items()} for r in records]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(repetition, "_signals_kernel", None)
        assert not native_kernel_available()
        without = [{name: f(Document.from_record(r)) for name, f in repetition.SIGNALS.items()} for r in records]
    assert with_kernel == without


def test_numerators_on_a_hand_counted_example():
    # positions: a b c a b c a b c | d e f g h a b c d e f g h  (one character per word, 22 words)
    words = tuple("a b c a b c a b c d e f g h a b c d e f g h".split())
    numerators = kernel().repetition(first_position_ids(words), words)
    # top 2: "a b" 4 times; top 3: "a b c" 4 times; top 4: "a b c a" (0, 3), the first 4-gram of count 2
    assert numerators[:3] == (2 * 4, 3 * 4, 4 * 2)
    # 5- and 6-grams: "a b c a b(c)" at 0 and 3 cover words 0..8, "a b c d e(f)" ... at 6 and 14 cover
    # 6..21: all 22; 7- and 8-grams: only "a b c d e f g (h)" at 6 and 14: words 6..21, 16; no 9-gram repeats
    assert numerators[3:] == (22, 22, 16, 16, 0, 0)


def test_bad_arguments_raise_clear_errors():
    k = kernel()
    with pytest.raises(ValueError, match="2 word ids for 1 words"):
        k.repetition(np.zeros(2, dtype=np.int64), ("a",))
    with pytest.raises(TypeError, match="4- or 8-byte"):
        k.repetition(np.zeros(2, dtype=np.int16), ("a", "b"))
    with pytest.raises(TypeError, match="not str"):
        k.repetition(np.zeros(2, dtype=np.int64), ("a", 3))


def test_uint32_and_int64_ids_give_the_same_numerators():
    words = tuple("x y x y z x y x y z z z".split())
    ids = first_position_ids(words)
    k = kernel()
    expected = k.repetition(ids, words)
    assert any(expected)
    assert k.repetition(ids.astype(np.uint32), words) == expected
    assert k.repetition(ids * 7 + 3, list(words)) == expected


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 9, 10, 11, 40])
def test_all_equal_words_and_short_documents(size):
    assert_same(words_document(["ab"] * size))
    assert_same(words_document([chr(ord("a") + i % 26) * (1 + i % 3) for i in range(size)]))


# word lists from small vocabularies of words of different lengths, so n-grams repeat a lot
VOCABULARY = ["a", "bb", "ccc", "dddd", "e", "ff", "ggggggg", "h", "iiii", "jj", "k", "llllll"]
word_lists = st.integers(min_value=1, max_value=len(VOCABULARY)).flatmap(
    lambda size: st.lists(st.sampled_from(VOCABULARY[:size]), max_size=200)
)


@settings(max_examples=400, deadline=None)
@given(word_lists)
def test_kernel_equals_python_on_generated_word_lists(words):
    assert_same(words_document(words))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(VOCABULARY[:3]), min_size=1, max_size=12),
    st.integers(min_value=1, max_value=40),
    st.lists(st.sampled_from(VOCABULARY), max_size=30),
)
def test_kernel_equals_python_on_repeated_blocks(block, times, tail):
    # a block repeated many times (as boilerplate is), then other words: long overlapping repeats
    assert_same(words_document(block * times + tail))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=60), st.data())
def test_any_id_numbering_gives_the_same_numerators(ids, data):
    # equal ids = equal words, whatever the numbers: arbitrary int64 ids, and the same ids renumbered
    distinct = sorted(set(ids))
    lengths = data.draw(st.lists(st.integers(1, 9), min_size=len(distinct), max_size=len(distinct)))
    word_of = {v: chr(ord("a") + i % 26) * lengths[i] + str(i) for i, v in enumerate(distinct)}
    words = tuple(word_of[v] for v in ids)
    k = kernel()
    assert k.repetition(np.array(ids, dtype=np.int64), words) == k.repetition(first_position_ids(words), words)


# ---------------------------------------------------------------------------------------- line signals
def line_signals(doc: Document) -> dict[str, list]:
    return {name: signal(doc) for name, signal in lines.SIGNALS.items()}


def assert_same_lines(text: str) -> None:
    assert lines._signals_kernel is kernel()
    got = line_signals(Document(text))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lines, "_signals_kernel", None)
        want = line_signals(Document(text))
    assert got.keys() == want.keys()
    for name, spans in want.items():
        assert len(got[name]) == len(spans), name
        for g, w in zip(got[name], spans, strict=True):
            assert g == w and type(g[2]) is type(w[2]), (name, g, w)


def test_line_signals_use_the_kernel_and_equal_python_on_every_ground_truth_document():
    doc = Document("Ab 12\nCD x\n")
    assert lines.normalized_line_stats(doc) == ([2, 2], [5, 4], [2, 0])
    assert lines.rps_lines_uppercase_letter_fraction(doc) == [(0, 6, round(1 / 6, 8)), (6, 11, 0.4)]
    for record in ground_truth_docs():
        assert_same_lines(record["raw_content"])


def test_line_stats_on_more_lines_than_the_text_has():
    # pieces stop at the end of the text, as str.split("\n") does
    assert kernel().line_stats("a b\n", 5) == ([2, 0], [3, 0], [0, 0])
    assert kernel().upper_per_line("A\nB", 1) == [1]
    assert kernel().line_stats("", 0) == ([], [], [])


# characters where str.isspace / isnumeric / isupper are not what ASCII suggests
TRICKY = "aZ09 \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2028\u2029\u3000\u200b" \
    "\xb2\xbd\u0663\u216b\u2160\u01c5\xdf\xc9\u03a3\u2022\u2013.!?\u201d-#\U0001d7d8\U0001f600"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=TRICKY, max_size=300))
def test_line_signals_equal_python_on_tricky_texts(text):
    assert_same_lines(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=40))
def test_line_signals_equal_python_on_many_lines(pieces):
    # more than lines._FEW_LINES lines takes the Python path's vectorized branch
    assert_same_lines("\n".join(pieces))
