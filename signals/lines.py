"""Line-level signals (RPv2 app/src/core/quality_signals/lines.py): one score per RPv2 line.

Each returns ``[(start, end, score), ...]`` with one triple per line of
``re.finditer(r"([^\\n]*\\n|[^\\n]+$)", raw_content)`` (spans include the newline). A document without
lines gives ``[]``, except rps_lines_start_with_bulletpoint, which gives ``[(0, 0, None)]`` as in RPv2.

The per-character counts avoid calling ``str.isupper``/``str.isnumeric`` once per character: ASCII
text deletes every other byte with ``bytes.translate`` and measures what is left of each line;
other text looks every code point up in a table of the predicate over all code points, with numpy,
and cuts the flags into lines with prefix sums. Word counts and lengths of the normalized lines come
from the same kind of prefix sums (or, for a few ASCII lines, a loop), without building the strings.

When signals/_signals_kernel.c is built, those per-line counts come from one C pass over the text
instead, with the predicates ``str`` itself uses (``Py_UNICODE_ISUPPER``, ``Py_UNICODE_ISNUMERIC``,
``Py_UNICODE_ISSPACE``): the same integers, so the same values (tests/test_signals_kernel.py).
"""

from __future__ import annotations

from itertools import accumulate

import numpy as np

from signals.document import Document
from signals.text_normalization import char_table, code_points

try:
    from signals import _signals_kernel
except ImportError:  # no C compiler at install time: the Python path gives the same values
    _signals_kernel = None

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
_TERMINAL_CHARS = "".join(_TERMINAL_PUNCTUATION)
_BULLET_CHARS = "".join(_BULLETS)
assert len(_TERMINAL_CHARS) == len(_TERMINAL_PUNCTUATION) and len(_BULLET_CHARS) == len(_BULLETS)

def _ascii_delete_table(keep: str) -> bytes:
    return bytes(b for b in range(128) if chr(b) not in keep)


# ASCII bytes that are not "\n" and fail the predicate: deleting them leaves, per line, the characters to count
_ASCII_NOT_UPPER = _ascii_delete_table("\n" + "".join(chr(b) for b in range(128) if chr(b).isupper()))


def ascii_counts_per_line(text: str, delete: bytes, num_lines: int) -> list[int]:
    """Per "\n"-separated piece of an ASCII ``text``, how many bytes survive deleting ``delete``."""
    return list(map(len, text.encode("ascii").translate(None, delete).split(b"\n")[:num_lines]))


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


def _prefix(flags: np.ndarray) -> np.ndarray:
    prefix = np.zeros(len(flags) + 1, dtype=np.int64)
    np.cumsum(flags, out=prefix[1:])
    return prefix


def normalized_line_stats(doc: Document) -> tuple[list[int], list[int], list[int]]:
    """Per line: the number of words, the length and the ``str.isnumeric`` characters of RPv2's
    normalized line (``normalize(line)``), without building the line strings. The Python path computes
    a length only for lines with numeric characters (elsewhere it is 0: the fraction is 0.0 anyway);
    the C kernel gives every length.

    A normalized line is ``" ".join(piece.split())`` of the line's piece of the lower-cased NFD text
    (text_normalization explains why), so its words are the maximal runs of non-whitespace
    (``str.isspace``) characters of the piece, its length is their characters plus one space between
    consecutive words, and its numeric characters are the piece's (whitespace is never numeric). All
    three come from prefix sums over the piece boundaries, for every line at once.
    """
    return doc.cached("lines.normalized_stats", _normalized_line_stats)


_FEW_LINES = 32  # below this, a loop over the lines beats the fixed cost of the vectorized version
_ASCII_NOT_NUMERIC = _ascii_delete_table("\n0123456789")


def _normalized_line_stats(doc: Document) -> tuple[list[int], list[int], list[int]]:
    num_lines = len(doc.raw_line_texts)
    if num_lines == 0:
        return [], [], []
    if _signals_kernel is not None:
        return _signals_kernel.line_stats(doc.lowered_nfd, num_lines)
    text = doc.lowered_nfd
    if num_lines <= _FEW_LINES:
        pieces = text.split("\n", num_lines)[:num_lines]
        words = [len(piece.split()) for piece in pieces]
        if text.isascii():
            counts = ascii_counts_per_line(text, _ASCII_NOT_NUMERIC, num_lines)
        else:
            numeric = char_table("isnumeric")[code_points(text)]
            if not numeric.any():
                return words, [0] * num_lines, [0] * num_lines
            ends = list(accumulate(len(p) + 1 for p in pieces))
            starts = [0, *ends[:-1]]
            prefix = _prefix(numeric)
            counts = (prefix[[e - 1 for e in ends]] - prefix[starts]).tolist()
        # a length is only needed where there is something to divide (the fraction of 0 is 0.0)
        lengths = [len(" ".join(p.split())) if c else 0 for p, c in zip(pieces, counts, strict=True)]
        return words, lengths, counts
    points = code_points(text)
    size = len(points)
    newlines = np.flatnonzero(points == 10)
    starts = np.empty(len(newlines) + 1, dtype=np.int64)
    starts[0] = 0
    starts[1:] = newlines + 1
    ends = np.empty_like(starts)
    ends[:-1] = newlines
    ends[-1] = size
    starts, ends = starts[:num_lines], ends[:num_lines]
    space = char_table("isspace")[points]
    word_start = ~space
    word_start[1:] &= space[:-1]
    words = _prefix(word_start)
    words = words[ends] - words[starts]
    chars = _prefix(space)
    chars = (ends - starts) - (chars[ends] - chars[starts])
    lengths = chars + np.maximum(words - 1, 0)
    numeric = char_table("isnumeric")[points]
    if numeric.any():
        numeric_prefix = _prefix(numeric)
        numeric_counts = (numeric_prefix[ends] - numeric_prefix[starts]).tolist()
    else:
        numeric_counts = [0] * num_lines
    return words.tolist(), lengths.tolist(), numeric_counts


def _fractions(counts: list[int], lengths: list[int]) -> list[float]:
    # RPv2: 0.0 for an empty text, else round(count / len(text), 8)
    return [round(c / n, PRECISION) if c else 0.0 for c, n in zip(counts, lengths, strict=True)]


def rps_lines_javascript_counts(doc: Document) -> Spans:
    """Normalized words equal to 'javascript' per line, as floats (RPv2 RPS_Lines_Javascript_Counts)."""
    if "javascript" in doc.normalized_content:
        scores = [float(line.split().count("javascript")) for line in doc.normalized_line_texts]
    else:
        scores = [0.0] * len(doc.raw_line_texts)
    return list(zip(doc.line_starts, doc.line_ends, scores, strict=True))


def rps_lines_ending_with_terminal_punctution_mark(doc: Document) -> Spans:
    """1.0 when the rstripped raw line ends with '.', '!', '?' or '”', else 0.0 (RPv2
    RPS_Lines_Ending_With_Terminal_Punctution_Mark, name typo included)."""
    if _signals_kernel is not None:
        scores = line_edges(doc)[0]
    else:
        scores = [float(line.rstrip().endswith(_TERMINAL_PUNCTUATION)) for line in doc.raw_line_texts]
    return list(zip(doc.line_starts, doc.line_ends, scores, strict=True))


def line_edges(doc: Document) -> tuple[list[float], list[float]]:
    """Per line, from the C kernel in one pass without a string per line: 1.0/0.0 for "the rstripped
    line ends with terminal punctuation" and for "the lstripped line starts with a bullet" (each
    character of _TERMINAL_PUNCTUATION and _BULLETS is one code point, so it is a test of one character)."""
    return doc.cached("lines.edges", _line_edges)


def _line_edges(doc: Document) -> tuple[list[float], list[float]]:
    return _signals_kernel.line_edges(doc.raw_content, len(doc.raw_line_texts), _TERMINAL_CHARS, _BULLET_CHARS)


def rps_lines_num_words(doc: Document) -> Spans:
    """Number of normalized words per line, an int (RPv2 RPS_Lines_Num_Words)."""
    words, _, _ = normalized_line_stats(doc)
    return list(zip(doc.line_starts, doc.line_ends, words, strict=True))


def rps_lines_uppercase_letter_fraction(doc: Document) -> Spans:
    """Characters with ``str.isupper()`` per raw character of the line, newline included
    (RPv2 RPS_Lines_Uppercase_Letter_Fraction)."""
    starts, ends = doc.line_starts, doc.line_ends
    if _signals_kernel is not None:
        counts = _signals_kernel.upper_per_line(doc.raw_content, len(starts))
    elif doc.raw_content.isascii():
        counts = ascii_counts_per_line(doc.raw_content, _ASCII_NOT_UPPER, len(starts))
    else:
        counts = count_per_segment(doc.code_points, "isupper", starts, ends)
    lengths = [e - s for s, e in zip(starts, ends, strict=True)]
    return list(zip(starts, ends, _fractions(counts, lengths), strict=True))


def rps_lines_numerical_chars_fraction(doc: Document) -> Spans:
    """Characters with ``str.isnumeric()`` per character of the normalized line (RPv2
    RPS_Lines_Numerical_Chars_Fraction; 0.0 for a line that normalizes to nothing)."""
    _, lengths, counts = normalized_line_stats(doc)
    return list(zip(doc.line_starts, doc.line_ends, _fractions(counts, lengths), strict=True))


def rps_lines_start_with_bulletpoint(doc: Document) -> Spans:
    """1.0 when the lstripped raw line starts with one of RPv2's ten bullet characters, else 0.0;
    ``[(0, 0, None)]`` for a document without lines (RPv2 RPS_Lines_Start_With_Bulletpoint)."""
    lines = doc.raw_line_texts
    if not lines:
        return [(0, doc.num_chars, None)]
    if _signals_kernel is not None:
        scores = line_edges(doc)[1]
    else:
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
