"""The Document's views equal RPv2's ``core.document.Document`` views, computed the reference way.

RPv2: normalized text = NFD(collapse-whitespace(lower(remove-ASCII-punctuation(text)))); lines =
``re.finditer(r"([^\\n]*\\n|[^\\n]+$)")`` with spans including the newline; normalized lines = the
same normalization per line; raw words = nltk WordPunct (``regex`` engine); normalized words =
normalized text split on whitespace. Our Document computes them in fewer passes; these tests hold it to
the literal definitions on all ground-truth documents and on the character-level facts the fast path
relies on (checked over every code point).
"""

from __future__ import annotations

import json
import re
import string
import sys
import unicodedata

import regex
from conftest import shared_path

from signals.document import Document, TextSlice
from signals.text_normalization import (
    fast_normalize,
    normalize,
    remove_punctuation,
    split_lines,
    wordpunct_tokenize,
)

_PUNCT = str.maketrans("", "", string.punctuation)
# RPv2's line split (Document: re.finditer(r"([^\n]*\n|[^\n]+$)", text)), written here independently
_RPV2_LINES = re.compile(r"([^\n]*\n|[^\n]+$)")
_NLTK_WORDPUNCT = regex.compile(r"\w+|[^\w\s]+", flags=regex.UNICODE | regex.MULTILINE | regex.DOTALL)


def reference_normalize(text: str) -> str:
    text = text.translate(_PUNCT).lower().strip()
    return unicodedata.normalize("NFD", re.sub(r"\s+", " ", text))


def _docs() -> list[str]:
    path = shared_path("groundtruth", "rpv2", "public", "docs.jsonl")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["raw_content"] for line in f]


TEXTS = _docs() + [
    "", " ", "\n", "a", "a\n", "a\n\nb", "\n\nx", "x\r\ny\rz", "ΑΣ\nΣΑ ΣΣ.", "İstanbul ǅ ﬁ",
    "e\u0301 \u0300x  \u2028\u00a0y\u3000z\x1c\x1d\x85", "\ud800 lone \udfff", "tab\tsep\x0bvt\x0cff",
]


def test_views_equal_reference_definitions():
    for text in TEXTS:
        doc = Document(text, domain="d.com", language="en")
        ref_lines = [(m.group(0), m.start(), m.end()) for m in _RPV2_LINES.finditer(text)]
        assert [(s.text, s.start, s.end) for s in doc.raw_lines] == ref_lines
        assert [(s.text, s.start, s.end) for s in doc.normalized_lines] == [
            (reference_normalize(t), s, e) for t, s, e in ref_lines
        ]
        assert doc.normalized_content == reference_normalize(text)
        assert doc.normalized_words == tuple(reference_normalize(text).split())
        assert doc.raw_words == tuple(_NLTK_WORDPUNCT.findall(text))
        assert doc.num_raw_words == len(doc.raw_words)
        assert doc.num_normalized_words == len(doc.normalized_words)
        assert len(doc) == len(text)


def test_ngram_views_are_rpv2_form_ngrams():
    doc = Document("a b c d e. A B")
    words = doc.normalized_words
    assert doc.norm_2grams == tuple(zip(words, words[1:], strict=False))
    assert doc.norm_4grams == tuple(tuple(words[i : i + 4]) for i in range(len(words) - 3))
    assert Document("one").norm_3grams == ()
    assert doc.raw_2grams[0] == (doc.raw_words[0], doc.raw_words[1])
    assert doc.raw_1grams is doc.raw_words and doc.norm_1grams is doc.normalized_words


def test_textslice_len_is_text_length_as_rpv2():
    line = Document("Hello, World!\nsecond").normalized_lines[0]
    assert isinstance(line, TextSlice)
    assert (line.text, line.start, line.end) == ("hello world", 0, 14)
    assert len(line) == 11


def test_views_are_computed_once():
    doc = Document("x y\nz")
    assert doc.raw_lines is doc.raw_lines
    assert doc.norm_2grams is doc.norm_2grams
    calls = []
    assert doc.cached("k", lambda d: calls.append(1) or 5) == 5
    assert doc.cached("k", lambda d: calls.append(1) or 6) == 5
    assert calls == [1]


def test_helpers_equal_their_reference():
    for text in TEXTS:
        assert normalize(text) == reference_normalize(text)
        assert fast_normalize(text) == reference_normalize(text)
        assert remove_punctuation(text) == text.translate(_PUNCT)
        assert split_lines(text) == [m.group(0) for m in _RPV2_LINES.finditer(text)]
        assert wordpunct_tokenize(text) == _NLTK_WORDPUNCT.findall(text)


def test_character_facts_behind_the_one_pass_normalization():
    """Over every code point: NFD and lower-casing never create or remove whitespace or newlines,
    and no whitespace character is a combining mark (so the per-line and whole-text normalizations
    can share one lower-cased NFD copy)."""
    bad = []
    for cp in range(sys.maxunicode + 1):
        c = chr(cp)
        nfd = unicodedata.normalize("NFD", c)
        low = c.lower()
        space = c.isspace()
        if space != nfd.isspace() or (not space and any(ch.isspace() for ch in nfd)):
            bad.append(("nfd", hex(cp)))
        if space != low.isspace() or (not space and any(ch.isspace() for ch in low)):
            bad.append(("lower", hex(cp)))
        if space and unicodedata.combining(c):
            bad.append(("combining", hex(cp)))
        if c != "\n" and ("\n" in nfd or "\n" in low):
            bad.append(("newline", hex(cp)))
    assert bad == []


def test_tokenizer_engine_switch_covers_every_code_point():
    """Characters on which ``re`` and ``regex`` agree give the same tokens via the fast stdlib path;
    the others go through ``regex``: checked on a text of every code point, in chunks."""
    everything = "".join(map(chr, range(sys.maxunicode + 1)))
    for start in range(0, len(everything), 65536):
        chunk = everything[start : start + 65536]
        assert wordpunct_tokenize(chunk) == _NLTK_WORDPUNCT.findall(chunk)
    plain = "Hello, wörld! Grüße (2023) — “quotes” ok?"
    assert wordpunct_tokenize(plain) == _NLTK_WORDPUNCT.findall(plain)


def _every_code_point(separator: str = "") -> str:
    return separator.join(map(chr, range(sys.maxunicode + 1)))


def test_word_split_equals_nltk_on_every_code_point():
    # non-ASCII text goes through the per-code-point class table: every class, every boundary
    for text in (_every_code_point(), _every_code_point(" "), _every_code_point("a"), _every_code_point(",")):
        assert Document(text).raw_words == tuple(_NLTK_WORDPUNCT.findall(text))


def test_punctuation_removal_equals_str_translate_on_every_code_point():
    text = _every_code_point("x,")  # lone surrogates included
    assert remove_punctuation(text) == text.translate(_PUNCT)
