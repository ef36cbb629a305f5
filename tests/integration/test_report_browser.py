"""`rpv2 report` rendered in a real browser (Debian's headless Chromium, `make install`'s report-browser).

One run of the embedded sample with the RPv2 artifacts and exact + fuzzy dedup; its report (with a recipe
that reads the dedup flags) is opened in headless Chromium: the DOM Chromium dumps must show the numbers of
``_run_summary.json`` and of the Parquet (counted here with pyarrow), a chart per key signal and language
that has values and "not computed" where it has none, no script error, no console message and no network
reference; the screenshot is written beside the test output. The recipe's funnel must equal what
`rpv2 filter` reports for the same recipe on the same run.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from conftest import REPO_ROOT, shared_path

from pipeline.cli import main as rpv2
from pipeline.filter.recipe import load_recipe

RECIPE = REPO_ROOT / "configs" / "recipes" / "rpv2_head_middle_dedup.yaml"
# the brief's key signals; the classifier scores (rps_doc_ml_*) are taken from the Parquet's schema
KEY_SIGNALS = ("rps_doc_word_count", "ccnet_perplexity", "rps_doc_stop_word_fraction",
               "rps_doc_frac_chars_top_2gram", "rps_doc_frac_chars_dupe_10grams")
# charts besides the histograms: dropped by reason, documents and characters per language, stage seconds
# and throughput, duplicate rates, the recipe's funnel and its kept per bucket
OTHER_CHARTS = 8
WINDOW = (1400, 4000)


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("chromium not found: run `make report-browser` (scripts/install_chromium.sh)")


def browse(page: Path, *args: str) -> subprocess.CompletedProcess:
    """Chromium headless on ``page`` with console messages logged to stderr."""
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
               f"--window-size={WINDOW[0]},{WINDOW[1]}", *args, page.resolve().as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def console_messages(stderr: str) -> list[str]:
    """The page's console messages (script errors, refused loads) as Chromium logs them."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


class PageFacts(HTMLParser):
    """What the dumped DOM shows: numbers by data-key, charts, not-computed cells, references, self-check."""

    def __init__(self) -> None:
        super().__init__()
        self.keyed: dict[str, str] = {}
        self.plots: list[str] = []
        self.not_computed: list[str] = []
        self.references: list[str] = []
        self.tags: Counter = Counter()
        self.render_check = ""
        self._key: str | None = None
        self._in_check = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags[tag] += 1
        if "data-key" in attrs:
            self._key = attrs["data-key"]
            self.keyed[self._key] = ""
        if tag == "svg" and "plot" in (attrs.get("class") or "").split():
            self.plots.append(attrs.get("data-plot", ""))
        if "data-not-computed" in attrs:
            self.not_computed.append(attrs["data-not-computed"])
        for name in ("src", "href", "action", "srcset", "data", "poster"):
            if name in attrs:
                self.references.append(f"{tag} {name}={attrs[name]}")
        if attrs.get("id") == "render-check":
            self._in_check = True

    def handle_endtag(self, tag):
        self._key = None
        self._in_check = False

    def handle_data(self, data):
        if self._key is not None:
            self.keyed[self._key] += data
        if self._in_check:
            self.render_check += data

    def number(self, key: str) -> int:
        assert key in self.keyed, f"the page shows no {key}"
        return int(self.keyed[key].replace(",", "").strip())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """The embedded sample, all 45 signals where the artifacts allow, exact and fuzzy dedup."""
    from pipeline.commands.run import sample_overrides

    tmp = tmp_path_factory.mktemp("report_run")
    values = sample_overrides(str(tmp / "cache"))
    out = tmp / "out"
    code = rpv2(["run", "--snapshot", values["snapshot"], "--base-url", values["base_url"],
                 "--num-shards", str(values["num_shards"]), "--models-dir", values["models_dir"],
                 "--cutoffs", values["cutoffs"], "--artifacts", str(shared_path("groundtruth", "rpv2", "artifacts")),
                 "--exact-dedup-state", str(tmp / "state"), "--fuzzy-dedup", "0.8", "--output", str(out),
                 "--direct_num_workers=1"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def rendered(run_dir, tmp_path_factory):
    """(report path, DOM facts, Chromium's stderr of the DOM dump, screenshot path)."""
    tmp = tmp_path_factory.mktemp("report_page")
    page = tmp / "report.html"
    assert rpv2(["report", str(run_dir), "--recipe", str(RECIPE), "--output", str(page)]) == 0
    dumped = browse(page, "--dump-dom")
    facts = PageFacts()
    facts.feed(dumped.stdout)
    screenshot = tmp / "report_screenshot.png"
    browse(page, f"--screenshot={screenshot}")
    if os.environ.get("RPV2_REPORT_SCREENSHOT"):  # a copy to look at, e.g. /work/notes/report_screenshot.png
        shutil.copyfile(screenshot, os.environ["RPV2_REPORT_SCREENSHOT"])
    return page, facts, dumped.stderr, screenshot


def test_the_page_shows_the_run_summarys_numbers(run_dir, rendered):
    _, facts, _, _ = rendered
    summary = json.loads((run_dir / "_run_summary.json").read_text())
    documents = summary["documents"]
    for key in ("read", "kept", "dropped"):
        assert facts.number(f"documents.{key}") == documents[key], key
    assert documents["dropped_by_reason"]
    for reason, count in documents["dropped_by_reason"].items():
        assert facts.number(f"dropped.{reason}") == count, reason
    for language, per_bucket in summary["kept_by_language_bucket"].items():
        assert facts.number(f"kept.{language}") == sum(per_bucket.values()), language
        for bucket, count in per_bucket.items():
            assert facts.number(f"kept.{language}.{bucket}") == count, (language, bucket)
    assert {k.split(".")[1] for k in facts.keyed if k.startswith("kept.")} == set(summary["kept_by_language_bucket"])


def test_the_page_shows_the_parquets_documents_characters_and_duplicates(run_dir, rendered):
    _, facts, _, _ = rendered
    docs = ds.dataset(run_dir / "documents", format="parquet", partitioning="hive").to_table(
        columns=["snapshot", "language", "bucket", "length"]).to_pylist()
    expected_docs, expected_chars = Counter(), Counter()
    for row in docs:
        group = f"{row['snapshot']}.{row['language']}.{row['bucket']}"
        expected_docs[group] += 1
        expected_chars[group] += row["length"]
    shown = {k.removeprefix("parquet.documents."): facts.number(k) for k in facts.keyed
             if k.startswith("parquet.documents.")}
    assert shown == dict(expected_docs)
    assert {g: facts.number(f"parquet.characters.{g}") for g in expected_chars} == dict(expected_chars)
    exact = ds.dataset(run_dir / "is_duplicate_exact", format="parquet", partitioning="hive").to_table().to_pylist()
    fuzzy = ds.dataset(run_dir / "clusters_sim0.8" / "documents", format="parquet",
                       partitioning="hive").to_table().to_pylist()
    for name, rows, is_duplicate in (("exact", exact, lambda r: r["is_duplicate_exact"]),
                                     ("fuzzy 0.8", fuzzy, lambda r: r["is_representative"] is False)):
        expected = Counter()
        for row in rows:
            expected[f"{row['snapshot']}.{row['language']}.{row['bucket']}"] += bool(is_duplicate(row))
        assert sum(expected.values()) > 0, name  # the sample holds an exact and a near copy
        for group in expected_docs:
            assert facts.number(f"dedup.{name}.{group}") == expected[group], (name, group)


def test_a_chart_per_signal_and_language_with_values_and_not_computed_elsewhere(run_dir, rendered):
    _, facts, _, _ = rendered
    dataset = ds.dataset(run_dir / "documents", format="parquet", partitioning="hive")
    classifiers = sorted(n for n in dataset.schema.names if n.startswith("rps_doc_ml_"))
    assert classifiers
    table = dataset.to_table(columns=["language", *KEY_SIGNALS, *classifiers]).to_pylist()
    languages = {row["language"] for row in table}
    expected_plots, expected_missing = set(), set()
    for signal in (*KEY_SIGNALS, *classifiers):
        for language in languages:
            has_values = any(r[signal] is not None for r in table if r["language"] == language)
            (expected_plots if has_values else expected_missing).add(f"{signal}.{language}")
    assert expected_missing  # classifiers the artifacts lack for some languages: not computed, not a crash
    histograms = {p.removeprefix("hist.") for p in facts.plots if p.startswith("hist.")}
    assert histograms == expected_plots
    assert set(facts.not_computed) == expected_missing
    assert len(facts.plots) == len(expected_plots) + OTHER_CHARTS


def test_chromium_draws_every_chart_without_an_error_or_a_fetch(rendered):
    page, facts, stderr, screenshot = rendered
    check = json.loads(facts.render_check)
    assert check["errors"] == []
    assert check["plots"] == len(facts.plots) and check["empty_plots"] == 0
    assert console_messages(stderr) == []
    assert facts.references == [] and facts.tags["link"] == 0 and facts.tags["img"] == 0
    assert "http://" not in page.read_text() and "https://" not in page.read_text()
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == WINDOW
    assert len(png) > 50_000  # a drawn page, not a blank one (a blank 1400x4000 PNG is a few KiB)


def test_the_browser_checks_do_see_errors_and_fetches(rendered, tmp_path):
    """The checks above are not vacuous: the same page with a failing script and a remote image reports both."""
    page, _, _, _ = rendered
    broken = tmp_path / "broken.html"
    broken.write_text(page.read_text().replace(
        "</body>", "<script>undefined_function()</script><img src=\"http://example.invalid/x.png\"></body>"))
    dumped = browse(broken, "--dump-dom")
    facts = PageFacts()
    facts.feed(dumped.stdout)
    assert any("undefined_function" in e for e in json.loads(facts.render_check)["errors"])
    messages = console_messages(dumped.stderr)
    assert any("undefined_function" in m for m in messages)
    assert any("example.invalid" in m and "Content Security Policy" in m for m in messages)


@pytest.mark.parametrize("recipe", sorted((REPO_ROOT / "configs" / "recipes").glob("*.yaml")), ids=lambda p: p.stem)
def test_the_recipes_funnel_equals_rpv2_filters_report(run_dir, recipe, tmp_path):
    page = tmp_path / "report.html"
    assert rpv2(["report", str(run_dir), "--recipe", str(recipe), "--output", str(page)]) == 0
    facts = PageFacts()
    facts.feed(page.read_text())
    assert rpv2(["filter", str(run_dir), "--recipe", str(recipe), "--output", str(tmp_path / "filtered"),
                 "--direct_num_workers=1"]) == 0
    report = json.loads((tmp_path / "filtered" / "_filter_report.json").read_text())
    rules = [rule.name for rule in load_recipe(recipe).rules]
    # a resampling recipe: `rpv2 filter` reports the draw's drops as rows after the rules; the page shows the
    # rules' funnel, its kept being what the draw started from
    drawn = [row for row in report["rules"] if row["name"] not in rules]
    assert facts.number("recipe.read") == report["read"]
    assert facts.number("recipe.kept") == report["kept"] + sum(row["dropped_first"] for row in drawn)
    for rule in report["rules"]:
        if rule["name"] in rules:
            for key in ("dropped_first", "dropped_alone", "null"):
                assert facts.number(f"recipe.{key}.{rule['name']}") == rule[key], (rule["name"], key)
    assert ("also resamples" in page.read_text()) == bool(drawn)
    if not drawn:
        for partition, counts in report["by_partition"].items():
            assert facts.number(f"recipe.kept.{partition.replace('/', '.')}") == counts["kept"], partition
    assert report["read"] > report["kept"]  # the recipe drops documents of the sample


def test_a_directory_that_is_no_run_output_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert rpv2(["report", str(tmp_path), "--output", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rpv2 report: error: ") and "not an rpv2 output dir" in err and "\n" not in err
    assert not (tmp_path / "r.html").exists()
