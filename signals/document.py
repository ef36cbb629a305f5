"""The document views every quality signal reads, each computed once.

Mirrors RedPajama-V2's ``core.document.Document`` (app/src/core/document.py): the same attribute names
(``raw_content``, ``normalized_content``, ``raw_lines``, ``normalized_lines``, ``raw_words``,
``normalized_words``, ``num_raw_words``, ``num_normalized_words``, ``domain``, ``raw_2grams`` ...
``norm_4grams``) with the same values, plus ``language`` and flat views that the signals use without
building one object per line or character: ``raw_line_texts``, ``normalized_line_texts``,
``line_starts``, ``line_ends``, ``lowered_nfd`` (the text with punctuation removed, lower-cased and
NFD-normalized but whitespace kept, from which the normalized text, words and lines are cut) and
``code_points`` (the raw text as an integer array). ``raw_words`` are nltk's WordPunct tokens as RPv2
got them (``regex`` engine semantics; see signals/text_normalization.py).

Differences from RPv2 that do not change any value:

* views that not every caller needs (lines, n-gram tuples, TextSlice objects) are computed on first
  use and then kept;
* the normalized text, words and lines come from one lower-cased, NFD-normalized copy of the text
  instead of normalizing the document and each line separately (signals/text_normalization.py says
  why the results are identical);
* ``raw_word_ids`` numbers the raw words in a process-wide vocabulary, so that per-word questions
  (stop word, all caps, DSIR hash) are answered once per distinct word, not once per token;
* ``cache`` is a per-document dict where signal families keep what several signals share (dense n-gram
  ids, per-character class counts, hashed features), so nothing is tokenized twice.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Hashable
from itertools import accumulate
from typing import Any

import numpy as np

from signals.text_normalization import (
    NATIVE_TOKENIZER,
    code_points,
    remove_punctuation,
    split_lines,
    wordpunct_tokenize,
)
from signals.vocabulary import Column, Vocabulary, shared_vocabulary


class TextSlice:
    """A line of a document: its text and its [start, end) offsets in code points (RPv2 ``TextSlice``).

    ``len()`` is the length of ``text`` (as in RPv2), which for a normalized line differs from
    ``end - start``.
    """

    __slots__ = ("text", "start", "end")

    def __init__(self, text: str, start: int, end: int) -> None:
        self.text = text
        self.start = start
        self.end = end

    def __len__(self) -> int:
        return len(self.text)

    def __iter__(self):
        return iter((self.text, self.start, self.end))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TextSlice):
            return NotImplemented
        return (self.text, self.start, self.end) == (other.text, other.start, other.end)

    def __repr__(self) -> str:
        return f"TextSlice({self.text!r}, {self.start}, {self.end})"


def _ngrams(seq: tuple[str, ...], n: int) -> tuple[tuple[str, ...], ...]:
    """RPv2 ``form_ngrams``: every window of n consecutive items, as tuples; () when len(seq) < n."""
    return tuple(zip(*(seq[i:] for i in range(n)), strict=False))


class Document:
    """One document's shared views (RPv2 ``Document`` semantics).

    Args:
        raw_content: the document text (CCNet ``raw_content``).
        domain: the source domain (CCNet ``source_domain``), used by the UT1 blacklist lookup.
        language: the document language (CCNet ``language``), used to pick per-language artifacts.
    """

    __slots__ = (
        "raw_content", "num_chars", "domain", "language", "normalized_content", "raw_words", "normalized_words",
        "num_raw_words", "num_normalized_words", "cache",
        "lowered_nfd", "_code_points", "_raw_line_texts", "_normalized_line_texts", "_line_starts", "_line_ends",
        "_raw_lines", "_normalized_lines", "_grams", "_raw_word_ids", "vocabulary", "use_vocabulary",
    )

    def __init__(
        self, raw_content: str, domain: str | None = None, language: str | None = None,
        use_vocabulary: bool = True,
    ) -> None:
        self.raw_content: str = raw_content
        self.num_chars: int = len(raw_content)  # len(document) in RPv2: the end of every doc-level span
        self.domain: str | None = domain
        self.language: str | None = language

        # punctuation removed, lower-cased, NFD, whitespace as in the text: the normalized words are
        # its whitespace split, the normalized lines its "\n" split (text_normalization explains why)
        self.lowered_nfd: str = unicodedata.normalize("NFD", remove_punctuation(raw_content).lower())
        words = tuple(self.lowered_nfd.split())
        self.normalized_words: tuple[str, ...] = words
        self.normalized_content: str = " ".join(words)
        self._code_points: np.ndarray | None = None
        points = None if NATIVE_TOKENIZER or raw_content.isascii() else self.code_points
        self.raw_words: tuple[str, ...] = tuple(wordpunct_tokenize(raw_content, points))
        self.num_raw_words: int = len(self.raw_words)
        self.num_normalized_words: int = len(words)
        self.cache: dict[str, Any] = {}

        self._raw_line_texts: list[str] | None = None
        self._normalized_line_texts: list[str] | None = None
        self._line_starts: list[int] | None = None
        self._line_ends: list[int] | None = None
        self._raw_lines: tuple[TextSlice, ...] | None = None
        self._normalized_lines: tuple[TextSlice, ...] | None = None
        self._grams: dict[str, tuple] = {}
        self._raw_word_ids: np.ndarray | None = None
        self.vocabulary: Vocabulary | None = None
        # the ids cost one lookup per token in a large table (mostly CPU cache misses): worth it when
        # the DSIR signals need them too, not for the rule-based signals alone
        self.use_vocabulary = use_vocabulary

    def __len__(self) -> int:
        return len(self.raw_content)

    @property
    def code_points(self) -> np.ndarray:
        """The code points of ``raw_content`` (uint8 for ASCII text, else uint32)."""
        if self._code_points is None:
            self._code_points = code_points(self.raw_content)
        return self._code_points

    @property
    def raw_word_ids(self) -> np.ndarray:
        """The id of every raw word in ``self.vocabulary`` (the process's shared word table, see
        signals/vocabulary.py): per-word answers (stop word? all caps? DSIR hash?) are gathers."""
        if self._raw_word_ids is None:
            if self.vocabulary is None:
                self.vocabulary = shared_vocabulary()
            self._raw_word_ids = self.vocabulary.ids(self.raw_words)
        return self._raw_word_ids

    def count_raw_words(
        self, key: Hashable, compute: Column, count_directly: Callable[[tuple[str, ...]], int]
    ) -> int:
        """How many raw words have a word-wise property: ``compute(words)`` flags it per word (a
        vocabulary column, see :meth:`raw_word_column`), ``count_directly(raw_words)`` counts it in
        one pass over the tokens, for a Document made with ``use_vocabulary=False``. Same number."""
        if not self.use_vocabulary and self._raw_word_ids is None:
            return count_directly(self.raw_words)
        return int(np.count_nonzero(self.raw_word_column(key, compute, np.bool_)))

    def raw_word_column(self, key: Hashable, compute: Column, dtype: np.dtype | type) -> np.ndarray:
        """``compute(raw_words)`` as an array, from the vocabulary's column ``key`` (one computation
        per distinct word per process, not per token)."""
        ids = self.raw_word_ids
        return self.vocabulary.column(key, compute, dtype)[ids]  # type: ignore[union-attr]

    # ----------------------------------------------------------------------------------- lines
    @property
    def raw_line_texts(self) -> list[str]:
        """Texts of RPv2's raw lines, each with its trailing newline."""
        if self._raw_line_texts is None:
            self._raw_line_texts = split_lines(self.raw_content)
        return self._raw_line_texts

    @property
    def normalized_line_texts(self) -> list[str]:
        """RPv2 ``normalize(line)`` for every raw line, aligned with ``raw_line_texts``."""
        if self._normalized_line_texts is None:
            pieces = self.lowered_nfd.split("\n")[: len(self.raw_line_texts)]
            self._normalized_line_texts = [" ".join(p.split()) for p in pieces]
        return self._normalized_line_texts

    @property
    def line_starts(self) -> list[int]:
        """Start offset (code points) of every line."""
        if self._line_starts is None:
            ends = list(accumulate(map(len, self.raw_line_texts)))
            self._line_ends = ends
            self._line_starts = [0, *ends[:-1]] if ends else []
        return self._line_starts

    @property
    def line_ends(self) -> list[int]:
        """End offset (code points, exclusive, after the newline) of every line."""
        if self._line_ends is None:
            self.line_starts  # noqa: B018 - fills both
        return self._line_ends  # type: ignore[return-value]

    @property
    def raw_lines(self) -> tuple[TextSlice, ...]:
        """RPv2 ``raw_lines``: TextSlice(text, start, end) per line."""
        if self._raw_lines is None:
            self._raw_lines = tuple(map(TextSlice, self.raw_line_texts, self.line_starts, self.line_ends))
        return self._raw_lines

    @property
    def normalized_lines(self) -> tuple[TextSlice, ...]:
        """RPv2 ``normalized_lines``: TextSlice(normalize(line), start, end) per line."""
        if self._normalized_lines is None:
            self._normalized_lines = tuple(
                map(TextSlice, self.normalized_line_texts, self.line_starts, self.line_ends)
            )
        return self._normalized_lines

    # ---------------------------------------------------------------------------------- n-grams
    def _gram(self, key: str, seq: tuple[str, ...], n: int) -> tuple[tuple[str, ...], ...]:
        grams = self._grams.get(key)
        if grams is None:
            grams = self._grams[key] = _ngrams(seq, n)
        return grams

    @property
    def raw_1grams(self) -> tuple[str, ...]:
        return self.raw_words

    @property
    def raw_2grams(self) -> tuple[tuple[str, ...], ...]:
        return self._gram("raw2", self.raw_words, 2)

    @property
    def raw_3grams(self) -> tuple[tuple[str, ...], ...]:
        return self._gram("raw3", self.raw_words, 3)

    @property
    def norm_1grams(self) -> tuple[str, ...]:
        return self.normalized_words

    @property
    def norm_2grams(self) -> tuple[tuple[str, ...], ...]:
        return self._gram("norm2", self.normalized_words, 2)

    @property
    def norm_3grams(self) -> tuple[tuple[str, ...], ...]:
        return self._gram("norm3", self.normalized_words, 3)

    @property
    def norm_4grams(self) -> tuple[tuple[str, ...], ...]:
        return self._gram("norm4", self.normalized_words, 4)

    # ------------------------------------------------------------------------------- shared cache
    def cached(self, key: str, compute: Callable[[Document], Any]) -> Any:
        """``compute(self)`` once per document; later calls with the same key return the kept value."""
        try:
            return self.cache[key]
        except KeyError:
            value = self.cache[key] = compute(self)
            return value

    @classmethod
    def from_record(cls, record: dict) -> Document:
        """A Document for a CCNet-format record (``raw_content``, ``source_domain``, ``language``)."""
        return cls(
            record.get("raw_content") or "",
            domain=record.get("source_domain"),
            language=record.get("language"),
        )
