"""The 3 fastText ML signals against RPv2's reference output (expected.jsonl), and their edge cases."""

from __future__ import annotations

import json

import pytest
from conftest import shared_path

from signals.classifiers import (
    SIGNAL_NAMES,
    ClassifierScorer,
    classifier_input,
    score_from_prediction,
)
from signals.document import Document

TOLERANCE = 1e-6  # README §6: fastText float32 arithmetic


@pytest.fixture(scope="module")
def public_set() -> list[tuple[dict, dict]]:
    # one JSON object per "\n"-terminated line (str.splitlines would also split at U+2028 inside strings)
    public = shared_path("groundtruth", "rpv2", "public")
    with open(public / "docs.jsonl", encoding="utf-8") as docs, open(public / "expected.jsonl", encoding="utf-8") as exp:
        return [(json.loads(d), json.loads(e)) for d, e in zip(docs, exp, strict=True)]


@pytest.fixture(scope="module")
def scorer() -> ClassifierScorer:
    return ClassifierScorer(shared_path("groundtruth", "rpv2", "artifacts"))


def _same(expected: float | None, got: float | None) -> bool:
    if expected is None or got is None:
        return expected is got
    return abs(expected - got) <= TOLERANCE


def test_ml_signals_match_rpv2_on_every_public_document(public_set, scorer):
    matched = exact = total = 0
    mismatches = []
    for record, expected in public_set:
        got = scorer.score(Document.from_record(record))
        for name in SIGNAL_NAMES:
            (start, end, value), = expected["quality_signals"][name]
            assert (start, end) == (0, len(record["raw_content"]))
            total += 1
            exact += value == got[name]
            if _same(value, got[name]):
                matched += 1
            else:
                mismatches.append((expected["id"], name, value, got[name]))
    print(f"\nML signals: {matched}/{total} (document, signal) pairs match RPv2 (abs tol {TOLERANCE}), "
          f"{exact} exactly")
    assert not mismatches, mismatches[:10]
    assert total == 3 * len(public_set)


def test_missing_model_gives_none_and_is_counted(scorer):
    doc = Document("Ein ganz normaler Satz.\n", language="de")
    got = scorer.score(doc)
    assert got["rps_doc_ml_palm_score"] is None and got["rps_doc_ml_wikiref_score"] is None
    assert isinstance(got["rps_doc_ml_wikipedia_score"], float)
    assert scorer.missing["classifiers/de/palm"] >= 1


def test_language_without_any_artifact_gives_none_not_keyerror(scorer):
    got = ClassifierScorer(scorer.artifacts_dir).score(Document("Hyvää päivää kaikille.", language="fi"))
    assert got == dict.fromkeys(SIGNAL_NAMES)


def test_empty_document_is_none_but_whitespace_is_scored(scorer):
    # RPv2 only skips len(raw_content) == 0 (README §6).
    assert scorer.score(Document("", language="en"))["rps_doc_ml_palm_score"] is None
    assert isinstance(scorer.score(Document(" \n\t ", language="en"))["rps_doc_ml_palm_score"], float)


@pytest.mark.parametrize(
    "text",
    [
        "bad \ud800 surrogate\nand a line",
        "control \x00\x01\x07\x1b chars \x7f",
        "x" * 5_000_000,
        "\u2028\u2029\x0c\x1c\x85",
    ],
    ids=["lone-surrogate", "control-chars", "5MB-single-line", "unicode-line-breaks"],
)
def test_bad_input_never_crashes(scorer, text):
    got = scorer.score(Document(text, language="en"))
    assert all(isinstance(got[name], float) for name in ("rps_doc_ml_palm_score", "rps_doc_ml_wikiref_score"))


def test_classifier_input_splits_like_str_splitlines():
    # U+2028 splits the classifier input (splitlines) but not RPv2 lines (README §6).
    assert classifier_input("  a\nb\r\nc\u2028d  \n") == "a b c d"


def test_ccnet_label_scores_one_minus_p():
    assert score_from_prediction("__label__cc", 0.25) == 0.75
    assert score_from_prediction("__label__palm", 0.25) == 0.25
    assert score_from_prediction("__label__cc", 1.0000100135803223) == round(1 - 1.0000100135803223, 8)
