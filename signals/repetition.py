"""Repetition signals (RPv2 app/src/core/quality_signals/repetitions.py), one function per signal.

All nine read the normalized words. RPv2 builds a ``Counter`` of word-tuple n-grams for every n. We
find the repeated n-grams level by level with integer arrays instead, exactly (no hashing):

* a word's id is the position of its first occurrence (``dict(zip(reversed(words), ...))``);
* an n-gram can occur twice only if its leading (n-1)-gram does, so level n only looks at the
  positions whose (n-1)-gram repeats, and keys each by (group of its (n-1)-gram, id of its n-th word);
* ``np.unique`` on those keys gives the groups and their counts; once no n-gram repeats, no longer
  one can, and the higher levels are empty without any work.

Counts of repeated n-grams are therefore RPv2's ``Counter`` counts; every other n-gram occurs once.

The same algorithm runs in C (signals/_signals_kernel.c, built by ``pip install -e .``): one call per
document gives the integer numerators of all nine fractions, which are divided and rounded here as the
Python path does, so both give the same floats (tests/test_signals_kernel.py checks it). The C kernel is
used when it is built; otherwise the Python path below, with the same values.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from signals.document import Document

try:
    from signals import _signals_kernel
except ImportError:  # no C compiler at install time: the Python path gives the same values
    _signals_kernel = None

PRECISION = 8  # RPv2 core.constants.PRECISION

Spans = list[tuple[int, int, float | int | None]]

MAX_NGRAM = 10
_EMPTY = np.zeros(0, dtype=np.int64)


class RepeatedNgrams:
    """The n-grams of one size that occur more than once: their start positions (ascending), a group
    id per position (equal ids = equal n-grams, ids below the number of words) and the n-gram's count
    per position. Numpy arrays for large levels; plain lists for small ones (at most ``_SMALL``
    positions), where Python beats numpy's per-call overhead."""

    __slots__ = ("positions", "groups", "counts")

    def __init__(
        self, positions: np.ndarray | list[int], groups: np.ndarray | list[int], counts: np.ndarray | list[int]
    ) -> None:
        self.positions = positions
        self.groups = groups
        self.counts = counts


_NONE_REPEATED = RepeatedNgrams([], [], [])


class NgramTable:
    """Word ids and the repeated n-grams (n = 1..MAX_NGRAM) of a document's normalized words; levels
    are built on first use and kept."""

    def __init__(
        self,
        words: tuple[str, ...],
        total_chars: int | None = None,
        first_position: dict[str, int] | None = None,
        word_ids: np.ndarray | None = None,
        first_counts: np.ndarray | None = None,
    ) -> None:
        num = self.num_words = len(words)
        self.words = words
        # word -> position of its first occurrence, and each word's id = that position, in one pass:
        # setdefault stores a word's position the first time and returns the stored one after
        if first_position is None or word_ids is None:
            first_position = {}
            word_ids = np.fromiter(
                map(first_position.setdefault, words, range(num)), dtype=np.int64, count=num
            )
        self.first_position = first_position
        self.vocab_size = len(first_position)
        self.word_ids = word_ids
        # sum(len(w) for w in words); the caller knows it from the joined text
        self.total_chars = sum(map(len, words)) if total_chars is None else total_chars
        self._word_lengths: np.ndarray | None = None
        self._word_id_list: list[int] | None = None
        # count of each word, indexed by its first position: nonzero entries in Counter order
        if first_counts is None:
            first_counts = np.bincount(word_ids, minlength=num) if num else _EMPTY
        self.first_counts = first_counts
        self.levels: dict[int, RepeatedNgrams] = {}
        self._longest_repeat = MAX_NGRAM  # lowered once a level has no repeats

    @property
    def word_lengths(self) -> np.ndarray:
        if self._word_lengths is None:
            self._word_lengths = np.fromiter(map(len, self.words), dtype=np.int64, count=self.num_words)
        return self._word_lengths

    def repeated(self, n: int) -> RepeatedNgrams:
        """The repeated n-grams (none when the document has fewer than n + 1 words)."""
        level = self.levels.get(n)
        if level is not None:
            return level
        if n > self._longest_repeat:
            return _NONE_REPEATED
        if n == 1:
            per_position = self.first_counts[self.word_ids]
            positions = np.flatnonzero(per_position > 1)
            level = self.levels[1] = RepeatedNgrams(positions, self.word_ids[positions], per_position[positions])
            return level
        prev = self.repeated(n - 1)
        level = self._next_level(prev, n)
        self.levels[n] = level
        if len(level.positions) == 0:
            self._longest_repeat = n - 1  # no longer n-gram can repeat either
        return level

    def _next_level(self, prev: RepeatedNgrams, n: int) -> RepeatedNgrams:
        positions = prev.positions
        if len(positions) < 2:
            return _NONE_REPEATED
        if len(positions) <= _SMALL:
            return self._next_level_small(prev, n)
        # the n-gram at i repeats only if the (n-1)-grams at i and at i + 1 both repeat
        repeats = np.zeros(self.num_words + 1, dtype=np.bool_)
        repeats[positions] = True
        keep = repeats[positions + 1]
        starts = positions[keep]
        if len(starts) < 2:
            return _NONE_REPEATED
        keys = prev.groups[keep] * self.num_words + self.word_ids[starts + (n - 1)]
        if len(keys) <= _SMALL:
            return _group_small(starts.tolist(), keys.tolist())
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        per_position = counts[inverse]
        repeated = per_position > 1
        return RepeatedNgrams(starts[repeated], inverse[repeated], per_position[repeated])

    def _next_level_small(self, prev: RepeatedNgrams, n: int) -> RepeatedNgrams:
        """:meth:`_next_level` with Python lists, for a level of at most ``_SMALL`` positions."""
        positions, groups = prev.positions, prev.groups
        if isinstance(positions, np.ndarray):
            positions, groups = positions.tolist(), groups.tolist()
        present = set(positions)
        word_ids = self.word_id_list
        num = self.num_words
        starts = []
        keys = []
        for i, group in zip(positions, groups, strict=True):
            if i + 1 in present:
                starts.append(i)
                keys.append(group * num + word_ids[i + n - 1])
        if len(starts) < 2:
            return _NONE_REPEATED
        return _group_small(starts, keys)

    @property
    def word_id_list(self) -> list[int]:
        """``word_ids`` as a Python list (for the small levels)."""
        if self._word_id_list is None:
            self._word_id_list = self.word_ids.tolist()
        return self._word_id_list


_SMALL = 48  # below this many candidate n-grams, grouping in Python beats np.unique's overhead


def _group_small(starts: list[int], keys: list[int]) -> RepeatedNgrams:
    """The repeated n-grams among candidates (start, key), as lists; a group id is the n-gram's first
    start (below the number of words, as the next level needs)."""
    counts = Counter(keys)
    if len(counts) == len(keys):
        return _NONE_REPEATED
    first: dict[int, int] = {}
    positions, groups, per_position = [], [], []
    for start, key in zip(starts, keys, strict=True):
        count = counts[key]
        if count > 1:
            positions.append(start)
            groups.append(first.setdefault(key, start))
            per_position.append(count)
    return RepeatedNgrams(positions, groups, per_position)


def ngram_table(doc: Document) -> NgramTable:
    """The document's shared :class:`NgramTable` (computed once, kept in ``doc.cache``)."""
    table = doc.cache.get("repetition.ngrams")
    if table is None:
        table = doc.cache["repetition.ngrams"] = _build_table(doc)
    return table


def _build_table(doc: Document) -> NgramTable:
    words = doc.normalized_words
    # words are joined by single spaces in the normalized text
    total_chars = len(doc.normalized_content) - len(words) + 1 if words else 0
    if _signals_kernel is None:
        return NgramTable(words, total_chars)
    # the same ids, counts and dict as NgramTable's own dict.setdefault pass, in C
    ids, counts, first_position = _signals_kernel.first_positions(words)
    return NgramTable(
        words,
        total_chars,
        first_position=first_position,
        word_ids=np.frombuffer(ids, dtype=np.int64),
        first_counts=np.frombuffer(counts, dtype=np.int64),
    )


def native_kernel_available() -> bool:
    """Whether signals/_signals_kernel.c is built (then the nine signals use it)."""
    return _signals_kernel is not None


TOP_NGRAMS = (2, 3, 4)
DUPE_NGRAMS = (5, 6, 7, 8, 9, 10)


def kernel_fractions(doc: Document) -> dict[tuple[str, int], float]:
    """All nine fractions from the C kernel, keyed ("top", n) and ("dupe", n); computed once per
    document (kept in ``doc.cache``). Each is ``round(numerator / word characters, 8)``, 0.0 for a zero
    numerator: the same integers and the same float operations as the Python path."""
    fractions = doc.cache.get("repetition.kernel")
    if fractions is None:
        fractions = doc.cache["repetition.kernel"] = _kernel_fractions(ngram_table(doc))
    return fractions


def _kernel_fractions(table: NgramTable) -> dict[tuple[str, int], float]:
    numerators = _signals_kernel.repetition(table.word_ids, table.words)  # type: ignore[union-attr]
    total = table.total_chars
    keys = [("top", n) for n in TOP_NGRAMS] + [("dupe", n) for n in DUPE_NGRAMS]
    return {
        key: round(num / total, PRECISION) if num else 0.0 for key, num in zip(keys, numerators, strict=True)
    }


def frac_chars_top_ngram(doc: Document, n: int) -> float:
    """RPv2 Base_RPS_Frac_Chars_In_Top_NGram (see :func:`frac_chars_top_ngram_python`), from the C kernel
    when it is built."""
    if _signals_kernel is not None and n in TOP_NGRAMS:
        return kernel_fractions(doc)[("top", n)]
    return frac_chars_top_ngram_python(doc, n)


def frac_chars_dupe_ngrams(doc: Document, n: int) -> float:
    """RPv2 Base_RPS_Frac_Chars_In_Dupe_NGrams (see :func:`frac_chars_dupe_ngrams_python`), from the C
    kernel when it is built."""
    if _signals_kernel is not None and n in DUPE_NGRAMS:
        return kernel_fractions(doc)[("dupe", n)]
    return frac_chars_dupe_ngrams_python(doc, n)


def frac_chars_top_ngram_python(doc: Document, n: int) -> float:
    """RPv2 Base_RPS_Frac_Chars_In_Top_NGram: characters of the most frequent n-gram times its count
    over all word characters; the most frequent n-gram is the first to occur among those with the
    highest count (``Counter.most_common(1)``), 0.0 when no n-gram occurs twice. Overlapping
    occurrences are all counted, so values above 1 are possible (as in RPv2)."""
    table = ngram_table(doc)
    level = table.repeated(n)
    if len(level.positions) == 0:
        return 0.0
    counts = level.counts
    if isinstance(counts, list):
        count = max(counts)
        first = level.positions[counts.index(count)]
    else:
        count = int(counts.max())
        first = int(level.positions[int(np.argmax(counts == count))])
    chars = sum(map(len, table.words[first : first + n]))
    return round(chars * count / table.total_chars, PRECISION)


def frac_chars_dupe_ngrams_python(doc: Document, n: int) -> float:
    """RPv2 Base_RPS_Frac_Chars_In_Dupe_NGrams: characters of the words covered by some n-gram that
    occurs more than once, over all word characters (each word counted once)."""
    table = ngram_table(doc)
    num_words = table.num_words
    if num_words < n:
        return 0.0
    level = table.repeated(n)
    if len(level.positions) == 0 or table.total_chars == 0:
        return 0.0
    if isinstance(level.positions, list):  # few: mark the covered words directly
        covered_words: set[int] = set()
        for start in level.positions:
            covered_words.update(range(start, start + n))
        words = table.words
        chars_duped = sum(len(words[i]) for i in covered_words)
        return round(chars_duped / table.total_chars, PRECISION)
    # +1 where a repeated n-gram starts, -1 where it ends: words with a positive running sum are covered
    delta = np.bincount(level.positions, minlength=num_words + 1)
    delta -= np.bincount(level.positions + n, minlength=num_words + 1)
    covered = np.cumsum(delta[:num_words]) > 0
    chars_duped = int(table.word_lengths[covered].sum())
    return round(chars_duped / table.total_chars, PRECISION)


def _top(n: int):
    def signal(doc: Document) -> Spans:
        return [(0, doc.num_chars, frac_chars_top_ngram(doc, n))]

    signal.__name__ = f"rps_doc_frac_chars_top_{n}gram"
    signal.__doc__ = f"Fraction of word characters in the most frequent word {n}-gram (RPv2)."
    return signal


def _dupe(n: int):
    def signal(doc: Document) -> Spans:
        return [(0, doc.num_chars, frac_chars_dupe_ngrams(doc, n))]

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
