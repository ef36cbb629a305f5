"""Edge cases: the 29 rule-based signals on hostile text give RPv2's values and never crash.

RPv2's values for texts that the ground truth does not hold come from ``rpv2_reference_signals``
below: a literal, slow transcription of RPv2's signal classes (app/src/core/quality_signals/*.py,
app/src/core/document.py), with nltk's tokenizer pattern compiled by the ``regex`` engine as nltk 3.10
does. It shares no code with signals/ except the artifact files it reads, so agreement on random and
hostile text checks the fast paths (one-pass normalization, engine switch, n-gram levels, per-line
character tables) against the plain definitions. tests/test_signals_groundtruth.py checks the same
oracle-free against RPv2's real output.
"""

from __future__ import annotations

import json
import math
import random
import re
import string
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import regex
from conftest import shared_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signals.document import Document
from signals.registry import RULE_BASED_SIGNALS, QualitySignals

# ----------------------------------------------------------------------------- the reference oracle
_PUNCT = str.maketrans("", "", string.punctuation)
_WORDPUNCT = regex.compile(r"\w+|[^\w\s]+", flags=regex.UNICODE | regex.MULTILINE | regex.DOTALL)
_LINES = re.compile(r"([^\n]*\n|[^\n]+$)")


def ref_normalize(text: str) -> str:
    text = text.translate(_PUNCT).lower().strip()
    text = re.sub(r"\s+", " ", text)
    return unicodedata.normalize("NFD", text)


def ref_ngrams(seq, n):
    return [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]


def rpv2_reference_signals(text: str, domain: str | None, bad_words: set[str], stop_words: set[str],
                           ut1: dict[str, int]) -> dict[str, list]:
    """RPv2's 29 rule-based signals for ``text``, written as RPv2's classes compute them."""
    n_chars = len(text)
    norm = ref_normalize(text)
    raw_lines = [(m.group(0), m.start(), m.end()) for m in _LINES.finditer(text)]
    norm_lines = [(ref_normalize(t), s, e) for t, s, e in raw_lines]
    raw_words = _WORDPUNCT.findall(text)
    words = norm.split()
    out: dict[str, list] = {}

    def doc(v):
        return [(0, n_chars, v)]

    # content
    if n_chars == 0 or ("{" not in text and "}" not in text):
        out["rps_doc_curly_bracket"] = doc(0.0)
    else:
        out["rps_doc_curly_bracket"] = doc(round((text.count("{") + text.count("}")) / n_chars, 8))
    if not norm:
        out["rps_doc_ldnoobw_words"] = doc(0.0)
    else:
        num = 0
        for n in {1 + w.count(" ") for w in bad_words}:
            grams = words if n == 1 else [" ".join(t) for t in ref_ngrams(words, n)]
            num += sum(1 for g in grams if g in bad_words)
        out["rps_doc_ldnoobw_words"] = doc(float(num))
    if not norm or "lorem ipsum" not in norm:
        out["rps_doc_lorem_ipsum"] = doc(0.0)
    else:
        out["rps_doc_lorem_ipsum"] = doc(
            round(len(re.findall("lorem ipsum", norm, re.IGNORECASE)) / len(norm), 8))
    if not words:
        out["rps_doc_stop_word_fraction"] = doc(0.0)
    else:
        out["rps_doc_stop_word_fraction"] = doc(round(sum(w in stop_words for w in raw_words) / len(raw_words), 8))
    out["rps_doc_ut1_blacklist"] = doc(ut1.get(domain))
    # repetitions
    total_chars = sum(len(w) for w in words)
    for n in (10, 5, 6, 7, 8, 9):
        name = f"rps_doc_frac_chars_dupe_{n}grams"
        if len(words) < n:
            out[name] = doc(0.0)
            continue
        grams = ref_ngrams(words, n)
        dupes = {g for g, c in Counter(grams).items() if c > 1}
        covered = np.zeros(len(words), dtype=int)
        for i, g in enumerate(grams):
            if g in dupes:
                covered[i : i + n] = 1
        lengths = np.array([len(w) for w in words])
        out[name] = doc(0.0 if total_chars == 0 else round(float(np.sum(lengths * covered) / total_chars), 8))
    for n in (2, 3, 4):
        name = f"rps_doc_frac_chars_top_{n}gram"
        top = Counter(ref_ngrams(words, n)).most_common(1)
        if not top or top[0][1] <= 1:
            out[name] = doc(0.0)
        else:
            gram, count = top[0]
            out[name] = doc(round(sum(len(w) for w in gram) * count / total_chars, 8))
    # natural language
    nr = len(raw_words)
    out["rps_doc_frac_all_caps_words"] = doc(None if nr == 0 else round(sum(map(str.isupper, raw_words)) / nr, 8))
    out["rps_doc_frac_lines_end_with_ellipsis"] = doc(
        None if not raw_lines
        else round(sum(t.rstrip().endswith(("...", "…")) for t, _, _ in raw_lines) / len(raw_lines), 8))
    out["rps_doc_frac_no_alph_words"] = doc(
        None if nr == 0
        else round(1.0 - sum(re.search("[a-zA-Z]", w) is not None for w in raw_words) / nr, 8))
    out["rps_doc_frac_unique_words"] = doc(None if not words else round(len(set(words)) / len(words), 8))
    out["rps_doc_mean_word_length"] = doc(None if not words else round(total_chars / len(words), 8))
    out["rps_doc_num_sentences"] = doc(float(len(re.findall(r"\b[^.!?]+[.!?]*", text))))
    out["rps_doc_symbol_to_word_ratio"] = doc(
        None if nr == 0 else round(sum(text.count(s) for s in ("#", "...", "…")) / nr, 8))
    if not words:
        out["rps_doc_unigram_entropy"] = doc(None)
    else:
        entropy = 0.0
        for c in Counter(words).values():  # left-to-right, as Python 3.11's sum
            entropy += -c / len(words) * math.log(c / len(words))
        out["rps_doc_unigram_entropy"] = doc(round(entropy, 8))
    out["rps_doc_word_count"] = doc(len(words))
    # lines
    out["rps_lines_ending_with_terminal_punctution_mark"] = [
        (s, e, float(t.rstrip().endswith((".", "!", "?", "”")))) for t, s, e in raw_lines]
    out["rps_lines_javascript_counts"] = [
        (s, e, float(sum(w == "javascript" for w in t.split()))) for t, s, e in norm_lines]
    out["rps_lines_num_words"] = [(s, e, len(t.split())) for t, s, e in norm_lines]
    out["rps_lines_numerical_chars_fraction"] = [
        (s, e, 0.0 if not t else round(sum(map(str.isnumeric, t)) / len(t), 8)) for t, s, e in norm_lines]
    bullets = ("\u2022", "\u2023", "\u25B6", "\u25C0", "\u25E6", "\u25A0", "\u25A1", "\u25AA", "\u25AB", "\u2013")
    out["rps_lines_start_with_bulletpoint"] = (
        [(0, n_chars, None)] if not raw_lines
        else [(s, e, float(t.lstrip().startswith(bullets))) for t, s, e in raw_lines])
    out["rps_lines_uppercase_letter_fraction"] = [
        (s, e, round(sum(map(str.isupper, t)) / len(t), 8)) for t, s, e in raw_lines]
    return out


# ------------------------------------------------------------------------------------- fixtures
ARTIFACTS = shared_path("groundtruth", "rpv2", "artifacts")
COMPUTER = QualitySignals(ARTIFACTS, with_models=False)


def _lists(lang: str):
    bad = {line.strip() for line in Path(ARTIFACTS, "bad_words", f"{lang}.txt").read_text("utf-8").splitlines()}
    stop = set(json.loads(Path(ARTIFACTS, "stop_words", f"{lang}.json").read_text("utf-8")))
    ut1 = json.loads(Path(ARTIFACTS, "bad_urls", "domain_to_category_id.json").read_text("utf-8"))
    return bad, stop, ut1


EN_LISTS = _lists("en")


def _ours(text: str, lang: str = "en", domain: str | None = "example.com") -> dict[str, list]:
    doc = Document(text, domain=domain, language=lang)
    return COMPUTER.rule_based(doc)


def _assert_matches_reference(text: str, domain: str | None = "example.com") -> None:
    want = rpv2_reference_signals(text, domain, *EN_LISTS)
    got = _ours(text, domain=domain)
    assert list(got) == list(RULE_BASED_SIGNALS)
    for name in RULE_BASED_SIGNALS:
        g, w = got[name], want[name]
        assert [tuple(x) for x in g] == [tuple(x) for x in w], (name, repr(text[:60]), g[:3], w[:3])
        assert [type(x[2]) for x in g] == [type(x[2]) for x in w], (name, "value types differ")


# ---------------------------------------------------------------------------------------- tests
def test_empty_text_gives_rpv2_values():
    got = _ours("")
    _assert_matches_reference("")
    assert got["rps_lines_start_with_bulletpoint"] == [(0, 0, None)]
    assert got["rps_lines_num_words"] == []
    assert got["rps_doc_word_count"] == [(0, 0, 0)]
    assert got["rps_doc_mean_word_length"] == [(0, 0, None)]
    assert got["rps_doc_curly_bracket"] == [(0, 0, 0.0)]


def test_whitespace_only_text():
    for text in (" ", "\n", "\n\n\n", " \t \n \r\n\u00a0\u3000\u2028 ", "\r"):
        _assert_matches_reference(text)
    got = _ours(" \n \n")
    assert got["rps_lines_num_words"] == [(0, 2, 0), (2, 4, 0)]
    assert got["rps_doc_frac_unique_words"] == [(0, 4, None)]


def test_control_characters():
    text = "a\x00b\x01c\x1cd\x1de\x1ff\x7fg\x0bh\x0ci\x85j\u200bk\u200dl\u00adm\nNEXT\x1c LINE!\x00\n"
    _assert_matches_reference(text)


def test_lone_surrogates_do_not_crash():
    text = "abc \ud800 def\udfff ghi \udbff\udc00 JKL.\n\ud83d\n"
    _assert_matches_reference(text)
    got = _ours(text)
    assert got["rps_lines_uppercase_letter_fraction"][0][:2] == (0, text.index("\n") + 1)


def test_regex_engine_differences_match_nltk():
    # combining marks, superscripts/fractions, U+001C..U+001F, ZWJ/ZWNJ, circled letters
    text = "attivita\u0300 del caffe\u0301. x² + ½ = y\u00b3 \u0661\u0662 a\u200db \u24b6\u24b7 e\u0301te\u0301\n\x1d\x1e"
    _assert_matches_reference(text)


def test_five_megabyte_single_line():
    rng = random.Random(7)
    vocab = ["".join(rng.choice(string.ascii_letters + "0123456789éßΩ{}#.") for _ in range(rng.randint(8, 90)))
             for _ in range(400)]
    parts, size = [], 0
    while size < 5_000_000:
        token = rng.choice(vocab)
        parts.append(token)
        size += len(token) + 1
    text = " ".join(parts)
    assert "\n" not in text and len(text) >= 5_000_000
    got = _ours(text)
    assert got["rps_lines_num_words"] == [(0, len(text), len(parts))]
    _assert_matches_reference(text)


def test_repeated_bigram_gives_top_ngram_fraction_above_one():
    text = "ab cd " * 50
    got = _ours(text)
    assert got["rps_doc_frac_chars_top_3gram"][0][2] > 1.0
    _assert_matches_reference(text)


def test_ldnoobw_multiword_and_punctuated_entries():
    text = "He said 2 girls 1 cup and s&m and G-SPOT. Phone Sex! phone  sex\nballs"
    _assert_matches_reference(text)


def test_ut1_exact_netloc_lookup():
    ut1 = EN_LISTS[2]
    listed = next(iter(ut1))
    for domain in (listed, "www." + listed, listed + ":8080", None):
        got = _ours("some text", domain=domain)
        assert got["rps_doc_ut1_blacklist"] == [(0, 9, ut1.get(domain))]


_TEXT_ALPHABET = st.sampled_from(
    list("ab AB.!?…#{}\n\r\t-–•▶'’”0123456789²½") + ["...", "lorem ipsum", "javascript", "e\u0301", "\u0300",
                                                   "\x1c", "\u00a0", "\u2028", "ß", "İ", "Σ", "ﬁ", "\ud800", "  "]
)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_TEXT_ALPHABET, max_size=80).map("".join))
def test_random_text_matches_reference(text):
    _assert_matches_reference(text)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_unicode_text_matches_reference(text):
    _assert_matches_reference(text)


def test_missing_artifacts_give_null_and_are_counted():
    computer = QualitySignals(ARTIFACTS, with_models=False)
    record = {"raw_content": "Dit is een Nederlandse tekst.", "language": "nl", "source_domain": "x.nl"}
    got = computer.compute(record)
    assert got["rps_doc_ldnoobw_words"] == [(0, 29, None)]
    assert got["rps_doc_stop_word_fraction"] == [(0, 29, None)]
    assert got["rps_doc_word_count"] == [(0, 29, 5)]
    assert computer.missing_artifacts["bad_words/nl"] == 1
    assert computer.missing_artifacts["stop_words/nl"] == 1
    # a language with a stop word list but no LDNOOBW list
    fi = computer.compute({"raw_content": "ja se on hyvä", "language": "fi"})
    assert fi["rps_doc_stop_word_fraction"][0][2] is not None
    assert fi["rps_doc_ldnoobw_words"][0][2] is None


def test_bad_records_do_not_crash():
    computer = QualitySignals(ARTIFACTS, with_models=False)
    got = computer.compute({"raw_content": None, "language": 3, "length": "x", "bucket": 7})
    assert got["ccnet_length"] == [(0, 0, None)]
    assert got["ccnet_bucket"] == [(0, 0, None)]
    assert got["rps_doc_word_count"] == [(0, 0, 0)]
    assert computer.bad_records["raw_content_not_a_string"] == 1
