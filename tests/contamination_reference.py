"""The brute-force contamination reference the contamination tests check the index against (test helper).

It counts n-grams as plain Python sets of word tuples (RPv2's reference ``normalize``, then a whitespace
split), with no hashing, no index and no numpy, so that it shares nothing with the code it checks: it must
never import ``pipeline.contamination`` or ``signals.contamination``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from signals.text_normalization import normalize


def text_passages(path: Path) -> list[str]:
    """The passages of a plain-text benchmark: its non-blank lines, one passage each."""
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def words(text: str) -> list[str]:
    """The words the index counts: RPv2's normalized text split on whitespace."""
    return normalize(text).split()


def gram_tuples(text: str, n: int) -> list[tuple[str, ...]]:
    """Every word n-gram of ``text`` in order, one per starting position (none when shorter than n)."""
    w = words(text)
    return [tuple(w[i:i + n]) for i in range(len(w) - n + 1)]


def reference_set(passages: Iterable[str], n: int) -> set[tuple[str, ...]]:
    """The distinct n-grams of a benchmark's passages."""
    grams: set[tuple[str, ...]] = set()
    for passage in passages:
        grams.update(gram_tuples(passage, n))
    return grams


def reference_overlap(text: str, grams: set[tuple[str, ...]], n: int) -> tuple[float, int]:
    """(fraction of n-gram positions in ``grams``, longest run of matching positions + n - 1 words), as the
    ``contam_<name>_frac`` and ``contam_<name>_span`` columns define them; (0.0, 0) without an n-gram."""
    positions = gram_tuples(text, n)
    if not positions:
        return 0.0, 0
    hits = [g in grams for g in positions]
    best = run = 0
    for hit in hits:
        run = run + 1 if hit else 0
        best = max(best, run)
    return sum(hits) / len(hits), (best + n - 1) if best else 0
