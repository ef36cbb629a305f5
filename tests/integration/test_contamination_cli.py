"""`rpv2 contamination build`, then `rpv2 run --contamination` on the embedded sample with a planted
benchmark, `rpv2 signals --contamination`, and a recipe on ``contam_max_overlap``.

The planted benchmark is real text: paragraphs of the embedded sample's own English pages (so some kept
documents contain them) beside wikitext-2's test paragraphs (which no sample page contains). The expected
columns are computed from each written document's text by tests/contamination_reference.py (plain Python
sets of word tuples).
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from pipeline.cli import main as rpv2
from tests.conftest import shared_path
from tests.contamination_reference import gram_tuples, reference_overlap, reference_set, text_passages

REPO = Path(__file__).resolve().parents[2]
N = 13


def _sample_paragraphs() -> list[str]:
    """Body paragraphs of the embedded sample's English pages (pipeline/sample/data/pages/en.txt)."""
    text = (REPO / "pipeline" / "sample" / "data" / "pages" / "en.txt").read_text(encoding="utf-8")
    body = [line for line in text.splitlines() if line and line[0] not in "#@<>" and len(line.split()) >= 40]
    return body[::3]


@pytest.fixture(scope="module")
def benchmarks(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench")
    planted = root / "planted.jsonl.gz"
    with gzip.open(planted, "wt", encoding="utf-8") as handle:
        for paragraph in _sample_paragraphs():
            handle.write(json.dumps({"question": paragraph, "answer": "A"}) + "\n")
    return {"planted": planted, "wikitest": shared_path("realdata", "corpora", "wikitext-2_test.txt")}


@pytest.fixture(scope="module")
def index(benchmarks, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("index") / "idx"
    args = ["contamination", "build", "--out", str(out)]
    for name, path in benchmarks.items():
        args += ["--benchmark", f"{name}={path}"]
    assert rpv2(args) == 0
    return out


@pytest.fixture(scope="module")
def sample_run(index, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--output", str(out), "--contamination", str(index)],
                   check=True, cwd=REPO, capture_output=True)
    return out


def _reference_sets(benchmarks: dict[str, Path]) -> dict[str, set[tuple[str, ...]]]:
    with gzip.open(benchmarks["planted"], "rt", encoding="utf-8") as handle:
        planted = [json.loads(line)["question"] for line in handle]
    return {"planted": reference_set(planted, N), "wikitest": reference_set(text_passages(benchmarks["wikitest"]), N)}


def test_build_prints_counts_and_writes_a_manifest(index, capsys):
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["n"] == N and manifest["columns_order"] == ["planted", "wikitest"]
    assert manifest["benchmarks"]["planted"]["text_fields"] == ["question"]
    assert (index / "SHA256SUMS").is_file()


def test_run_adds_the_columns_with_brute_force_values(sample_run, benchmarks):
    table = ds.dataset(sample_run / "documents", format="parquet", partitioning="hive").to_table()
    names = ["contam_planted_frac", "contam_planted_span", "contam_wikitest_frac", "contam_wikitest_span",
             "contam_max_overlap"]
    assert [c for c in table.column_names if c.startswith("contam_")] == names
    refs = _reference_sets(benchmarks)
    rows = table.select(["raw_content", *names]).to_pylist()
    contaminated = 0
    for row in rows:
        best = 0.0
        for name, grams in refs.items():
            frac, span = reference_overlap(row["raw_content"], grams, N)
            assert row[f"contam_{name}_frac"] == pytest.approx(frac, rel=1e-12)
            assert row[f"contam_{name}_span"] == span
            best = max(best, frac)
        assert row["contam_max_overlap"] == pytest.approx(best, rel=1e-12)
        contaminated += best >= 0.1
    assert 0 < contaminated < len(rows)
    summary = json.loads((sample_run / "_run_summary.json").read_text(encoding="utf-8"))
    assert "contamination" in json.dumps(summary)  # the step is timed in the summary


def test_recipe_on_contam_max_overlap_filters_them(sample_run, tmp_path):
    recipe = tmp_path / "clean.yaml"
    recipe.write_text("name: clean\nrules:\n  - name: not_contaminated\n    expr: \"contam_max_overlap < 0.1\"\n",
                      encoding="utf-8")
    assert rpv2(["filter", "--recipe", str(recipe), str(sample_run), "--output", str(tmp_path / "f")]) == 0
    before = ds.dataset(sample_run / "documents", format="parquet", partitioning="hive").to_table()
    after = ds.dataset(tmp_path / "f" / "documents", format="parquet", partitioning="hive").to_table()
    overlaps = before.column("contam_max_overlap").to_pylist()
    assert after.num_rows == sum(v < 0.1 for v in overlaps) < before.num_rows
    assert max(after.column("contam_max_overlap").to_pylist()) < 0.1


def test_signals_command_writes_rpv2_spans(index, benchmarks, tmp_path):
    docs = shared_path("groundtruth", "rpv2", "public", "docs.jsonl")
    records = [json.loads(line) for line in docs.read_text(encoding="utf-8").splitlines()[:20]]
    with gzip.open(benchmarks["planted"], "rt", encoding="utf-8") as handle:
        paragraph = json.loads(handle.readline())["question"]
    records[4]["raw_content"] += "\n" + paragraph  # planted into a real document
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "signals.jsonl"
    assert rpv2(["signals", str(source), "--artifacts", str(shared_path("groundtruth", "rpv2", "artifacts")),
                 "--no-models", "--output", str(out), "--contamination", str(index)]) == 0
    refs = _reference_sets(benchmarks)
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    for record, result in zip(records, written, strict=True):
        signals = result["quality_signals"]
        length = len(record["raw_content"])
        for name, grams in refs.items():
            frac, span = reference_overlap(record["raw_content"], grams, N)
            assert signals[f"contam_{name}_frac"] == [[0, length, pytest.approx(frac, rel=1e-12)]]
            assert signals[f"contam_{name}_span"] == [[0, length, span]]
    assert written[4]["quality_signals"]["contam_planted_span"][0][2] >= len(gram_tuples(paragraph, N)) + N - 1


def test_bad_index_is_one_line_exit_2(tmp_path, capsys):
    assert rpv2(["run", "--output", str(tmp_path / "o"), "--contamination", str(tmp_path / "missing")]) == 2
    assert rpv2(["contamination", "build", "--benchmark", "x=" + str(tmp_path / "nope.txt"),
                 "--out", str(tmp_path / "i")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(lines) == 2 and "missing" in lines[0] and "nope.txt" in lines[1]


def test_index_by_uri_is_fetched_checked_and_gives_the_same_columns(index, tmp_path, monkeypatch, capsys):
    """An index served over HTTP (its SHA256SUMS lists the files): fetched into the cache, the same
    annotations as the local directory; a file changed on the server is refused with one line."""
    from http_mirror import HTTPMirror

    monkeypatch.setenv("RPV2_CACHE", str(tmp_path / "cache"))
    served = tmp_path / "served"
    shutil.copytree(index, served)
    docs = shared_path("groundtruth", "rpv2", "public", "docs.jsonl")
    artifacts = str(shared_path("groundtruth", "rpv2", "artifacts"))
    outputs = {}
    with HTTPMirror(served) as mirror:
        for name, where in (("local", str(index)), ("uri", mirror.base_url)):
            outputs[name] = tmp_path / f"{name}.jsonl"
            assert rpv2(["signals", str(docs), "--artifacts", artifacts, "--no-models", "--max-docs", "30",
                         "--output", str(outputs[name]), "--contamination", where]) == 0
        assert any(r["path"].endswith(".npy") for r in mirror.requests)
        part = next((served / "wikitest").glob("part-*.npy"))
        part.write_bytes(part.read_bytes()[:-8] + b"\1" * 8)
        shutil.rmtree(tmp_path / "cache")
        capsys.readouterr()
        assert rpv2(["signals", str(docs), "--artifacts", artifacts, "--no-models", "--max-docs", "3",
                     "--output", str(tmp_path / "bad.jsonl"), "--contamination", mirror.base_url]) == 2
    assert outputs["local"].read_bytes() == outputs["uri"].read_bytes()
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and "sha256" in err[0] and part.name in err[0]


def test_rerun_with_a_rebuilt_index_at_the_same_path_is_refused(benchmarks, tmp_path, capsys):
    """The index is part of the run's identity (_run.json): rebuilt with other benchmarks at the same path,
    a rerun into the output is refused with one line naming it, instead of keeping the finished shards'
    old columns beside new ones."""
    index = tmp_path / "idx"
    assert rpv2(["contamination", "build", "--out", str(index), "--benchmark",
                 f"planted={benchmarks['planted']}"]) == 0
    out = tmp_path / "out"
    run = [sys.executable, "-m", "pipeline.cli", "run", "--output", str(out), "--contamination", str(index)]
    first = subprocess.run(run, cwd=REPO, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-2000:]
    shutil.rmtree(index)
    assert rpv2(["contamination", "build", "--out", str(index), "--benchmark",
                 f"wikitest={benchmarks['wikitest']}"]) == 0
    again = subprocess.run(run, cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 2
    refusal = [line for line in again.stderr.splitlines() if "other settings" in line]
    assert len(refusal) == 1 and "contamination" in refusal[0] and "--force" in refusal[0]
    assert not (out / "_work").exists() or not any((out / "_work").rglob("*.parquet"))


def test_rpv2_export_carries_the_contamination_columns(sample_run, tmp_path):
    """`rpv2 export` writes the contam_* columns into the quality_signals records, after RPv2's 45, as
    [[0, len, score]] like `rpv2 signals --contamination`: an export loses none of a run's columns."""
    assert rpv2(["export", "--format", "rpv2", str(sample_run), "--output", str(tmp_path / "x")]) == 0
    table = ds.dataset(sample_run / "documents", format="parquet", partitioning="hive").to_table()
    names = [c for c in table.column_names if c.startswith("contam_")]
    expected = {row["id"]: row for row in table.select(["id", "raw_content", *names]).to_pylist()}
    seen = 0
    for path in sorted((tmp_path / "x" / "quality_signals").rglob("*.signals.json.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                row = expected[record["id"]]
                signals = record["quality_signals"]
                assert list(signals)[-len(names):] == names
                for name in names:
                    assert signals[name] == [[0, len(row["raw_content"]), row[name]]]
                seen += 1
    assert seen == table.num_rows
