"""Content signals (RPv2 app/src/core/quality_signals/content.py), one function per signal.

Each returns RPv2's span list ``[(0, len(raw_content), score)]``. The list-based signals take the
document's language lists from a :class:`signals.word_lists.WordLists`; where the list is missing for
the language the score is None (RPv2 would raise or, for LDNOOBW outside its five languages, give 0.0).
"""

from __future__ import annotations

import re

import numpy as np

from signals.document import Document
from signals.repetition import NgramTable, ngram_table
from signals.word_lists import BadWords, WordLists

try:  # signals/_signals_kernel.c
    from signals import _signals_kernel
except ImportError:  # pragma: no cover - built by `pip install -e .`
    _signals_kernel = None

PRECISION = 8  # RPv2 core.constants.PRECISION

Spans = list[tuple[int, int, float | int | None]]

_LOREM_TEXT = "lorem ipsum"
# RPv2 searches the (already lower-cased) normalized text with IGNORECASE; kept for identical counts
# (IGNORECASE also folds e.g. U+017F LONG S to "s").
_LOREM_PATTERN = re.compile(r"lorem ipsum", re.IGNORECASE)


def rps_doc_curly_bracket(doc: Document) -> Spans:
    """Occurrences of '{' or '}' per raw character (RPv2 RPS_Doc_Curly_Bracket)."""
    raw = doc.raw_content
    num = raw.count("{") + raw.count("}")
    if num == 0:  # also covers the empty document
        return [(0, len(raw), 0.0)]
    return [(0, len(raw), round(num / len(raw), PRECISION))]


def rps_doc_lorem_ipsum(doc: Document) -> Spans:
    """'lorem ipsum' matches per normalized character (RPv2 RPS_Doc_Lorem_Ipsum)."""
    text = doc.normalized_content
    if not text or _LOREM_TEXT not in text:
        return [(0, doc.num_chars, 0.0)]
    num = len(_LOREM_PATTERN.findall(text))
    return [(0, doc.num_chars, round(num / len(text), PRECISION))]


def rps_doc_ldnoobw_words(doc: Document, lists: WordLists) -> Spans:
    """Number of normalized word n-grams found in the LDNOOBW list (RPv2 RPS_Doc_LDNOOBW_Words)."""
    bad_words = lists.bad_words(doc.language)
    if bad_words is None:
        return [(0, doc.num_chars, None)]
    if not doc.normalized_content:
        return [(0, doc.num_chars, 0.0)]
    return [(0, doc.num_chars, float(count_bad_words(bad_words, ngram_table(doc))))]


def count_bad_words(bad_words: BadWords, table: NgramTable) -> int:
    """``bad_words.count(words)`` using the document's word table: single-word entries are looked up
    once per distinct word (times its count), multi-word entries only where their first word occurs."""
    vocab = table.first_position
    candidates = bad_words.starts.intersection(vocab)  # one pass over the document's distinct words
    if not candidates:
        return 0
    counts = table.first_counts
    unigrams = bad_words.unigrams
    num = sum(int(counts[vocab[w]]) for w in candidates if w in unigrams)
    present = bad_words.first_words.intersection(candidates)
    if not present:
        return num
    words = table.words
    num_words = len(words)
    wanted = np.zeros(num_words, dtype=np.bool_)
    wanted[[vocab[w] for w in present]] = True
    starts = np.flatnonzero(wanted[table.word_ids]).tolist()
    entries = bad_words.entries
    for n, first_words in bad_words.multi.items():
        for i in starts:
            if i + n <= num_words and words[i] in first_words and " ".join(words[i : i + n]) in entries:
                num += 1
    return num


def _membership(words: frozenset[str]):
    def compute(tokens: list[str]) -> np.ndarray:
        return np.fromiter(map(words.__contains__, tokens), dtype=np.bool_, count=len(tokens))

    return compute


def _counter(words: frozenset[str]):
    if _signals_kernel is not None:  # the same count in one C loop
        def count(tokens: tuple[str, ...]) -> int:
            return _signals_kernel.count_tokens(tokens, 0, words)
    else:
        def count(tokens: tuple[str, ...]) -> int:
            return sum(map(words.__contains__, tokens))

    return count


def rps_doc_stop_word_fraction(doc: Document, lists: WordLists) -> Spans:
    """Raw WordPunct tokens that are stop words, per raw token; case-sensitive as RPv2
    RPS_Doc_Stop_Word_Fraction (0.0 when the document has no normalized words)."""
    stop_words = lists.stop_words(doc.language)
    if stop_words is None:
        return [(0, doc.num_chars, None)]
    if doc.num_normalized_words == 0:
        return [(0, doc.num_chars, 0.0)]
    # once per distinct word per process: a column of the vocabulary keyed by the list itself
    num = doc.count_raw_words(("stop_word", stop_words), _membership(stop_words), _counter(stop_words))
    return [(0, doc.num_chars, round(num / doc.num_raw_words, PRECISION))]


def rps_doc_ut1_blacklist(doc: Document, lists: WordLists) -> Spans:
    """UT1 category id of the document's exact source domain, or None (RPv2 RPS_Doc_UT1_Blacklist).

    RPv2 looks the CCNet ``source_domain`` (the URL's netloc) up as is: ``www.`` prefixes and ports
    make a listed domain miss.
    """
    index = lists.ut1_domains()
    if index is None:
        return [(0, doc.num_chars, None)]
    return [(0, doc.num_chars, index.get(doc.domain))]  # type: ignore[arg-type]


# name -> function(doc) ; the list-based ones are in WORD_LIST_SIGNALS (function(doc, lists))
SIGNALS = {
    "rps_doc_curly_bracket": rps_doc_curly_bracket,
    "rps_doc_lorem_ipsum": rps_doc_lorem_ipsum,
}
WORD_LIST_SIGNALS = {
    "rps_doc_ldnoobw_words": rps_doc_ldnoobw_words,
    "rps_doc_stop_word_fraction": rps_doc_stop_word_fraction,
    "rps_doc_ut1_blacklist": rps_doc_ut1_blacklist,
}
