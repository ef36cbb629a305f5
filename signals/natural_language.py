"""Natural-language signals (RPv2 app/src/core/quality_signals/natural_language.py).

One function per signal, each returning ``[(0, len(raw_content), score)]`` with RPv2's value: the same
word views, the same None cases, the same float expressions and 8-decimal rounding. Per-token tests
(``str.isupper``, contains [a-zA-Z]) are answered once per distinct word, through the document's
vocabulary columns (signals/vocabulary.py), and counted with numpy.
"""

from __future__ import annotations

import math
import re
import string

import numpy as np

from signals.document import Document
from signals.repetition import NgramTable, ngram_table

try:  # signals/_signals_kernel.c
    from signals import _signals_kernel
except ImportError:  # pragma: no cover - built by `pip install -e .`
    _signals_kernel = None

PRECISION = 8  # RPv2 core.constants.PRECISION

Spans = list[tuple[int, int, float | int | None]]

# RPv2 RPS_Doc_Num_Sentences.SENT_PATTERN
_SENTENCE_PATTERN = re.compile(r"\b[^.!?]+[.!?]*", flags=re.UNICODE)
_ASCII_LETTER = re.compile(r"[a-zA-Z]")  # RPv2 RPS_Doc_Frac_No_Alph_Words.ALPH_REGEX
_BYTES_NOT_LETTER_OR_SPACE = bytes(b for b in range(256) if not (chr(b) in string.ascii_letters or b == 32))
_SYMBOLS = ("#", "...", "…")  # RPv2 RPS_Doc_Symbol_To_Word_Ratio.SYMBOLS
_ELLIPSIS = ("...", "…")  # RPv2 RPS_Doc_Frac_Lines_End_With_Ellipsis.ELLIPSIS_SYMBOLS


def rps_doc_num_sentences(doc: Document) -> Spans:
    """Matches of r'\\b[^.!?]+[.!?]*' in the raw text, as a float (RPv2 RPS_Doc_Num_Sentences)."""
    # subn counts the same matches as findall without building a string per sentence
    return [(0, doc.num_chars, float(_SENTENCE_PATTERN.subn("", doc.raw_content)[1]))]


def rps_doc_word_count(doc: Document) -> Spans:
    """Number of normalized words, an int (RPv2 RPS_Doc_Word_Count)."""
    return [(0, doc.num_chars, doc.num_normalized_words)]


def rps_doc_mean_word_length(doc: Document) -> Spans:
    """Mean length of the normalized words (NFD combining marks count), None without words
    (RPv2 RPS_Doc_Mean_Word_Length)."""
    num = doc.num_normalized_words
    if num == 0:
        return [(0, doc.num_chars, None)]
    num_chars = len(doc.normalized_content) - (num - 1)  # words joined by single spaces
    return [(0, doc.num_chars, round(float(num_chars) / num, PRECISION))]


def rps_doc_symbol_to_word_ratio(doc: Document) -> Spans:
    """('#' + '...' + '…' occurrences in the raw text) per raw token (RPv2 RPS_Doc_Symbol_To_Word_Ratio)."""
    num_words = doc.num_raw_words
    if num_words == 0:
        return [(0, doc.num_chars, None)]
    raw = doc.raw_content
    num_symbols = float(sum(raw.count(s) for s in _SYMBOLS))
    return [(0, doc.num_chars, round(num_symbols / num_words, PRECISION))]


def rps_doc_frac_lines_end_with_ellipsis(doc: Document) -> Spans:
    """Raw lines ending (after rstrip) in '...' or '…', per line; None without lines
    (RPv2 RPS_Doc_Frac_Lines_End_With_Ellipsis)."""
    lines = doc.raw_line_texts
    if not lines:
        return [(0, doc.num_chars, None)]
    if "..." not in doc.raw_content and "…" not in doc.raw_content:
        return [(0, doc.num_chars, 0.0)]
    num = float(sum(line.rstrip().endswith(_ELLIPSIS) for line in lines))
    return [(0, doc.num_chars, round(num / len(lines), PRECISION))]


def count_with_ascii_letter(tokens: tuple[str, ...]) -> int:
    """How many tokens contain a character of [a-zA-Z] (RPv2's ALPH_REGEX search per token); one C loop
    with the kernel, else :func:`count_with_ascii_letter_python`."""
    if _signals_kernel is not None:
        return _signals_kernel.count_tokens(tokens, 2)
    return count_with_ascii_letter_python(tokens)


def count_with_ascii_letter_python(tokens: tuple[str, ...]) -> int:
    """:func:`count_with_ascii_letter` without the kernel.

    Tokens never contain whitespace, so ``" ".join(tokens)`` keeps them apart. In its UTF-8 bytes an
    ASCII letter or space is only ever itself (every byte of a multi-byte character is >= 0x80), so
    deleting every byte but letters and spaces leaves one run of letters per token with a letter;
    the runs are counted with numpy: a few C-level passes instead of a regex search per token.
    """
    if not tokens:
        return 0
    kept = " ".join(tokens).encode("utf-8", "surrogatepass").translate(None, _BYTES_NOT_LETTER_OR_SPACE)
    letters = np.frombuffer(kept, dtype=np.uint8) != 32
    if len(letters) == 0:
        return 0
    # words = runs of letters: count the letters that follow a space (or start the text)
    return int(letters[0]) + int(np.count_nonzero(letters[1:] & ~letters[:-1]))


def _count_upper(tokens: tuple[str, ...]) -> int:
    """How many tokens are ``str.isupper()`` (the kernel reimplements str.isupper; tests compare)."""
    if _signals_kernel is not None:
        return _signals_kernel.count_tokens(tokens, 1)
    return sum(map(str.isupper, tokens))


def _has_ascii_letter(tokens: list[str]) -> np.ndarray:
    """Per token: does it contain a character of [a-zA-Z] (RPv2's ALPH_REGEX search)."""
    return np.fromiter((_ASCII_LETTER.search(t) is not None for t in tokens), dtype=np.bool_, count=len(tokens))


def _is_upper(tokens: list[str]) -> np.ndarray:
    """Per token: ``str.isupper()``."""
    return np.fromiter(map(str.isupper, tokens), dtype=np.bool_, count=len(tokens))


def rps_doc_frac_no_alph_words(doc: Document) -> Spans:
    """1 - (raw tokens containing [a-zA-Z]) / (raw tokens); None without tokens
    (RPv2 RPS_Doc_Frac_No_Alph_Words)."""
    num_words = doc.num_raw_words
    if num_words == 0:
        return [(0, doc.num_chars, None)]
    with_alpha = float(doc.count_raw_words("has_ascii_letter", _has_ascii_letter, count_with_ascii_letter))
    return [(0, doc.num_chars, round(1.0 - with_alpha / num_words, PRECISION))]


def rps_doc_frac_unique_words(doc: Document) -> Spans:
    """Distinct normalized words per normalized word; None without words (RPv2 RPS_Doc_Frac_Unique_Words)."""
    num = doc.num_normalized_words
    if num == 0:
        return [(0, doc.num_chars, None)]
    return [(0, doc.num_chars, round(float(ngram_table(doc).vocab_size) / num, PRECISION))]


def unigram_entropy(doc: Document) -> float | None:
    """RPv2 RPS_Doc_Unigram_Entropy: ``sum(-x / total * log(x / total))`` over the word counts in
    first-occurrence order (``Counter`` order), summed left to right from 0 as Python 3.11's ``sum``.

    Every term depends only on its count, so each distinct count is evaluated once with
    ``math.log``; the ordered left-to-right sum is numpy's ``add.accumulate`` (sequential, on every
    Python version; ``sum`` became compensated in 3.12). Adding the start value 0 last turns the -0.0
    of a one-word vocabulary into RPv2's 0.0.
    """
    table = ngram_table(doc)
    total = table.num_words
    if total == 0:
        return None
    if _signals_kernel is not None:  # the same double operations in one C loop (tests compare)
        counts = np.ascontiguousarray(table.first_counts, dtype=np.int64)
        return round(_signals_kernel.unigram_entropy(counts, total) + 0, PRECISION)
    return unigram_entropy_python(table)


def unigram_entropy_python(table: NgramTable) -> float:
    """:func:`unigram_entropy` from a document's NgramTable (with words), without the kernel."""
    total = table.num_words
    counts = table.first_counts[table.first_counts > 0]  # word counts in first-occurrence order
    distinct = set(counts.tolist())
    terms = np.zeros(max(distinct) + 1, dtype=np.float64)
    for x in distinct:
        terms[x] = -x / total * math.log(x / total)
    entropy = float(np.add.accumulate(terms[counts])[-1]) + 0
    return round(entropy, PRECISION)


def rps_doc_unigram_entropy(doc: Document) -> Spans:
    """Entropy of the normalized word distribution; None without words (RPv2 RPS_Doc_Unigram_Entropy)."""
    return [(0, doc.num_chars, unigram_entropy(doc))]


def rps_doc_frac_all_caps_words(doc: Document) -> Spans:
    """Raw tokens for which ``str.isupper()`` holds, per raw token; None without tokens
    (RPv2 RPS_Doc_Frac_All_Caps_Words)."""
    num_words = doc.num_raw_words
    if num_words == 0:
        return [(0, doc.num_chars, None)]
    num = float(doc.count_raw_words("isupper", _is_upper, _count_upper))
    return [(0, doc.num_chars, round(num / num_words, PRECISION))]


# RPv2 emit order (alphabetical class names within the module)
SIGNALS = {
    "rps_doc_frac_all_caps_words": rps_doc_frac_all_caps_words,
    "rps_doc_frac_lines_end_with_ellipsis": rps_doc_frac_lines_end_with_ellipsis,
    "rps_doc_frac_no_alph_words": rps_doc_frac_no_alph_words,
    "rps_doc_frac_unique_words": rps_doc_frac_unique_words,
    "rps_doc_mean_word_length": rps_doc_mean_word_length,
    "rps_doc_num_sentences": rps_doc_num_sentences,
    "rps_doc_symbol_to_word_ratio": rps_doc_symbol_to_word_ratio,
    "rps_doc_unigram_entropy": rps_doc_unigram_entropy,
    "rps_doc_word_count": rps_doc_word_count,
}
