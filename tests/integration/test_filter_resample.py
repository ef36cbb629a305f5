"""`rpv2 filter` with a recipe's ``resample:`` step (pipeline/filter/resample.py, pipeline/transforms/filter.py)
on the embedded sample run: the same documents and bytes on one and two worker processes, the drawn
documents equal to an independent top-k computation, every document accounted for, one-line errors.

Specification: Gumbel top-k over exp(weight) (RPv2 FAQ, DSIR), a document's noise a hash of (seed, id) as
pipeline/filter/resample.py's docstring states it; k = round(fraction * weighed documents), half up.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import REPO_ROOT

from pipeline.dataset.files import read_documents_file
from pipeline.filter.recipe import load_recipe, parse_recipe
from pipeline.transforms.filter import run_filter

TWO_PROCESSES = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
DSIR_WEIGHT = "rps_doc_books_importance - rps_doc_openwebtext_importance"  # English only: null elsewhere


def _recipe(resample: dict, rules: list[dict] | None = None):
    rules = rules or [{"name": "words", "expr": "rps_doc_word_count >= 50"}]
    return parse_recipe({"name": "resample_test", "rules": rules, "resample": resample}, "resample_test.yaml")


def _rows(documents: Path, columns: list[str]) -> list[dict]:
    return [row for path in sorted(documents.rglob("*.parquet"))
            for row in read_documents_file(path, columns=columns).to_pylist()]


def _sha256s(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _reference_draw(rows: list[dict], weight, seed: int, k: int) -> set[str]:
    """The top k of weight + Gumbel(seed, id) computed here from hashlib and math, as the docstring of
    pipeline/filter/resample.py specifies the noise, without its code."""
    keyed = []
    for row in rows:
        w = weight(row)
        if w is None:
            continue
        digest = hashlib.blake2b(row["id"].encode(), digest_size=8, key=seed.to_bytes(8, "little"),
                                 person=b"rpv2-resample").digest()
        u = ((int.from_bytes(digest, "little") >> 11) + 0.5) / 2**53
        keyed.append((w - math.log(-math.log(u)), row["id"]))
    return {doc_id for _, doc_id in sorted(keyed, reverse=True)[:k]}


def test_one_and_two_worker_processes_draw_the_same_documents_and_bytes(sample_run, tmp_path):
    recipe = _recipe({"weight": DSIR_WEIGHT, "fraction": 0.5, "seed": 2024})
    one, one_counters = run_filter(sample_run, tmp_path / "one", recipe, ["--direct_num_workers=1"])
    two, two_counters = run_filter(sample_run, tmp_path / "two", recipe, TWO_PROCESSES)
    written = _sha256s(tmp_path / "one")
    assert "_filter_report.json" in written and len(written) > 2
    assert _sha256s(tmp_path / "two") == written

    every = _rows(sample_run / "documents", ["id", "rps_doc_word_count", "rps_doc_books_importance",
                                                "rps_doc_openwebtext_importance"])
    passing = [r for r in every if r["rps_doc_word_count"] is None or r["rps_doc_word_count"] >= 50]
    weighed = [r for r in passing
               if r["rps_doc_books_importance"] is not None and r["rps_doc_openwebtext_importance"] is not None]
    assert 0 < len(weighed) < len(passing) <= len(every)
    kept = [r["id"] for r in _rows(tmp_path / "one" / "documents", ["id"])]
    assert len(kept) == math.floor(0.5 * len(weighed) + 0.5)  # k counted in the pipeline first
    assert set(kept) <= {r["id"] for r in weighed}
    for report, counters in ((one, one_counters), (two, two_counters)):
        assert counters == report.counters() and report.identity_holds
        assert (counters["documents_read"], counters["documents_kept"]) == (len(every), len(kept))
        assert counters["dropped_words"] == len(every) - len(passing)
        assert counters["dropped_resample_null_weight"] == len(passing) - len(weighed)
        assert counters["dropped_resample_not_selected"] == len(weighed) - len(kept)
        assert len(every) == len(kept) + sum(counters[f"dropped_{n}"]
                                             for n in ("words", "resample_null_weight", "resample_not_selected"))
    saved = json.loads((tmp_path / "one" / "_filter_report.json").read_text(encoding="utf-8"))
    assert saved["resample"] == {"weight": DSIR_WEIGHT, "fraction": 0.5, "seed": 2024}
    assert [r["name"] for r in saved["rules"]] == ["words", "resample_null_weight", "resample_not_selected"]
    assert saved["read"] == saved["kept"] + sum(r["dropped_first"] for r in saved["rules"])


def test_drawn_documents_are_the_top_k_and_keep_every_column_in_order(sample_run, tmp_path):
    """k: 40 over every language's Wikipedia importance, softened (/ 25) so that the noise matters."""
    recipe = _recipe({"weight": "rps_doc_wikipedia_importance / 25", "k": 40, "seed": 7})
    report, _ = run_filter(sample_run, tmp_path / "out", recipe)
    every = _rows(sample_run / "documents", ["id", "rps_doc_word_count", "rps_doc_wikipedia_importance"])
    passing = [r for r in every if r["rps_doc_word_count"] is None or r["rps_doc_word_count"] >= 50]

    def weight(row):
        w = row["rps_doc_wikipedia_importance"]
        return None if w is None else w / 25

    expected = _reference_draw(passing, weight, seed=7, k=40)
    assert len(expected) == 40 == report.kept
    out = tmp_path / "out" / "documents"
    assert {r["id"] for r in _rows(out, ["id"])} == expected
    for path in sorted(out.rglob("*.parquet")):  # each kept file: its source rows, every column, in order
        source = pq.read_table(sample_run / "documents" / path.relative_to(out))
        kept = pq.read_table(path)
        assert kept.schema == source.schema
        ids = source.column("id").to_pylist()
        assert kept.to_pylist() == [row for row, i in zip(source.to_pylist(), ids, strict=True) if i in expected]


def test_the_seed_decides_the_draw(sample_run, tmp_path):
    draws = {}
    for seed in (1, 1, 2):
        out = tmp_path / f"seed{seed}-{len(draws)}"
        run_filter(sample_run, out, _recipe({"weight": "rps_doc_wikipedia_importance / 25", "k": 30, "seed": seed}))
        draws.setdefault(seed, []).append({r["id"] for r in _rows(out / "documents", ["id"])})
    assert draws[1][0] == draws[1][1]
    assert draws[1][0] != draws[2][0] and len(draws[2][0]) == 30


def test_k_beyond_the_weighed_documents_keeps_them_all(sample_run, tmp_path):
    report, _ = run_filter(sample_run, tmp_path / "out", _recipe({"weight": DSIR_WEIGHT, "k": 100_000, "seed": 0}))
    weighed = [r for r in _rows(sample_run / "documents", ["id", "rps_doc_word_count", "rps_doc_books_importance",
                                                            "rps_doc_openwebtext_importance"])
               if (r["rps_doc_word_count"] is None or r["rps_doc_word_count"] >= 50)
               and r["rps_doc_books_importance"] is not None and r["rps_doc_openwebtext_importance"] is not None]
    assert report.kept == len(weighed) and report.rule_counts["resample_not_selected"].dropped_first == 0


def test_shipped_resample_recipe_draws_half_of_the_english_documents(sample_run, tmp_path):
    recipe = load_recipe(REPO_ROOT / "configs" / "recipes" / "rpv2_importance_resample.yaml")
    assert recipe.resample is not None and recipe.resample.fraction == 0.5
    report, _ = run_filter(sample_run, tmp_path / "out", recipe)
    english = report.read - report.rule_counts["english"].dropped_first - report.rule_counts["word_count"].dropped_first
    weighed = english - report.rule_counts["resample_null_weight"].dropped_first
    assert report.kept == math.floor(0.5 * weighed + 0.5) > 0 and report.identity_holds


@pytest.mark.parametrize(
    "resample, message",
    [
        ("{weight: 'rps_doc_books_importance', k: 5}", "resample: 'seed' is missing"),
        ("{weight: 'rps_doc_books_importance', k: 5, fraction: 0.1, seed: 1}", "resample: give either 'k'"),
        ("{weight: 'rps_doc_books_importance', fraction: 2, seed: 1}", "resample: 'fraction' must be a number in (0, 1]"),
        ("{weight: 'rps_doc_books_importanse', k: 5, seed: 1}",
         "resample: weight: unknown column 'rps_doc_books_importanse'"),
        ("{weight: 'bucket', k: 5, seed: 1}", "resample: weight: must be a number"),
    ],
)
def test_cli_bad_resample_is_one_line_exit_2_before_any_work(sample_run, tmp_path, resample, message):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(f"name: bad\nrules:\n  - name: words\n    expr: 'rps_doc_word_count >= 50'\n"
                      f"resample: {resample}\n", encoding="utf-8")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "filter", "--recipe", str(recipe), str(sample_run),
                           "--output", str(out)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    # the one line goes to stderr (pipeline.commands.command_error), stdout stays empty
    assert done.stderr.startswith("rpv2 filter: error: ") and done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr and done.stdout == ""
    assert not out.exists()
