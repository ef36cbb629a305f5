"""RedPajama-V2's text normalization, line split and word split, computed fast and identically.

RPv2 (app/src/utilities/text/normalization.py, ``normalize``) normalizes a text in this order:

1. remove ASCII punctuation (``str.translate`` with ``string.punctuation`` deleted),
2. lower-case (``str.lower``),
3. strip and collapse every run of whitespace to one space (``re.sub(r"\\s+", " ", text.strip())``),
4. Unicode NFD.

Lines are ``re.finditer(r"([^\\n]*\\n|[^\\n]+$)", text)`` matches (RPv2 ``split_paragraphs``): each line
keeps its trailing newline, and a non-empty tail without one is the last line. Raw words are nltk's
``WordPunctTokenizer`` tokens, ``\\w+|[^\\w\\s]+``.

The fast paths here compute exactly the same strings with fewer passes; why each is equal:

* ``" ".join(s.split())`` equals ``re.sub(r"\\s+", " ", s.strip())``: ``str.split()``, ``str.strip()``
  and the ``\\s`` class of ``re`` on ``str`` all use ``Py_UNICODE_ISSPACE``.
* Punctuation removal and ``str.lower`` act character by character (the only context rule of
  ``str.lower``, the Greek final sigma, cannot look across ``"\\n"``, which is neither cased nor
  case-ignorable), so lower-casing the whole document and splitting it at ``"\\n"`` gives each line's
  lower-cased text.
* NFD decomposes characters and reorders runs of combining marks; ``"\\n"`` and ``" "`` are starters
  (combining class 0) and no character decomposes canonically into whitespace or out of it (checked
  over every code point in tests/test_signals_document.py), so NFD commutes with the whitespace
  collapse and with the line split.
* Deleting ASCII punctuation with ``bytes.translate`` on the ASCII or UTF-8 bytes gives the same
  string as ``str.translate`` with a deletion table, 10x faster.

The word split: nltk 3.10 (the version the RPv2 ground truth ran) compiles tokenizer patterns with the
third-party ``regex`` engine (nltk/redos.py), whose ``\\w`` and ``\\s`` differ from the stdlib's:
combining marks (Mn/Mc/Me), join controls and some symbols are word characters, superscripts and
fractions (No: "²", "½") are not, U+001C..U+001F are not whitespace, and ``regex`` knows a newer
Unicode. So "attivita\\u0300" (NFD "attività") is one token in RPv2. :func:`wordpunct_tokenize` uses
the stdlib engine on ASCII text (where the engines only disagree on U+001C..U+001F) and, on other
text, a table of every code point's class (word / space / other) taken from ``regex`` itself.
"""

from __future__ import annotations

import re
import string
import sys
import threading
import unicodedata

import numpy as np
import regex

try:  # the C kernel (signals/_signals_kernel.c); the Python paths below give the same tokens
    from signals import _signals_kernel
except ImportError:  # pragma: no cover - built by `pip install -e .`
    _signals_kernel = None
# whether wordpunct_tokenize runs in C (then it needs no code point array from the caller)
NATIVE_TOKENIZER = _signals_kernel is not None

# RPv2: TRANSLATION_TABLE_PUNCTUATION = str.maketrans("", "", string.punctuation)
PUNCTUATION_TABLE = str.maketrans("", "", string.punctuation)
_PUNCTUATION_BYTES = string.punctuation.encode("ascii")

# RPv2's split_paragraphs / generate_paragraphs pattern (kept for reference and tests).
LINE_PATTERN = re.compile(r"([^\n]*\n|[^\n]+$)")

# nltk's WordPunctTokenizer: RegexpTokenizer(r"\w+|[^\w\s]+"), findall, flags UNICODE|MULTILINE|DOTALL,
# compiled by nltk with the ``regex`` engine (see module docstring).
TOKEN_FLAGS = regex.UNICODE | regex.MULTILINE | regex.DOTALL
WORDPUNCT_PATTERN = regex.compile(r"\w+|[^\w\s]+", flags=TOKEN_FLAGS)
_WORDPUNCT_STDLIB = re.compile(r"\w+|[^\w\s]+", flags=re.UNICODE | re.MULTILINE | re.DOTALL)
_ASCII_ENGINE_DIFFERENCES = re.compile("[\x1c-\x1f]")  # the only ASCII characters the engines disagree on
# on ASCII text \w is [A-Za-z0-9_]; spelling it out saves the engine its Unicode lookups (25% faster)
_WORDPUNCT_ASCII = re.compile(r"[A-Za-z0-9_]+|[^A-Za-z0-9_\s]+")

_WHITESPACE_RUN = re.compile(r"\s+")
_SPACE, _WORD, _OTHER = 0, 1, 2  # a code point's class for WordPunct (``regex`` semantics)

NUM_CODE_POINTS = sys.maxunicode + 1
_TABLES: dict[str, np.ndarray] = {}
_TABLES_LOCK = threading.Lock()


def _all_code_points() -> str:
    return "".join(map(chr, range(NUM_CODE_POINTS)))


def _matching_mask(pattern, text: str) -> np.ndarray:
    """Which characters of ``text`` (one per code point) the one-character ``pattern`` matches."""
    marked = code_points(pattern.sub("\x00", text))
    mask = marked == 0
    mask[0] = bool(pattern.match("\x00"))
    return mask


def build_table(name: str) -> np.ndarray:
    """Table ``name`` (see :func:`char_table`) computed from this process's Unicode databases (slow)."""
    if name == "wordpunct_classes":
        everything = _all_code_points()
        word = _matching_mask(regex.compile(r"\w", flags=TOKEN_FLAGS), everything)
        space = _matching_mask(regex.compile(r"\s", flags=TOKEN_FLAGS), everything)
        return np.where(word, _WORD, np.where(space, _SPACE, _OTHER)).astype(np.uint8)
    if name == "engine_differences":
        everything = _all_code_points()
        word_re = _matching_mask(re.compile(r"\w"), everything)
        word_rx = _matching_mask(regex.compile(r"\w", flags=TOKEN_FLAGS), everything)
        space_re = _matching_mask(re.compile(r"\s"), everything)
        space_rx = _matching_mask(regex.compile(r"\s", flags=TOKEN_FLAGS), everything)
        return (word_re != word_rx) | (space_re != space_rx)
    method = getattr(str, name)  # isupper, isnumeric, ...
    return np.fromiter((method(chr(cp)) for cp in range(NUM_CODE_POINTS)), dtype=np.bool_, count=NUM_CODE_POINTS)


def char_table(name: str) -> np.ndarray:
    """A table over all code points, made on first use and kept for the process.

    ``name`` is a ``str`` predicate (``"isupper"``, ``"isnumeric"``: ``getattr(chr(cp), name)()``),
    ``"engine_differences"``: the characters on which ``re`` and ``regex`` disagree about ``\\w``/``\\s``,
    or ``"wordpunct_classes"``: 0 space, 1 word, 2 other, as ``regex``'s ``\\s`` and ``\\w`` say.
    The table comes from the generated signals/unicode_tables_data.py (< 1 ms) when that was made with
    this process's Unicode databases, else it is built here (0.1-0.4 s; see signals/unicode_tables.py).
    """
    table = _TABLES.get(name)
    if table is None:
        with _TABLES_LOCK:
            table = _TABLES.get(name)
            if table is None:
                from signals.unicode_tables import precomputed_table

                table = precomputed_table(name)
                if table is None:
                    table = build_table(name)
                _TABLES[name] = table
    return table


def code_points(text: str) -> np.ndarray:
    """The code points of ``text`` as an integer array (lone surrogates included)."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def remove_punctuation(text: str) -> str:
    """``text.translate(PUNCTUATION_TABLE)`` (RPv2's first normalization step), without its slow path."""
    if text.isascii():
        return text.encode("ascii").translate(None, _PUNCTUATION_BYTES).decode("ascii")
    # In UTF-8 an ASCII byte is only ever its own character (every byte of a multi-byte character is
    # >= 0x80), so deleting the punctuation bytes deletes exactly the punctuation characters; lone
    # surrogates round-trip through "surrogatepass". 4x faster than a regex substitution.
    data = text.encode("utf-8", "surrogatepass").translate(None, _PUNCTUATION_BYTES)
    return data.decode("utf-8", "surrogatepass")


def normalize(text: str) -> str:
    """RPv2's ``normalize(text)`` with its defaults, written step by step as the reference does.

    The reference for tests; the Document computes the same result for the whole text and its lines
    in one pass (see module docstring).
    """
    text = text.translate(PUNCTUATION_TABLE)
    text = text.lower()
    text = text.strip()
    text = _WHITESPACE_RUN.sub(" ", text)
    return unicodedata.normalize("NFD", text)


def fast_normalize(text: str) -> str:
    """Same value as :func:`normalize`, from the fast steps the Document uses."""
    return unicodedata.normalize("NFD", " ".join(remove_punctuation(text).lower().split()))


def split_lines(text: str) -> list[str]:
    """The texts of RPv2's lines (``LINE_PATTERN`` matches), each with its trailing newline.

    ``[^\\n]+$`` can only match the non-empty tail after the last newline (a tail followed by a final
    newline is taken by the first alternative), so splitting at ``"\\n"`` and dropping an empty last
    piece gives the same lines, without a regex.
    """
    if not text:
        return []
    parts = text.split("\n")
    last = parts.pop()
    lines = [p + "\n" for p in parts]
    if last:
        lines.append(last)
    return lines


def needs_regex_engine(text: str, points: np.ndarray | None = None) -> bool:
    """Whether ``re`` and ``regex`` could split ``text`` into different WordPunct tokens."""
    if text.isascii():
        return _ASCII_ENGINE_DIFFERENCES.search(text) is not None
    if points is None:
        points = code_points(text)
    return bool(char_table("engine_differences")[points].any())


def wordpunct_tokenize(text: str, points: np.ndarray | None = None) -> list[str]:
    """nltk ``WordPunctTokenizer().tokenize(text)`` (``regex`` engine semantics, see module docstring).

    ``points``: ``code_points(text)`` when the caller already has them (the Python path uses them).
    With the C kernel, one pass over the text cuts the tokens with the same class table.
    """
    if _signals_kernel is not None:
        return _signals_kernel.wordpunct(text, char_table("wordpunct_classes"))
    return wordpunct_tokenize_python(text, points)


def wordpunct_tokenize_python(text: str, points: np.ndarray | None = None) -> list[str]:
    """:func:`wordpunct_tokenize` without the C kernel (the fallback, and the reference in tests)."""
    if text.isascii():
        if _ASCII_ENGINE_DIFFERENCES.search(text) is None:
            return _WORDPUNCT_ASCII.findall(text)
        return WORDPUNCT_PATTERN.findall(text)
    if points is None:
        points = code_points(text)
    return _tokens_from_classes(text, char_table("wordpunct_classes")[points])



def _tokens_from_classes(text: str, classes: np.ndarray) -> list[str]:
    """The WordPunct tokens of ``text`` given each code point's class (space, word, other).

    ``\\w+|[^\\w\\s]+`` matched left to right takes every maximal run of word characters and every
    maximal run of characters that are neither word nor space, so the tokens are the maximal runs of
    one non-space class; they are found with numpy and cut out with slices (faster than the regex on
    non-ASCII text, whose ``\\w`` looks every character up in the Unicode database).
    """
    size = len(classes)
    if size == 0:
        return []
    change = np.empty(size, dtype=np.bool_)
    change[0] = True
    np.not_equal(classes[1:], classes[:-1], out=change[1:])
    run_starts = np.flatnonzero(change)
    run_ends = np.empty_like(run_starts)
    run_ends[:-1] = run_starts[1:]
    run_ends[-1] = size
    tokens = classes[run_starts] != _SPACE
    return [text[s:e] for s, e in zip(run_starts[tokens].tolist(), run_ends[tokens].tolist(), strict=True)]
