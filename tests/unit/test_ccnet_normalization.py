"""CCNet's text normalization (pipeline/ccnet/text_normalization.py) against cc_net's definition.

The reference below is a direct transcription of cc_net/text_normalizer.py's regex pipeline (kept
deliberately naive); the module under test must agree with it on real multilingual text.
"""

from __future__ import annotations

import random
import re
import unicodedata

import pytest
from conftest import shared_path

from pipeline.ccnet.text_normalization import UNICODE_PUNCT, normalize, normalize_for_dedup, strip_accents

# --- cc_net's text_normalizer, transcribed as the specification --------------------------------
_PUNCT_RE = re.compile(f"[{''.join(UNICODE_PUNCT)}]")
_NON_PRINTING_RE = re.compile(f"[{''.join(map(chr, list(range(0, 32)) + list(range(127, 160))))}]")
_DIGIT_RE = re.compile(r"\d")
_PUNCT_OR_NON_PRINTING_RE = re.compile((_PUNCT_RE.pattern + _NON_PRINTING_RE.pattern).replace("][", ""))


def reference_normalize(line, accent=True, case=True, numbers=True, punct=1):
    line = line.strip()
    if not line:
        return line
    if case:
        line = line.lower()
    if accent:
        nfd = unicodedata.normalize("NFD", line)
        line = "".join(c for c in nfd if unicodedata.category(c) != "Mn")
    if numbers:
        line = _DIGIT_RE.sub("0", line)
    if punct == 1:
        line = "".join(UNICODE_PUNCT.get(c, c) for c in line)
    elif punct == 2:
        line = _PUNCT_RE.sub("", line)
    return _NON_PRINTING_RE.sub("", line)


def reference_normalize_for_dedup(line):
    line = line.strip()
    if not line:
        return line
    return _PUNCT_OR_NON_PRINTING_RE.sub("", _DIGIT_RE.sub("0", line.lower()))


# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_lines() -> list[str]:
    lines = shared_path("realdata", "corpora", "botchan_en.txt").read_text(encoding="utf-8").split("\n")
    for lang in ("de", "fr", "es", "it", "ru", "zh", "ja", "ar", "hi", "el", "vi"):
        path = shared_path("realdata", "groundtruth", "langid", "lingua_sentences", f"{lang}.txt")
        lines += path.read_text(encoding="utf-8").split("\n")[:300]
    rng = random.Random(7)  # plus noise over the first 12k code points: controls, marks, CJK punctuation
    lines += ["".join(chr(rng.randrange(0, 0x3100)) for _ in range(40)) for _ in range(3000)]
    return lines


def test_dedup_key_matches_cc_net_on_real_text(real_lines):
    assert [normalize_for_dedup(x) for x in real_lines] == [reference_normalize_for_dedup(x) for x in real_lines]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"accent": False, "punct": 2}, {"case": False, "numbers": False, "punct": 0}],
    ids=["sentencepiece-defaults", "dedup-equivalent", "minimal"],
)
def test_normalize_matches_cc_net_on_real_text(real_lines, kwargs):
    assert [normalize(x, **kwargs) for x in real_lines] == [reference_normalize(x, **kwargs) for x in real_lines]


def test_dedup_key_lowercases_zeroes_digits_and_drops_unicode_punctuation():
    assert normalize_for_dedup("  Copyright © 2019 «Acme» — All rights reserved…  ") == (
        "copyright © 0000 acme  all rights reserved"
    )


def test_dedup_key_keeps_accents_but_normalize_strips_them():
    assert normalize_for_dedup("Élève Ça") == "élève ça"
    assert normalize("Élève Ça") == "eleve ca"


def test_every_unicode_decimal_digit_becomes_zero():
    # Arabic-Indic, Devanagari and fullwidth digits are \d too; fullwidth one is also in the
    # punctuation table, and the digit rule wins as in cc_net.
    assert normalize_for_dedup("٣ ७ ５ １") == "0 0 0 0"
    assert normalize("٣ ७ ５ １") == "0 0 0 0"


def test_normalize_replaces_unicode_punctuation_with_ascii():
    # the em dash becomes " - " (spaces included), as in cc_net's table
    assert normalize("«Oui» — dit-il… 「はい」，") == '"oui"  -  dit-il... "はい",'


def test_control_characters_are_removed_and_newlines_join_lines():
    assert normalize_for_dedup("a\x00b\x7fc\x9fd") == "abcd"
    # "\n" is a control character for cc_net: normalizing a whole document glues its lines.
    assert normalize("First line\nSecond line") == "first linesecond line"


def test_blank_input_stays_blank():
    for text in ("", "   ", "\t\n"):
        assert normalize(text) == ""
        assert normalize_for_dedup(text) == ""


def test_strip_accents_removes_combining_marks_only():
    assert strip_accents("naïve café Ångström") == "naive cafe Angstrom"
    assert strip_accents("日本語") == "日本語"


def test_accent_run_cache_changes_no_value_and_stays_bounded(real_lines, monkeypatch):
    """The cache of stripped non-ASCII runs is a pure speed-up: every text normalizes the same with a
    cold cache, a warm one, and one that clears every few entries; the cache never outgrows its limit."""
    from pipeline.ccnet import text_normalization as tn

    texts = [line for line in real_lines if line.strip()]

    def plain(line: str) -> str:  # cc_net's strip_accents over the whole string, no cache
        nfd = unicodedata.normalize("NFD", line)
        return "".join(c for c in nfd if unicodedata.category(c) != "Mn")

    tn._ACCENT_RUNS.clear()
    cold = [tn.strip_accents(t) for t in texts]
    warm = [tn.strip_accents(t) for t in texts]
    monkeypatch.setattr(tn, "ACCENT_RUNS_LIMIT", 7)
    tn._ACCENT_RUNS.clear()
    tiny = [tn.strip_accents(t) for t in texts]
    assert len(tn._ACCENT_RUNS) <= 7
    assert cold == warm == tiny == [plain(t) for t in texts]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"accent": False, "punct": 2}, {"case": False, "numbers": False, "punct": 0}, {"numbers": False}],
    ids=["sentencepiece-defaults", "dedup-equivalent", "minimal", "digits-kept"],
)
def test_ascii_shortcut_matches_cc_net_on_documents_and_ascii_noise(real_lines, kwargs):
    """ASCII text (before or after lower-casing and accent stripping) takes one byte translation
    instead of the regex passes: whole documents (lines glued by "\\n", as the perplexity step
    normalizes them), ASCII noise with every control character and digit, and text that becomes ASCII
    only once lower-cased (the Kelvin sign) or accent-stripped must all normalize as cc_net does."""
    rng = random.Random(11)
    documents = ["\n".join(real_lines[i : i + rng.randrange(1, 30)]) for i in range(0, len(real_lines), 25)]
    ascii_noise = ["".join(chr(rng.randrange(0, 128)) for _ in range(60)) for _ in range(3000)]
    becomes_ascii = ["\u212a\u212a 12 Cafe\u0301 \x01\t" + text for text in ascii_noise[:300]]
    becomes_ascii += ["D\u00e9j\u00e0 Vu 2023\x7f" + text for text in ascii_noise[300:600]]
    texts = documents + ascii_noise + becomes_ascii
    assert sum(t.isascii() for t in texts) > 3000
    assert [normalize(x, **kwargs) for x in texts] == [reference_normalize(x, **kwargs) for x in texts]
    assert [normalize_for_dedup(x) for x in texts] == [reference_normalize_for_dedup(x) for x in texts]


def test_unicode_punctuation_is_all_non_ascii():
    # the ASCII shortcut relies on it: on ASCII text only digits and control characters change
    assert not any(c.isascii() for c in UNICODE_PUNCT)
