"""The 6 DSIR importance signals: RPv2-compatible hash mode vs expected.jsonl in any process (emulated
seed-42 hash(), cross-checked against built-in hash() under PYTHONHASHSEED=42), stable mode determinism."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, shared_path

from signals.artifacts_build import build_dsir
from signals.document import Document
from signals.importance import SIGNAL_NAMES, ImportanceScorer, poisson_pmf, read_hash_mode
from signals.stable_hash import gram_buckets, hash_features

TOLERANCE = 1e-6

# Scores every public document with the given artifacts and prints {id: {signal: value}} as JSON.
_SCORE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from signals.document import Document
    from signals.importance import ImportanceScorer
    docs_path, artifacts, mode = sys.argv[1:4]
    scorer = ImportanceScorer(artifacts, hash_mode=mode)
    out = {}
    with open(docs_path, encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            out[record["id"]] = scorer.score(Document.from_record(record))
    print(json.dumps(out))
    """
)


def _score_in_subprocess(docs: Path, artifacts: Path, hash_seed: str, mode: str = "auto") -> dict:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", _SCORE_SCRIPT, str(docs), str(artifacts), mode],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=True,
    )
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def public() -> Path:
    return shared_path("groundtruth", "rpv2", "public")


def _score_in_process(docs: Path, artifacts: Path, mode: str = "auto") -> dict:
    scorer = ImportanceScorer(artifacts, hash_mode=mode)
    with open(docs, encoding="utf-8") as fh:
        return {(record := json.loads(line))["id"]: scorer.score(Document.from_record(record)) for line in fh}


@pytest.fixture(scope="module")
def rpv2_in_process(public) -> dict:
    """RPv2-mode scores computed in this pytest process, whatever its PYTHONHASHSEED (usually random)."""
    return _score_in_process(public / "docs.jsonl", shared_path("groundtruth", "rpv2", "artifacts"))


def test_rpv2_mode_matches_rpv2_in_any_process(public, rpv2_in_process):
    got = rpv2_in_process
    matched = exact = total = 0
    mismatches = []
    with open(public / "expected.jsonl", encoding="utf-8") as fh:
        for line in fh:
            expected = json.loads(line)
            for name in SIGNAL_NAMES:
                (start, end, value), = expected["quality_signals"][name]
                value_got = got[expected["id"]][name]
                total += 1
                exact += value == value_got
                ok = value is value_got if value is None or value_got is None else abs(value - value_got) <= TOLERANCE
                matched += ok
                if not ok:
                    mismatches.append((expected["id"], name, value, value_got))
    print(f"\nimportance signals (PYTHONHASHSEED={os.environ.get('PYTHONHASHSEED', 'unset: random')}): "
          f"{matched}/{total} (document, signal) pairs match RPv2 (abs tol {TOLERANCE}), {exact} exactly")
    assert not mismatches, mismatches[:10]


def test_rpv2_mode_values_do_not_depend_on_the_process_hash_seed(public, rpv2_in_process):
    artifacts = shared_path("groundtruth", "rpv2", "artifacts")
    assert _score_in_subprocess(public / "docs.jsonl", artifacts, "7") == rpv2_in_process


def test_rpv2_artifacts_without_metadata_use_rpv2_mode():
    assert read_hash_mode(shared_path("groundtruth", "rpv2", "artifacts", "dsir", "en")) == "rpv2"


# Cross-validation: built-in hash() in a process started with PYTHONHASHSEED=42 (RPv2's setting).
_BUILTIN_BUCKETS_SCRIPT = (
    "import json, sys\n"
    "docs = [[''.join(map(chr, cps)) for cps in doc] for doc in json.load(sys.stdin)]\n"
    "print(json.dumps([[abs(hash(g)) % 10000 for g in [*w, *zip(w, w[1:])]] for w in docs]))\n"
)


def test_rpv2_buckets_equal_builtin_hash_under_pythonhashseed_42(public):
    # RPv2 core/quality_signals/utils/dsir.py: abs(hash(gram)) % buckets, str unigrams, tuple bigrams
    rng = random.Random(7)
    docs = [["".join(rng.choice("abcé漢🖕,.'\u0301") for _ in range(rng.randint(1, 6))) for _ in range(500)]]
    with open(public / "docs.jsonl", encoding="utf-8") as fh:
        docs += [list(Document.from_record(json.loads(line)).raw_words) for line in fh]
    env = {**os.environ, "PYTHONHASHSEED": "42"}
    payload = json.dumps([[[ord(c) for c in w] for w in words] for words in docs])
    proc = subprocess.run([sys.executable, "-c", _BUILTIN_BUCKETS_SCRIPT], input=payload, env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    expected = json.loads(proc.stdout)
    assert [gram_buckets(words, 10_000, "rpv2").tolist() for words in docs] == expected


def test_poisson_pmf_matches_scipy_stats():
    from scipy import stats

    for k, mu in [(0, 3.5), (7, 3.5), (38, 118.16398713826366), (5264, 38.02)]:
        assert poisson_pmf(k, np.float64(mu)) == stats.poisson.pmf(k, mu)


@pytest.fixture(scope="module")
def stable_artifacts(tmp_path_factory) -> Path:
    datasets = shared_path("groundtruth", "rpv2", "artifacts_build_inputs", "datasets", "en")
    out = tmp_path_factory.mktemp("stable_artifacts")
    for dataset in ("ccnet", "wikipedia", "books", "openwebtext"):
        source = next((datasets / dataset).glob("*.jsonl*"))
        build_dsir(source, out, "en", dataset, num_samples=200, hash_mode="stable")
    return out


def test_stable_mode_is_recorded_and_identical_across_hash_seeds(stable_artifacts, public, tmp_path):
    assert read_hash_mode(stable_artifacts / "dsir" / "en") == "stable"
    en_docs = tmp_path / "en_docs.jsonl"
    with open(public / "docs.jsonl", encoding="utf-8") as fh:
        en_docs.write_text("".join(line for line in fh if '"language": "en"' in line), encoding="utf-8")
    runs = [_score_in_subprocess(en_docs, stable_artifacts, seed) for seed in ("0", "1", "random")]
    assert runs[0] == runs[1] == runs[2]
    values = [v for doc in runs[0].values() for v in doc.values()]
    assert len(values) == 6 * 135 and all(isinstance(v, float) for v in values[:6])


def test_stable_counts_do_not_depend_on_the_process(stable_artifacts, tmp_path):
    source = next(shared_path("groundtruth", "rpv2", "artifacts_build_inputs", "datasets", "en", "books").glob("*"))
    script = (
        "import sys; from pathlib import Path; from signals.artifacts_build import build_dsir; "
        "build_dsir(sys.argv[1], Path(sys.argv[2]), 'en', 'books', num_samples=200, hash_mode='stable')"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, "-c", script, str(source), str(tmp_path)], env=env, cwd=REPO_ROOT,
                   check=True, timeout=120)
    name = "books.en.10000.counts.npy"
    assert np.array_equal(np.load(tmp_path / "dsir" / "en" / name), np.load(stable_artifacts / "dsir" / "en" / name))


def test_missing_language_gives_none_and_counts(stable_artifacts):
    scorer = ImportanceScorer(stable_artifacts)
    assert scorer.score(Document("Hyvää päivää kaikille.", language="fi")) == dict.fromkeys(SIGNAL_NAMES)
    assert scorer.missing["dsir/fi/ccnet"] == 1


def test_missing_target_dataset_gives_none_for_that_target_only():
    scorer = ImportanceScorer(shared_path("groundtruth", "rpv2", "artifacts"), hash_mode="stable")
    got = scorer.score(Document("Ein ganz normaler Satz über das Wetter.", language="de"))
    assert got["rps_doc_books_importance"] is None and got["rps_doc_openwebtext_importance"] is None
    assert isinstance(got["rps_doc_wikipedia_importance"], float)
    assert scorer.missing["dsir/de/books"] == 1


def test_empty_is_none_whitespace_is_zero(stable_artifacts):
    scorer = ImportanceScorer(stable_artifacts)
    assert scorer.score(Document("", language="en")) == dict.fromkeys(SIGNAL_NAMES)
    got = scorer.score(Document("   \n\t", language="en"))
    assert got["rps_doc_books_importance"] == 0.0  # no words: inner product of a zero vector


@pytest.mark.parametrize(
    "text", ["bad \ud800 surrogate", "ctrl \x00\x01\x1b", "word " * 1_000_000], ids=["surrogate", "control", "5MB"]
)
def test_bad_input_never_crashes(stable_artifacts, text):
    got = ImportanceScorer(stable_artifacts).score(Document(text, language="en"))
    assert all(isinstance(v, float) for v in got.values())


def test_hash_features_count_every_unigram_and_bigram():
    words = ("a", "b", "a", "b")
    assert hash_features(words, 50, "stable").sum() == 7
    assert hash_features((), 50, "rpv2").sum() == 0
