"""CCNet's text normalization, character for character.

Reproduces facebookresearch/cc_net ``cc_net/text_normalizer.py``:

* ``normalize(line, accent=True, case=True, numbers=True, punct=1)``: the normalization applied
  before SentencePiece and KenLM (strip, lower-case, accents stripped through NFD minus category Mn,
  every Unicode decimal digit to ``0``, CCNet's unicode punctuation table *replaced* by ASCII, and the
  control characters U+0000-U+001F and U+007F-U+009F removed).
* ``normalize_for_dedup(line)``: the key of CCNet's line dedup (strip, lower-case, digits to ``0``,
  the same punctuation table *removed*, control characters removed; accents kept).

The steps run in cc_net's order; the digit step comes first, so the fullwidth digit U+FF11, which is
both a digit and in the punctuation table, becomes ``0``.
"""

from __future__ import annotations

import re
import unicodedata

# cc_net's UNICODE_PUNCT table (text_normalizer.py), unicode punctuation -> ASCII replacement.
UNICODE_PUNCT: dict[str, str] = {
    "，": ",",
    "。": ".",
    "、": ",",
    "„": '"',
    "”": '"',
    "“": '"',
    "«": '"',
    "»": '"',
    "１": '"',
    "」": '"',
    "「": '"',
    "《": '"',
    "》": '"',
    "´": "'",
    "∶": ":",
    "：": ":",
    "？": "?",
    "！": "!",
    "（": "(",
    "）": ")",
    "；": ";",
    "–": "-",
    "—": " - ",
    "．": ". ",
    "～": "~",
    "’": "'",
    "…": "...",
    "━": "-",
    "〈": "<",
    "〉": ">",
    "【": "[",
    "】": "]",
    "％": "%",
    "►": "-",
}

# Control characters cc_net removes (NON_PRINTING_CHARS_RE): U+0000-U+001F and U+007F-U+009F.
# Note that "\n" is one of them: normalizing a whole document joins its lines, as cc_net's mine.py does.
NON_PRINTING_CHARS: tuple[str, ...] = tuple(chr(c) for c in [*range(0, 32), *range(127, 160)])

_UNICODE_PUNCT_CLASS = "".join(UNICODE_PUNCT)
_NON_PRINTING_CLASS = "".join(NON_PRINTING_CHARS)
UNICODE_PUNCT_RE = re.compile(f"[{_UNICODE_PUNCT_CLASS}]")
NON_PRINTING_CHARS_RE = re.compile(f"[{_NON_PRINTING_CLASS}]")
PUNCT_OR_NON_PRINTING_CHARS_RE = re.compile(f"[{_UNICODE_PUNCT_CLASS}{_NON_PRINTING_CLASS}]")
# ``\d`` on str patterns is every Unicode decimal digit (category Nd), as cc_net's DIGIT_RE.
DIGIT_RE = re.compile(r"\d")
_NON_ASCII_RUN_RE = re.compile(r"[^\x00-\x7f]+")
# ASCII text has no accents and none of the (all non-ASCII) unicode punctuation, so on ASCII text every
# step reduces to one byte translation: ASCII digits to "0" (the only ASCII ``\d``) and the ASCII control
# characters removed; about ten times faster than the regex passes, same result.
_ASCII_CONTROLS = bytes(c for c in range(128) if chr(c) in NON_PRINTING_CHARS)
_ASCII_IDENTITY = bytes(range(256))
_ASCII_DIGITS_TO_ZERO = bytes.maketrans(b"0123456789", b"0000000000")


def _ascii_normalize(line: str, numbers: bool) -> str:
    """The normalization of an ASCII ``line`` after strip and lower-case (see above)."""
    table = _ASCII_DIGITS_TO_ZERO if numbers else _ASCII_IDENTITY
    return line.encode("ascii").translate(table, _ASCII_CONTROLS).decode("ascii")


def _replace_punct(match: re.Match[str]) -> str:
    return UNICODE_PUNCT[match.group()]


def _replace_punct_or_remove(match: re.Match[str]) -> str:
    return UNICODE_PUNCT.get(match.group(), "")


# Non-ASCII runs repeat endlessly in real text ("é", "ü", "’", a CJK word): their accent-stripped form is
# kept here, bounded (cleared when full) so memory stays flat on any input; a pure cache, no value changes.
_ACCENT_RUNS: dict[str, str] = {}
ACCENT_RUNS_LIMIT = 65_536


def _strip_accents_run(match: re.Match[str]) -> str:
    run = match.group()
    stripped = _ACCENT_RUNS.get(run)
    if stripped is None:
        nfd = unicodedata.normalize("NFD", run)
        stripped = "".join(c for c in nfd if unicodedata.category(c) != "Mn")
        if len(_ACCENT_RUNS) >= ACCENT_RUNS_LIMIT:
            _ACCENT_RUNS.clear()
        _ACCENT_RUNS[run] = stripped
    return stripped


def strip_accents(line: str) -> str:
    """Remove combining marks after NFD decomposition (cc_net's ``strip_accents``).

    Only the non-ASCII runs of the text are decomposed: ASCII is NFD-invariant and a starter, and
    canonical reordering only moves combining marks (all non-ASCII) within a run, so the result is
    the same as decomposing the whole string, about five times faster on European text.
    """
    return _NON_ASCII_RUN_RE.sub(_strip_accents_run, line)


def normalize(line: str, accent: bool = True, case: bool = True, numbers: bool = True, punct: int = 1) -> str:
    """cc_net's ``text_normalizer.normalize`` with the same defaults (used before SentencePiece).

    ``punct=1`` replaces CCNet's unicode punctuation by ASCII, ``punct=2`` removes it, ``0`` keeps it.
    """
    line = line.strip()
    if not line:
        return line
    if case:
        line = line.lower()
    if line.isascii():  # O(1) in CPython; lower-casing can make text ASCII (the Kelvin sign), never the reverse
        return _ascii_normalize(line, numbers)
    if accent:
        line = strip_accents(line)
        if line.isascii():
            return _ascii_normalize(line, numbers)
    if numbers:
        line = DIGIT_RE.sub("0", line)
    if punct == 1:
        # cc_net replaces the punctuation, then removes the control characters: the two sets are
        # disjoint and no replacement holds a control character, so one pass does both
        return PUNCT_OR_NON_PRINTING_CHARS_RE.sub(_replace_punct_or_remove, line)
    if punct == 2:
        return PUNCT_OR_NON_PRINTING_CHARS_RE.sub("", line)
    return NON_PRINTING_CHARS_RE.sub("", line)


def normalize_for_dedup(line: str) -> str:
    """The key of CCNet's line dedup (cc_net's ``normalize_for_dedup``): accents are kept.

    Equivalent to ``normalize(line, accent=False, case=True, numbers=True, punct=2)``.
    """
    line = line.strip()
    if not line:
        return line
    line = line.lower()
    if line.isascii():
        return _ascii_normalize(line, True)
    return PUNCT_OR_NON_PRINTING_CHARS_RE.sub("", DIGIT_RE.sub("0", line))
