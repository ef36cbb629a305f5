"""The report's scans: counts, characters, histograms and duplicate rates per (snapshot, language, bucket),
over a small output dir written here in the run's layout; references are plain-Python counts of the rows
written."""

from __future__ import annotations

import bisect
import json
import math
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.filter.recipe import parse_recipe
from pipeline.report import scan as scan_module
from pipeline.report.html import render
from pipeline.report.scan import KEY_SIGNALS, ReportError, Signal, bin_edges, scan_run

GROUPS = [("2023-06", "en", "head", 0), ("2023-06", "en", "tail", 1), ("2023-06", "de", "head", 0),
          ("2023-14", "en", "head", 3)]


def _documents(rng: random.Random, n: int, language: str) -> dict[str, list]:
    """Rows with nulls; German has no stop-word fraction (no artifact) and no classifier column."""
    rows = {
        "id": [f"d{rng.random()}" for _ in range(n)],
        "length": [rng.randint(0, 5000) for _ in range(n)],
        "rps_doc_word_count": [None if rng.random() < 0.1 else float(rng.randint(0, 3000)) for _ in range(n)],
        "ccnet_perplexity": [rng.lognormvariate(5.5, 0.8) for _ in range(n)],
        "rps_doc_stop_word_fraction": [None if language == "de" else rng.random() for _ in range(n)],
        "rps_doc_frac_chars_top_2gram": [rng.choice([0.0, 1.0, 0.5, 0.025, rng.random(), None]) for _ in range(n)],
    }
    if language == "en":
        rows["rps_doc_ml_palm_score"] = [rng.random() for _ in range(n)]
    return rows


@pytest.fixture()
def run(tmp_path):
    rng = random.Random(7)
    written = {}
    for snapshot, language, bucket, shard in GROUPS:
        rows = _documents(rng, rng.randint(30, 90), language)
        written[(snapshot, language, bucket)] = rows
        rel = f"snapshot={snapshot}/language={language}/bucket={bucket}/{shard:04d}.parquet"
        path = tmp_path / "documents" / rel
        path.parent.mkdir(parents=True)
        pq.write_table(pa.table(rows), path)
        flags = [rng.random() < 0.2 for _ in rows["id"]]
        (tmp_path / "is_duplicate_exact" / rel).parent.mkdir(parents=True)
        pq.write_table(pa.table({"id": rows["id"], "is_duplicate_exact": flags}), tmp_path / "is_duplicate_exact" / rel)
        representative = [rng.random() < 0.9 for _ in rows["id"]]
        (tmp_path / "clusters_sim0.8" / "documents" / rel).parent.mkdir(parents=True)
        pq.write_table(pa.table({"id": rows["id"], "is_representative": representative}),
                       tmp_path / "clusters_sim0.8" / "documents" / rel)
        rows["_exact"], rows["_fuzzy"] = flags, [not r for r in representative]
    (tmp_path / "_run_summary.json").write_text(json.dumps({
        "documents": {"read": 400, "kept": sum(len(r["id"]) for r in written.values()), "dropped": 0,
                      "dropped_by_reason": {}}}))
    return tmp_path, written


def _bin(value: float, edges: np.ndarray, log: bool) -> int:
    """The bin of ``value`` by bisection (the end bins take what lies beyond the edges)."""
    x = math.log10(min(max(value, edges[0]), edges[-1])) if log else min(max(value, edges[0]), edges[-1])
    cuts = [math.log10(e) for e in edges] if log else list(edges)
    return min(max(bisect.bisect_right(cuts, x) - 1, 0), len(edges) - 2)


def test_documents_and_characters_per_group(run):
    root, written = run
    scan = scan_run(str(root))
    assert scan.files == len(GROUPS)
    assert scan.documents == {g: len(rows["id"]) for g, rows in written.items()}
    assert scan.characters == {g: sum(rows["length"]) for g, rows in written.items()}


def test_histograms_count_every_value_in_its_bin(run):
    root, written = run
    scan = scan_run(str(root))
    for signal in scan.signals:
        for group, rows in written.items():
            values = [v for v in rows.get(signal.column, []) if v is not None]
            hist = scan.histograms.get(signal.column, {}).get(group)
            if not values:  # null everywhere or absent: not computed
                assert hist is None, (signal.column, group)
                continue
            expected = np.zeros(len(hist.edges) - 1, dtype=int)
            for v in values:
                expected[_bin(v, hist.edges, signal.log)] += 1
            np.testing.assert_array_equal(hist.counts, expected, err_msg=f"{signal.column} {group}")
            assert hist.nulls == len(rows[signal.column]) - len(values)


def test_log_signals_span_the_smallest_positive_and_largest_value(run):
    root, written = run
    scan = scan_run(str(root))
    for signal in (s for s in KEY_SIGNALS if s.log):
        values = [v for rows in written.values() for v in rows[signal.column] if v is not None]
        edges = next(iter(scan.histograms[signal.column].values())).edges
        assert math.isclose(edges[0], min(v for v in values if v > 0))
        assert math.isclose(edges[-1], max(values))


def test_results_do_not_depend_on_the_batch_size(run, monkeypatch):
    root, _ = run
    whole = scan_run(str(root))
    monkeypatch.setattr(scan_module, "BATCH_ROWS", 7)
    batched = scan_run(str(root))
    assert batched.documents == whole.documents and batched.characters == whole.characters
    for column, per_group in whole.histograms.items():
        for group, hist in per_group.items():
            np.testing.assert_array_equal(batched.histograms[column][group].counts, hist.counts)
    assert render(batched) == render(whole)  # and the page is the same bytes


def test_duplicate_rates_from_the_sibling_flags(run):
    root, written = run
    rates = {r.name: r for r in scan_run(str(root)).dedup}
    assert set(rates) == {"exact", "fuzzy 0.8"}
    for name, key in (("exact", "_exact"), ("fuzzy 0.8", "_fuzzy")):
        assert rates[name].duplicates == {g: sum(rows[key]) for g, rows in written.items()}
        assert rates[name].documents == {g: len(rows["id"]) for g, rows in written.items()}


def test_a_recipe_reading_dedup_flags_and_partition_columns(run):
    root, written = run
    recipe = parse_recipe({"name": "t", "rules": [
        {"name": "head", "expr": "bucket == 'head'"},
        {"name": "not_dup", "expr": "not is_duplicate_exact"},
        {"name": "words", "expr": "rps_doc_word_count >= 100"}]})
    funnel = scan_run(str(root), recipe).funnel
    expected_kept = {}
    first = {"head": 0, "not_dup": 0, "words": 0}
    for group, rows in written.items():
        kept = 0
        for i in range(len(rows["id"])):
            words = rows["rps_doc_word_count"][i]
            outcomes = [group[2] == "head", not rows["_exact"][i], None if words is None else words >= 100]
            failing = [name for name, ok in zip(first, outcomes, strict=True) if ok is False]
            if failing:
                first[failing[0]] += 1
            else:
                kept += 1
        expected_kept[group] = kept
    assert {g: c["kept"] for g, c in funnel.by_group.items()} == expected_kept
    assert {name: t.dropped_first for name, t in funnel.rules.items()} == first
    assert funnel.rules["words"].null == sum(v is None for r in written.values() for v in r["rps_doc_word_count"])


def test_a_recipe_that_does_not_fit_is_an_error_before_any_work(run):
    root, _ = run
    unknown = parse_recipe({"name": "t", "rules": [{"name": "x", "expr": "no_such_signal > 1"}]})
    with pytest.raises(ReportError, match="no_such_signal"):
        scan_run(str(root), unknown)
    fuzzy = parse_recipe({"name": "t", "rules": [{"name": "x", "expr": "not is_fuzzy_duplicate_sim0.9"}]})
    with pytest.raises(ReportError, match="rpv2 dedup fuzzy --threshold 0.9"):
        scan_run(str(root), fuzzy)


def test_a_directory_without_a_run_is_an_error(tmp_path):
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "stray.parquet").write_bytes(b"")
    with pytest.raises(ReportError, match="not an rpv2 output dir"):
        scan_run(str(tmp_path))
    with pytest.raises(ReportError, match="not an rpv2 output dir"):
        scan_run(str(tmp_path / "missing"))


def test_bin_edges():
    fraction = bin_edges(Signal("f", "f"), None, None, bins=4)
    np.testing.assert_allclose(fraction, [0, 0.25, 0.5, 0.75, 1])
    log = bin_edges(Signal("w", "w", log=True), 10.0, 1000.0, bins=2)
    np.testing.assert_allclose(log, [10, 100, 1000])
    same = bin_edges(Signal("w", "w", log=True), 50.0, 50.0, bins=2)
    assert same[0] < 50 < same[-1]
    nothing = bin_edges(Signal("w", "w", log=True), None, None, bins=2)
    assert nothing[0] > 0 and nothing[-1] > nothing[0]


def test_the_documents_dir_names_its_run(run):
    root, written = run
    scan = scan_run(str(root / "documents"))
    assert scan.summary is not None and sum(scan.documents.values()) == sum(len(r["id"]) for r in written.values())


def test_a_run_without_summary_dedup_or_signals_still_renders(run):
    """Signals absent from every file (a run with --no-signals) are not computed, not a crash."""
    import shutil
    from html.parser import HTMLParser

    root, _ = run
    (root / "_run_summary.json").unlink()
    shutil.rmtree(root / "is_duplicate_exact")
    shutil.rmtree(root / "clusters_sim0.8")
    for path in (root / "documents").rglob("*.parquet"):
        pq.write_table(pq.read_table(path, columns=["id", "length"]), path)
    scan = scan_run(str(root))
    assert scan.histograms == {} and scan.dedup == []
    page = render(scan)
    HTMLParser().feed(page)
    assert "no _run_summary.json" in page and "dedup did not run" in page
    languages = {g[1] for g in GROUPS}
    assert page.count("data-not-computed=") == len(KEY_SIGNALS) * len(languages)
    assert '<svg class="plot"' in page  # documents and characters per language


def test_the_histogrammed_signals_are_columns_the_pipeline_writes():
    """A misspelt column would show as "not computed" everywhere instead of failing."""
    from signals.registry import SIGNAL_NAMES

    assert {s.column for s in scan_module.KEY_SIGNALS + scan_module.CLASSIFIER_SIGNALS} <= set(SIGNAL_NAMES)
