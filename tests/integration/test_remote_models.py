"""`rpv2 run` with every model given by http:// URL: workers fetch them, checked by sha256, in DoFn.setup.

A local HTTP server on 127.0.0.1 serves what a bucket would hold: small LMs built with `rpv2 models
build-lm`'s code (their SHA256SUMS written by it), a copy of RedPajama-V2's artifacts dir with the
SHA256SUMS `rpv2 models manifest` writes, lid.176.ftz (no sidecar: the launcher hashes it once) and the
cutoffs file. The run on two worker processes, none of which is given a local path, must write the same
Parquet bytes as the run with local paths, with real buckets and ML signals; wrong bytes served, a
kept language's model missing, or a directory URI without its manifest must fail the run, saying why.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from conftest import shared_path
from http_mirror import HTTPMirror
from pipeline_corpus import build_corpus_mirror, build_corpus_models

from pipeline.cli import main as rpv2
from pipeline.config import load_config
from pipeline.io.fetch import MANIFEST, parse_manifest
from pipeline.transforms.run import RunSetupError, run_pipeline

FILES, DOCS_PER_FILE, NUM_SHARDS = 4, 24, 2
LANGUAGES = ("en", "de", "fr")
FAST_RETRY = {"max_attempts": 3, "base_delay": 0.01, "max_delay": 0.02}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("mirror")
    return root, build_corpus_mirror(root, files=FILES, docs_per_file=DOCS_PER_FILE, seed=11)


@pytest.fixture(scope="module")
def models(tmp_path_factory, mirror) -> tuple[str, str]:
    root, relpaths = mirror
    return build_corpus_models(tmp_path_factory.mktemp("models"), root, relpaths, LANGUAGES)


def _serve_models(root: Path, models: tuple[str, str]) -> Path:
    """``root`` laid out as a bucket: lm/ (with build-lm's SHA256SUMS), lid.176.ftz, cutoffs.yaml."""
    models_dir, cutoffs = models
    shutil.copytree(models_dir, root / "lm")
    shutil.copy(shared_path("realdata", "models", "lid.176.ftz"), root / "lid.176.ftz")
    shutil.copy(cutoffs, root / "cutoffs.yaml")
    return root


@pytest.fixture(scope="module")
def served(tmp_path_factory, models) -> Path:
    root = _serve_models(tmp_path_factory.mktemp("bucket"), models)
    shutil.copytree(shared_path("groundtruth", "rpv2", "artifacts"), root / "artifacts")
    assert rpv2(["models", "manifest", str(root / "artifacts")]) == 0  # as a user does before uploading
    return root


def _config(base_url: str, output: Path, *, lid_model: str, models_dir: str, cutoffs: str, artifacts: str | None,
            signals: bool = True):
    return load_config(overrides={
        "snapshot": "2023-06", "base_url": base_url, "num_shards": NUM_SHARDS, "output": str(output),
        "languages": ",".join(LANGUAGES), "lid_model": lid_model, "models_dir": models_dir, "cutoffs": cutoffs,
        "artifacts": artifacts, "signals": signals, "minhash": signals, "retry": FAST_RETRY,
    })


def _digests(output: Path) -> dict[str, str]:
    return {
        path.relative_to(output).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((output / "documents").rglob("*.parquet"))
    }


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, mirror, models):
    """The reference: every model by local path."""
    root, _ = mirror
    models_dir, cutoffs = models
    output = tmp_path_factory.mktemp("local") / "out"
    config = _config(str(root), output, lid_model=str(shared_path("realdata", "models", "lid.176.ftz")),
                     models_dir=models_dir, cutoffs=cutoffs, artifacts=str(shared_path("groundtruth", "rpv2", "artifacts")))
    return output, run_pipeline(config, ["--direct_num_workers=1"])


@pytest.fixture(scope="module")
def http_run(tmp_path_factory, mirror, served):
    """Every model by http:// URL, on two worker processes sharing one fresh fetch cache."""
    root, _ = mirror
    work = tmp_path_factory.mktemp("http")
    output = work / "out"
    with pytest.MonkeyPatch.context() as patch, HTTPMirror(served) as server:
        patch.setenv("RPV2_CACHE", str(work / "cache"))
        config = _config(str(root), output, lid_model=server.url("lid.176.ftz"), models_dir=server.url("lm"),
                         cutoffs=server.url("cutoffs.yaml"), artifacts=server.url("artifacts/"))
        summary = run_pipeline(config, ["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
        requests = server.requests
    return output, summary, requests, work / "cache" / "fetched"


def test_models_by_url_give_the_bytes_of_models_by_local_path(http_run, local_run):
    http_output, http_summary, _, _ = http_run
    local_output, local_summary = local_run
    assert _digests(local_output)
    assert _digests(http_output) == _digests(local_output)
    assert http_summary["kept_by_language_bucket"] == local_summary["kept_by_language_bucket"]


def test_documents_get_real_buckets_and_ml_signals(http_run):
    output, summary, _, _ = http_run
    table = ds.dataset(output / "documents", format="parquet", partitioning="hive").to_table()
    assert set(table.column("bucket").to_pylist()) == {"head", "middle", "tail"}
    assert set(table.column("language").to_pylist()) == set(LANGUAGES)
    assert summary["events"].get("kept_without_lm", 0) == 0
    rows = table.select(["language", "rps_doc_ml_palm_score", "rps_doc_ml_wikipedia_score",
                         "rps_doc_wikipedia_importance", "rps_doc_stop_word_fraction",
                         "rps_doc_ldnoobw_words"]).to_pylist()
    for row in rows:
        classifier = "rps_doc_ml_palm_score" if row["language"] == "en" else "rps_doc_ml_wikipedia_score"
        for name in (classifier, "rps_doc_wikipedia_importance", "rps_doc_stop_word_fraction", "rps_doc_ldnoobw_words"):
            assert row[name] is not None, (name, row)


def test_workers_fetch_only_what_they_need_once_per_machine(http_run, served):
    _, _, requests, cache = http_run
    fetched = [r["path"].lstrip("/") for r in requests if r["status"] == 200]
    lm_manifest = parse_manifest((served / "lm" / MANIFEST).read_text(), "lm")
    assert sorted(lm_manifest) == sorted(f"{lang}.{ext}" for lang in LANGUAGES for ext in ("arpa.bin", "sp.model"))
    for name in lm_manifest:
        assert fetched.count(f"lm/{name}") == 1  # two worker processes, one download
    assert fetched.count("lid.176.ftz") == 2  # hashed once on the launcher (no sidecar), fetched once
    assert fetched.count("artifacts/classifiers/en/palm.model.bin") == 1
    assert fetched.count("artifacts/dsir/de/ccnet.de.10000.counts.npy") == 1
    not_kept = [p for p in fetched if re.search(r"/(es|it|bg|fi)[/.]", p)]
    assert not_kept == []
    assert "artifacts/bad_urls/category_index.json" not in fetched
    trees = [p for p in (cache / "trees").iterdir() if not p.name.startswith(".")]
    assert len(trees) == 2  # the LMs and the artifacts, mirrored once


def _failing_run(tmp_path: Path, mirror, server: HTTPMirror, monkeypatch, models_dir: str | None = None) -> str:
    """Run with the models served by ``server`` and a fresh cache; return the error's message."""
    monkeypatch.setenv("RPV2_CACHE", str(tmp_path / "cache"))
    root, _ = mirror
    config = _config(str(root), tmp_path / "out", lid_model=server.url("lid.176.ftz"),
                     models_dir=models_dir or server.url("lm"), cutoffs=server.url("cutoffs.yaml"),
                     artifacts=None, signals=False)
    with pytest.raises(Exception) as failure:  # noqa: PT011 - Beam wraps a worker's error in its own types
        run_pipeline(config, ["--direct_num_workers=1"])
    return str(failure.value)


def test_wrong_bytes_fail_the_run_naming_the_file_and_sha256(tmp_path, mirror, models, monkeypatch):
    root = _serve_models(tmp_path / "bucket", models)
    lm = root / "lm" / "de.arpa.bin"
    data = bytearray(lm.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte differs from what SHA256SUMS records
    lm.write_bytes(bytes(data))
    with HTTPMirror(root) as server:
        message = _failing_run(tmp_path, mirror, server, monkeypatch)
    assert "language 'de'" in message
    assert re.search(r"lm/de\.arpa\.bin cannot be used: sha256 [0-9a-f]{64} does not match the recorded", message)
    assert not list((tmp_path / "out" / "documents").rglob("*.parquet"))


def test_a_kept_language_whose_model_is_missing_fails_the_run_naming_it(tmp_path, mirror, models, monkeypatch):
    root = _serve_models(tmp_path / "bucket", models)
    with HTTPMirror(root) as server:
        server.inject("lm/fr.sp.model", "404", times=50)
        message = _failing_run(tmp_path, mirror, server, monkeypatch)
    assert re.search(r"language 'fr': model http://127\.0\.0\.1:\d+/lm/fr\.sp\.model cannot be used: not found",
                     message)


def test_a_directory_url_without_its_manifest_is_refused_before_any_work(tmp_path, mirror, models, monkeypatch):
    root = _serve_models(tmp_path / "bucket", models)
    (root / "lm" / MANIFEST).unlink()
    monkeypatch.setenv("RPV2_CACHE", str(tmp_path / "cache"))
    with HTTPMirror(root) as server:
        config = _config(str(mirror[0]), tmp_path / "out", lid_model=server.url("lid.176.ftz"),
                         models_dir=server.url("lm"), cutoffs=server.url("cutoffs.yaml"), artifacts=None,
                         signals=False)
        with pytest.raises(RunSetupError, match=r"lm/SHA256SUMS: not found: .*rpv2 models manifest"):
            run_pipeline(config, ["--direct_num_workers=1"])
        assert [r["path"] for r in server.requests if r["path"].startswith("/lm/") and r["status"] == 200] == []
