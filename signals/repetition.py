"""Repetition signals (RPv2 app/src/core/quality_signals/repetitions.py), one function per signal.

All nine read the normalized words. RPv2 builds a ``Counter`` of word-tuple n-grams for every n. We
find the repeated n-grams level by level with integer arrays instead, exactly (no hashing):

* a word's id is the position of its first occurrence (``dict(zip(reversed(words), ...))``);
* an n-gram can occur twice only if its leading (n-1)-gram does, so level n only looks at the
  positions whose (n-1)-gram repeats, and keys each by (group of its (n-1)-gram, id of its n-th word);
* ``np.unique`` on those keys gives the groups and their counts; once no n-gram repeats, no longer
  one can, and the higher levels are empty without any work.

Counts of repeated n-grams are therefore RPv2's ``Counter`` counts; every other n-gram occurs once.
"""

from __future__ import annotations

import numpy as np

from signals.document import Document

PRECISION = 8  # RPv2 core.constants.PRECISION

Spans = list[tuple[int, int, float | int | None]]

MAX_NGRAM = 10
_EMPTY = np.zeros(0, dtype=np.int64)


class RepeatedNgrams:
    """The n-grams of one size that occur more than once: their start positions (ascending), a group
    id per position (equal ids = equal n-grams) and the n-gram's count per position."""

    __slots__ = ("positions", "groups", "counts")

    def __init__(self, positions: np.ndarray, groups: np.ndarray, counts: np.ndarray) -> None:
        self.positions = positions
        self.groups = groups
        self.counts = counts


class NgramTable:
    """Word ids, word lengths and the repeated n-grams (n = 1..MAX_NGRAM) of a document's normalized
    words; levels are built on first use and kept."""

    def __init__(self, words: tuple[str, ...]) -> None:
        num = self.num_words = len(words)
        # word -> position of its first occurrence (later pairs overwrite earlier ones)
        first = dict(zip(reversed(words), range(num - 1, -1, -1), strict=True))
        self.vocab_size = len(first)
        self.word_ids = np.fromiter(map(first.__getitem__, words), dtype=np.int64, count=num)
        self.word_lengths = np.fromiter(map(len, words), dtype=np.int64, count=num)
        self.total_chars = int(self.word_lengths.sum())
        # count of each word, indexed by its first position: nonzero entries in Counter order
        self.first_counts = np.bincount(self.word_ids, minlength=num) if num else _EMPTY
        per_position = self.first_counts[self.word_ids]
        positions = np.flatnonzero(per_position > 1)
        groups = self.word_ids[positions]
        self.levels: dict[int, RepeatedNgrams] = {
            1: RepeatedNgrams(positions, groups, per_position[positions])
        }

    def repeated(self, n: int) -> RepeatedNgrams:
        """The repeated n-grams (none when the document has fewer than n + 1 words)."""
        level = self.levels.get(n)
        if level is not None:
            return level
        prev = self.repeated(n - 1)
        # the n-gram at i needs words i .. i + n - 1
        starts = prev.positions[prev.positions + (n - 1) < self.num_words]
        if len(starts) < 2:
            level = RepeatedNgrams(_EMPTY, _EMPTY, _EMPTY)
        else:
            prev_groups = prev.groups[: len(starts)]  # positions are ascending: the kept ones lead
            keys = prev_groups * self.num_words + self.word_ids[starts + (n - 1)]
            _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
            inverse = inverse.reshape(-1)
            per_position = counts[inverse]
            keep = per_position > 1
            level = RepeatedNgrams(starts[keep], inverse[keep], per_position[keep])
        self.levels[n] = level
        return level


def ngram_table(doc: Document) -> NgramTable:
    """The document's shared :class:`NgramTable` (computed once, kept in ``doc.cache``)."""
    return doc.cached("repetition.ngrams", lambda d: NgramTable(d.normalized_words))


def frac_chars_top_ngram(doc: Document, n: int) -> float:
    """RPv2 Base_RPS_Frac_Chars_In_Top_NGram: characters of the most frequent n-gram times its count
    over all word characters; the most frequent n-gram is the first to occur among those with the
    highest count (``Counter.most_common(1)``), 0.0 when no n-gram occurs twice. Overlapping
    occurrences are all counted, so values above 1 are possible (as in RPv2)."""
    table = ngram_table(doc)
    level = table.repeated(n)
    if len(level.positions) == 0:
        return 0.0
    count = int(level.counts.max())
    first = int(level.positions[int(np.argmax(level.counts == count))])
    chars = int(table.word_lengths[first : first + n].sum())
    return round(chars * count / table.total_chars, PRECISION)


def frac_chars_dupe_ngrams(doc: Document, n: int) -> float:
    """RPv2 Base_RPS_Frac_Chars_In_Dupe_NGrams: characters of the words covered by some n-gram that
    occurs more than once, over all word characters (each word counted once)."""
    table = ngram_table(doc)
    num_words = table.num_words
    if num_words < n:
        return 0.0
    level = table.repeated(n)
    if len(level.positions) == 0 or table.total_chars == 0:
        return 0.0
    # +1 where a repeated n-gram starts, -1 where it ends: words with a positive running sum are covered
    delta = np.bincount(level.positions, minlength=num_words + 1)
    delta -= np.bincount(level.positions + n, minlength=num_words + 1)
    covered = np.cumsum(delta[:num_words]) > 0
    chars_duped = int(table.word_lengths[covered].sum())
    return round(chars_duped / table.total_chars, PRECISION)


def _top(n: int):
    def signal(doc: Document) -> Spans:
        return [(0, len(doc), frac_chars_top_ngram(doc, n))]

    signal.__name__ = f"rps_doc_frac_chars_top_{n}gram"
    signal.__doc__ = f"Fraction of word characters in the most frequent word {n}-gram (RPv2)."
    return signal


def _dupe(n: int):
    def signal(doc: Document) -> Spans:
        return [(0, len(doc), frac_chars_dupe_ngrams(doc, n))]

    signal.__name__ = f"rps_doc_frac_chars_dupe_{n}grams"
    signal.__doc__ = f"Fraction of word characters inside duplicated word {n}-grams (RPv2)."
    return signal


rps_doc_frac_chars_top_2gram = _top(2)
rps_doc_frac_chars_top_3gram = _top(3)
rps_doc_frac_chars_top_4gram = _top(4)
rps_doc_frac_chars_dupe_5grams = _dupe(5)
rps_doc_frac_chars_dupe_6grams = _dupe(6)
rps_doc_frac_chars_dupe_7grams = _dupe(7)
rps_doc_frac_chars_dupe_8grams = _dupe(8)
rps_doc_frac_chars_dupe_9grams = _dupe(9)
rps_doc_frac_chars_dupe_10grams = _dupe(10)

# RPv2 emit order (alphabetical class names within the module)
SIGNALS = {
    "rps_doc_frac_chars_dupe_10grams": rps_doc_frac_chars_dupe_10grams,
    "rps_doc_frac_chars_dupe_5grams": rps_doc_frac_chars_dupe_5grams,
    "rps_doc_frac_chars_dupe_6grams": rps_doc_frac_chars_dupe_6grams,
    "rps_doc_frac_chars_dupe_7grams": rps_doc_frac_chars_dupe_7grams,
    "rps_doc_frac_chars_dupe_8grams": rps_doc_frac_chars_dupe_8grams,
    "rps_doc_frac_chars_dupe_9grams": rps_doc_frac_chars_dupe_9grams,
    "rps_doc_frac_chars_top_2gram": rps_doc_frac_chars_top_2gram,
    "rps_doc_frac_chars_top_3gram": rps_doc_frac_chars_top_3gram,
    "rps_doc_frac_chars_top_4gram": rps_doc_frac_chars_top_4gram,
}
