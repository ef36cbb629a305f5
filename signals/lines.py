"""Line-level signals (RPv2 app/src/core/quality_signals/lines.py): one score per RPv2 line.

Each returns ``[(start, end, score), ...]`` with one triple per line of
``re.finditer(r"([^\\n]*\\n|[^\\n]+$)", raw_content)`` (spans include the newline). A document without
lines gives ``[]``, except rps_lines_start_with_bulletpoint, which gives ``[(0, 0, None)]`` as in RPv2.

The two per-character fractions count characters through one lookup table over all code points
(``str.isupper`` / ``str.isnumeric`` of every character), applied to the whole document with numpy and
cut into lines with a prefix sum, instead of calling ``str.isupper`` once per character.
"""

from __future__ import annotations

import numpy as np

from signals.document import Document
from signals.text_normalization import char_table, code_points

PRECISION = 8  # RPv2 core.constants.PRECISION

Spans = list[tuple[int, int, float | int | None]]

_TERMINAL_PUNCTUATION = (".", "!", "?", "”")
_BULLETS = (
    "\u2022",  # bullet point
    "\u2023",  # triangular bullet point
    "\u25B6",  # black right pointing triangle
    "\u25C0",  # black left pointing triangle
    "\u25E6",  # white bullet point
    "\u25A0",  # black square
    "\u25A1",  # white square
    "\u25AA",  # black small square
    "\u25AB",  # white small square
    "\u2013",  # en dash
)

def count_per_segment(
    points: np.ndarray, predicate: str, seg_starts: list[int], seg_ends: list[int]
) -> list[int]:
    """How many of the code points ``points[s:e]`` satisfy ``predicate``, for every segment (s, e)."""
    if not seg_starts:
        return []
    flags = char_table(predicate)[points]
    prefix = np.zeros(len(flags) + 1, dtype=np.int64)
    np.cumsum(flags, out=prefix[1:])
    return (prefix[seg_ends] - prefix[seg_starts]).tolist()


def _fractions(counts: list[int], lengths: list[int]) -> list[float]:
    # RPv2: 0.0 for an empty text, else round(count / len(text), 8)
    return [round(c / n, PRECISION) if n else 0.0 for c, n in zip(counts, lengths, strict=True)]


def rps_lines_javascript_counts(doc: Document) -> Spans:
    """Normalized words equal to 'javascript' per line, as floats (RPv2 RPS_Lines_Javascript_Counts)."""
    lines = doc.normalized_line_texts
    if "javascript" in doc.normalized_content:
        scores = [float(line.split().count("javascript")) for line in lines]
    else:
        scores = [0.0] * len(lines)
    return list(zip(doc.line_starts, doc.line_ends, scores, strict=True))


def rps_lines_ending_with_terminal_punctution_mark(doc: Document) -> Spans:
    """1.0 when the rstripped raw line ends with '.', '!', '?' or '”', else 0.0 (RPv2
    RPS_Lines_Ending_With_Terminal_Punctution_Mark, name typo included)."""
    scores = [float(line.rstrip().endswith(_TERMINAL_PUNCTUATION)) for line in doc.raw_line_texts]
    return list(zip(doc.line_starts, doc.line_ends, scores, strict=True))


def rps_lines_num_words(doc: Document) -> Spans:
    """Number of normalized words per line, an int (RPv2 RPS_Lines_Num_Words)."""
    # normalized lines have single spaces between words and none at the ends
    scores = [line.count(" ") + 1 if line else 0 for line in doc.normalized_line_texts]
    return list(zip(doc.line_starts, doc.line_ends, scores, strict=True))


def rps_lines_uppercase_letter_fraction(doc: Document) -> Spans:
    """Characters with ``str.isupper()`` per raw character of the line, newline included
    (RPv2 RPS_Lines_Uppercase_Letter_Fraction)."""
    starts, ends = doc.line_starts, doc.line_ends
    counts = count_per_segment(doc.code_points, "isupper", starts, ends)
    lengths = [e - s for s, e in zip(starts, ends, strict=True)]
    return list(zip(starts, ends, _fractions(counts, lengths), strict=True))


def _normalized_numeric_counts(doc: Document) -> list[int]:
    """``str.isnumeric`` characters of every normalized line.

    Counted on the lower-cased NFD text before whitespace is collapsed: whitespace is never numeric,
    so the counts equal those of the normalized lines.
    """
    text = doc.lowered_nfd
    pieces = text.split("\n")[: len(doc.raw_line_texts)]
    seg_ends: list[int] = []
    pos = 0
    for piece in pieces:
        seg_ends.append(pos + len(piece))
        pos += len(piece) + 1
    seg_starts = [e - len(p) for e, p in zip(seg_ends, pieces, strict=True)]
    return count_per_segment(code_points(text), "isnumeric", seg_starts, seg_ends)


def rps_lines_numerical_chars_fraction(doc: Document) -> Spans:
    """Characters with ``str.isnumeric()`` per character of the normalized line (RPv2
    RPS_Lines_Numerical_Chars_Fraction; 0.0 for a line that normalizes to nothing)."""
    counts = _normalized_numeric_counts(doc)
    lengths = list(map(len, doc.normalized_line_texts))
    return list(zip(doc.line_starts, doc.line_ends, _fractions(counts, lengths), strict=True))


def rps_lines_start_with_bulletpoint(doc: Document) -> Spans:
    """1.0 when the lstripped raw line starts with one of RPv2's ten bullet characters, else 0.0;
    ``[(0, 0, None)]`` for a document without lines (RPv2 RPS_Lines_Start_With_Bulletpoint)."""
    lines = doc.raw_line_texts
    if not lines:
        return [(0, len(doc), None)]
    scores = [float(line.lstrip().startswith(_BULLETS)) for line in lines]
    return list(zip(doc.line_starts, doc.line_ends, scores, strict=True))


# RPv2 emit order (alphabetical class names within the module)
SIGNALS = {
    "rps_lines_ending_with_terminal_punctution_mark": rps_lines_ending_with_terminal_punctution_mark,
    "rps_lines_javascript_counts": rps_lines_javascript_counts,
    "rps_lines_num_words": rps_lines_num_words,
    "rps_lines_numerical_chars_fraction": rps_lines_numerical_chars_fraction,
    "rps_lines_start_with_bulletpoint": rps_lines_start_with_bulletpoint,
    "rps_lines_uppercase_letter_fraction": rps_lines_uppercase_letter_fraction,
}
