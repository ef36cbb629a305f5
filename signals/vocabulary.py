"""A process-wide word -> id table with per-word values computed once per distinct word.

WHY: several signals ask the same question of every raw token of every document: is it a stop word
(RPv2 RPS_Doc_Stop_Word_Fraction), is it ``str.isupper()`` (RPS_Doc_Frac_All_Caps_Words), does it
contain an ASCII letter (RPS_Doc_Frac_No_Alph_Words), what is its DSIR hash (Base_Importance). Asked
word by word in Python, each question costs a pass of ~50 ns per token. A vocabulary repeats across
documents (Zipf), so we look each token up once per document in one dict (:meth:`Vocabulary.ids`,
an integer array of word ids) and answer every question with a numpy gather from a *column*: an
array indexed by word id, holding the answer for every word the vocabulary has seen. A column is
computed for new words only, in one batch, the first time it is read after they arrived.

The values are the same as asking each word: a column entry is ``compute([word])`` for that word,
whatever batch it was computed in (every column function is word-wise).

Bounded memory: when the table reaches ``max_words`` entries, :func:`shared_vocabulary` hands out a
fresh table; a Document keeps the table its ids came from, so ids and columns always match. Reads
and growth are under a lock (a Beam worker may share the table between threads).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable, Sequence

import numpy as np

try:  # signals/_signals_kernel.c: the same lookups and insertions in one C loop per document
    from signals import _signals_kernel
except ImportError:  # pragma: no cover - built by `pip install -e .`
    _signals_kernel = None

MAX_WORDS = 1 << 20

Column = Callable[[list[str]], np.ndarray]


class Vocabulary:
    """word -> dense id (first come, first numbered), and per-word columns over those ids."""

    def __init__(self, max_words: int = MAX_WORDS) -> None:
        self.max_words = max_words
        self._ids: dict[str, int] = {}
        self.words: list[str] = []
        # key -> (array with at least `filled` entries, filled)
        self._columns: dict[Hashable, tuple[np.ndarray, int]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.words)

    @property
    def full(self) -> bool:
        return len(self.words) >= self.max_words

    def ids(self, words: Sequence[str]) -> np.ndarray:
        """The int64 id of every word (new words get the next ids, in order of first appearance).

        -1 is never an id, so it marks the words not seen before; they are added under the lock.
        With the C kernel, each distinct word of the call is looked up once (the same ids).
        """
        if _signals_kernel is not None:
            with self._lock:
                return np.frombuffer(_signals_kernel.vocabulary_ids(words, self._ids, self.words), dtype=np.int64)
        return self.ids_python(words)

    def ids_python(self, words: Sequence[str]) -> np.ndarray:
        """:meth:`ids` without the C kernel (the fallback; tests compare both)."""
        n = len(words)
        out = np.fromiter(map(self._ids.get, words, itertools.repeat(-1)), dtype=np.int64, count=n)
        misses = np.flatnonzero(out == -1)
        if misses.size:
            with self._lock:
                table = self._ids
                for i in misses.tolist():
                    word = words[i]
                    word_id = table.get(word)
                    if word_id is None:
                        word_id = table[word] = len(self.words)
                        self.words.append(word)
                    out[i] = word_id
        return out

    def column(self, key: Hashable, compute: Column, dtype: np.dtype | type) -> np.ndarray:
        """The array ``compute(words)`` over every word id so far (``key`` names the column).

        Only the words added since the column was last read are computed. The array may be longer
        than the vocabulary (spare capacity); index it with ids only.
        """
        size = len(self.words)
        entry = self._columns.get(key)
        if entry is not None and entry[1] >= size:
            return entry[0]
        with self._lock:
            size = len(self.words)
            array, filled = self._columns.get(key, (np.zeros(0, dtype=dtype), 0))
            if filled < size:
                if len(array) < size:  # grow geometrically: amortised O(1) per word
                    grown = np.zeros(max(size, 2 * len(array), 1024), dtype=dtype)
                    grown[:filled] = array[:filled]
                    array = grown
                array[filled:size] = compute(self.words[filled:size])
                self._columns[key] = (array, size)
            return array


_shared: Vocabulary | None = None
_shared_lock = threading.Lock()


def shared_vocabulary() -> Vocabulary:
    """The process's current vocabulary; a fresh one once the current one is full."""
    global _shared
    vocab = _shared
    if vocab is None or vocab.full:
        with _shared_lock:
            if _shared is None or _shared.full:
                _shared = Vocabulary()
            vocab = _shared
    return vocab
