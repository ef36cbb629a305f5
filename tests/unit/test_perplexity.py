"""CCNet's perplexity (pipeline/ccnet/perplexity.py): arithmetic against KenLM's test.arpa.

An independent ARPA back-off scorer, written here from the ARPA format's definition, checks the KenLM
scores, and the document perplexity is recomputed from those scores with cc_net's formula.
"""

from __future__ import annotations

import math
import pickle
import shutil

import kenlm
import pytest
import sentencepiece as spm
from conftest import shared_path

from pipeline.ccnet.perplexity import (
    LanguageModels,
    PerplexityScorer,
    count_words,
    perplexity_from_scores,
)
from pipeline.ccnet.text_normalization import normalize


def read_arpa(path) -> dict[tuple[str, ...], tuple[float, float]]:
    table: dict[tuple[str, ...], tuple[float, float]] = {}
    order = 0
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line.startswith("\\") and line.endswith("-grams:"):
            order = int(line[1])
            continue
        if not line or line.startswith("\\") or order == 0:
            continue
        fields = line.split("\t")
        words = tuple(fields[1].split())
        table[words] = (float(fields[0]), float(fields[2]) if len(fields) > 2 else 0.0)
    return table


def arpa_log10(table, context: tuple[str, ...], word: str) -> float:
    """log10 p(word | context) with Katz back-off, unknown words mapped to <unk>."""
    if (word,) not in table:
        word = "<unk>"
    context = tuple(w if (w,) in table else "<unk>" for w in context)
    backoff = 0.0
    while True:
        if context + (word,) in table:
            return backoff + table[context + (word,)][0]
        if context in table:
            backoff += table[context][1]
        context = context[1:]


def arpa_sentence_log10(table, sentence: str, order: int = 5) -> float:
    words = sentence.split() + ["</s>"]
    history = ["<s>"]
    total = 0.0
    for word in words:
        total += arpa_log10(table, tuple(history[-(order - 1) :]), word)
        history.append(word)
    return total


TEST_ARPA = shared_path("realdata", "models", "kenlm", "test.arpa")
SP_MODEL = shared_path("realdata", "models", "sentencepiece", "botchan_en_unigram_1000.model")
SENTENCES = [
    "looking on a little more loin",
    "the screening is higher , however",
    "i would also consider watching biarritz beyond the immediate concerns .",
    "foo bar baz unknownword",
]


@pytest.fixture(scope="module")
def scorer() -> PerplexityScorer:
    return PerplexityScorer(SP_MODEL, TEST_ARPA)


def test_kenlm_scores_match_an_independent_arpa_backoff_scorer():
    table = read_arpa(TEST_ARPA)
    model = kenlm.Model(str(TEST_ARPA))
    for sentence in SENTENCES:
        assert model.score(sentence) == pytest.approx(arpa_sentence_log10(table, sentence), abs=1e-4)


def test_document_perplexity_is_ten_to_minus_mean_log10_over_tokens_plus_one(scorer):
    table = read_arpa(TEST_ARPA)
    for sentence in SENTENCES:
        expected = 10 ** (-arpa_sentence_log10(table, sentence) / (len(sentence.split()) + 1))
        # KenLM stores probabilities as float32: compare relatively (one sentence has pp ~ 1.7e7)
        assert scorer.score_tokenized(sentence) == pytest.approx(expected, rel=1e-5, abs=0.051)


def test_multi_line_documents_sum_scores_and_lengths_over_lines(scorer):
    table = read_arpa(TEST_ARPA)
    total = sum(arpa_sentence_log10(table, s) for s in SENTENCES)
    length = sum(len(s.split()) + 1 for s in SENTENCES)
    assert scorer.score_tokenized("\n".join(SENTENCES)) == pytest.approx(10 ** (-total / length), rel=1e-5, abs=0.051)
    mean_of_lines = sum(scorer.score_tokenized(s) for s in SENTENCES) / len(SENTENCES)
    assert scorer.score_tokenized("\n".join(SENTENCES)) != pytest.approx(mean_of_lines)


def test_word_count_is_the_whitespace_split_count(scorer):
    """count_words (the shortcut for printable single-spaced text) against ``len(text.split())`` on
    the SentencePiece output of real text in several scripts, and on every kind of whitespace and
    spacing that must send it back to ``split``."""
    texts = [scorer.tokenize(line) for line in lingua_lines()]
    spaces = [c for c in map(chr, range(0x3100)) if c.isspace()] + ["\u205f", "\u3000"]
    odd = ["", " ", "a", " a", "a ", "a  b", "a b  ", "\u00ad a b", "a\u200bb c"]
    odd += [f"a{space}b c" for space in spaces] + [f"{space}a b" for space in spaces]
    assert sum(t.isprintable() for t in texts) > len(texts) // 2  # the shortcut is taken
    for text in texts + odd:
        assert count_words(text) == len(text.split()), repr(text)


def test_perplexity_is_rounded_to_one_decimal():
    assert perplexity_from_scores([-10.0], [4]) == round(10**2.5, 1) == 316.2
    assert perplexity_from_scores([], []) == -1.0  # cc_net's value for a text without words


def test_tokenization_is_sentencepiece_over_the_normalized_whole_document(scorer):
    text = "Botchan said: «I’ll go» — 12 times!\nThe second Line, with Café."
    sp = spm.SentencePieceProcessor(model_file=str(SP_MODEL))
    # cc_net's mine.py normalizes raw_content as one string, which removes "\n" and glues the lines
    assert "\n" not in scorer.tokenize(text)
    assert scorer.tokenize(text) == " ".join(sp.encode(normalize(text), out_type=str))
    assert "times!the second line" in normalize(text)
    assert "1" not in scorer.tokenize(text) and "0" in scorer.tokenize(text).split()
    assert scorer.perplexity(text) == scorer.score_tokenized(scorer.tokenize(text))


def test_per_line_mode_scores_each_normalized_line():
    per_line = PerplexityScorer(SP_MODEL, TEST_ARPA, per_line=True)
    tokenized = per_line.tokenize("First line here.\nSecond line there.")
    assert tokenized.count("\n") == 1
    assert per_line.perplexity("First line here.\nSecond line there.") == per_line.score_tokenized(tokenized)


def test_empty_document_has_no_perplexity(scorer):
    assert scorer.perplexity("") == -1.0  # cc_net's value for a text without words


def test_real_text_perplexity_is_finite_and_positive(scorer):
    text = shared_path("realdata", "corpora", "botchan_en.txt").read_text(encoding="utf-8")[:5000]
    pp = scorer.perplexity(text)
    assert pp > 1 and math.isfinite(pp)


@pytest.fixture()
def models_dir(tmp_path):
    shutil.copy(SP_MODEL, tmp_path / "en.sp.model")
    shutil.copy(TEST_ARPA, tmp_path / "en.arpa")
    shutil.copy(SP_MODEL, tmp_path / "de.sp.model")  # no LM for de: incomplete, so no model
    return tmp_path


def test_language_models_map_languages_to_scorers(models_dir):
    lms = LanguageModels(models_dir)
    assert lms.languages == ["en"]
    assert "en" in lms and "de" not in lms and "xx" not in lms
    assert lms.get("xx") is None and lms.get(None) is None
    assert lms.perplexity("some text", "xx") is None
    assert lms.perplexity("looking on a little more loin", "en") == PerplexityScorer(
        models_dir / "en.sp.model", models_dir / "en.arpa"
    ).perplexity("looking on a little more loin")
    assert lms.get("en") is lms.get("en")  # loaded once


def test_binary_model_is_preferred_over_arpa(models_dir):
    (models_dir / "en.arpa.bin").write_bytes((models_dir / "en.arpa").read_bytes())
    assert LanguageModels(models_dir).get("en").lm_path.name == "en.arpa.bin"


def test_scorers_pickle_without_their_models(models_dir):
    lms = LanguageModels(models_dir)
    before = lms.perplexity("the screening is higher", "en")
    again = pickle.loads(pickle.dumps(lms))
    assert again._scorers == {}
    assert again.perplexity("the screening is higher", "en") == before


def test_models_are_loaded_once_per_process_and_reloaded_when_rebuilt(models_dir):
    first, second = LanguageModels(models_dir).get("en"), LanguageModels(models_dir).get("en")
    assert first.lm is second.lm and first.sp is second.sp
    arpa = models_dir / "en.arpa"
    arpa.write_text(arpa.read_text() + "\n")  # rebuilt in place: new size and mtime
    assert LanguageModels(models_dir).get("en").lm is not first.lm


def lingua_lines() -> list[str]:
    lines: list[str] = []
    for lang in ("en", "de", "fr", "ru", "zh", "ar", "hi"):
        path = shared_path("realdata", "groundtruth", "langid", "lingua_sentences", f"{lang}.txt")
        lines += path.read_text(encoding="utf-8").split("\n")[:200]
    return lines
