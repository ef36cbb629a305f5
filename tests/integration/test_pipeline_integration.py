"""The whole `rpv2 run` pipeline on Beam's DirectRunner, over a flaky HTTP CommonCrawl mirror.

A generated CommonCrawl-layout mirror (real sentences in en/de/fr/nl, boilerplate, short pages, symbol
soup, a listed file that is missing, a corrupt gzip member) is served on 127.0.0.1 by tests/http_mirror.py
with injected 503s, a connection reset and a truncated body. The run must retry through them and give
exactly the output of a run over the same files on local disk; the Parquet output, the Beam counters
and the run summary must agree with each other and with the accounting identity; and a run on two
worker processes must write byte-identical files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import shared_path
from http_mirror import HTTPMirror
from pipeline_corpus import build_corpus_mirror, build_corpus_models

from pipeline.ccnet.buckets import load_cutoffs
from pipeline.config import load_config
from pipeline.transforms.run import run_pipeline

FILES, DOCS_PER_FILE, NUM_SHARDS = 6, 24, 3
MISSING_FILE = 4  # listed in wet.paths.gz, absent on the server: a 404
CORRUPT_FILE = 5  # one gzip member in the middle is garbage
LM_LANGUAGES = ("en", "de", "fr")
FAST_RETRY = {"max_attempts": 4, "base_delay": 0.01, "max_delay": 0.05}


def _corrupt_one_member(path: Path) -> None:
    """Overwrite bytes in the middle of the file: one record's gzip member no longer inflates."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = b"\x00" * 64
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("mirror")
    relpaths = build_corpus_mirror(root, files=FILES, docs_per_file=DOCS_PER_FILE, seed=7, missing=[MISSING_FILE])
    _corrupt_one_member(root / relpaths[CORRUPT_FILE])
    return root, relpaths


@pytest.fixture(scope="module")
def models(tmp_path_factory, mirror) -> tuple[str, str]:
    """Small SentencePiece + KenLM models for en/de/fr (`rpv2 models build-lm`'s code, real sentences)
    and cutoffs calibrated on the mirror, so that head, middle and tail all occur."""
    root, relpaths = mirror
    return build_corpus_models(tmp_path_factory.mktemp("models"), root, relpaths, LM_LANGUAGES)


def _config(base_url: str, output: Path, models: tuple[str, str]):
    models_dir, cutoffs = models
    return load_config(overrides={
        "snapshot": "2023-06", "base_url": base_url, "num_shards": NUM_SHARDS, "output": str(output),
        "languages": "en,de,fr", "models_dir": models_dir, "cutoffs": cutoffs, "retry": FAST_RETRY,
        "artifacts": str(shared_path("groundtruth", "rpv2", "artifacts")),
    })


def _output_digests(output: Path) -> dict[str, str]:
    return {
        path.relative_to(output).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((output / "documents").rglob("*.parquet"))
    }


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, mirror, models):
    """The reference: the same mirror read from local disk, one in-process worker."""
    root, _ = mirror
    output = tmp_path_factory.mktemp("local") / "out"
    summary = run_pipeline(_config(str(root), output, models), ["--direct_num_workers=1"])
    return output, summary


@pytest.fixture(scope="module")
def http_run(tmp_path_factory, mirror, models):
    root, relpaths = mirror
    output = tmp_path_factory.mktemp("http") / "out"
    with HTTPMirror(root) as server:
        server.inject(relpaths[0], "503", times=2)
        server.inject(relpaths[1], "reset", at=0.4)
        server.inject(relpaths[2], "truncate", at=0.6)
        server.inject(relpaths[3], "503", times=1)
        summary = run_pipeline(_config(server.base_url, output, models), [])
        requests = server.requests
        pending = server.pending_faults()
    return output, summary, requests, pending


def test_every_injected_fault_was_hit_and_retried(http_run):
    _, summary, requests, pending = http_run
    assert pending == 0
    statuses = [r["status"] for r in requests]
    assert statuses.count(503) == 3
    assert summary["events"]["http_retries"] >= 5  # three 503s, one reset, one truncated body
    assert summary["counters"]["http_retries"] == summary["events"]["http_retries"]


def test_retries_lose_nothing_output_equals_the_local_run(http_run, local_run):
    http_output, http_summary, _, _ = http_run
    local_output, local_summary = local_run
    assert _output_digests(http_output) == _output_digests(local_output)
    assert http_summary["documents"] == local_summary["documents"]
    assert http_summary["kept_by_language_bucket"] == local_summary["kept_by_language_bucket"]


def test_accounting_identity_and_counters_agree_with_the_summary(http_run):
    _, summary, _, _ = http_run
    docs = summary["documents"]
    assert docs["read"] == docs["kept"] + sum(docs["dropped_by_reason"].values())
    assert docs["dropped"] == sum(docs["dropped_by_reason"].values())
    counters = summary["counters"]
    assert counters["documents_read"] == docs["read"]
    assert counters["documents_kept"] == docs["kept"]
    for reason, count in docs["dropped_by_reason"].items():
        assert counters[f"dropped_{reason}"] == count, reason
    assert sum(v for k, v in counters.items() if k.startswith("dropped_")) == docs["dropped"]
    kept = sum(n for buckets in summary["kept_by_language_bucket"].values() for n in buckets.values())
    assert kept == docs["kept"]


def test_every_drop_reason_of_the_corpus_is_counted(http_run):
    _, summary, _, _ = http_run
    dropped = summary["documents"]["dropped_by_reason"]
    files_read = FILES - 1
    # one too-short page and one boilerplate-only page per 12 in every file that could be read
    assert dropped["too_short"] >= files_read * DOCS_PER_FILE // 12 - 1  # -1: the corrupt member's record
    assert dropped["empty_after_line_dedup"] >= files_read * DOCS_PER_FILE // 12 - 1
    assert dropped["language_not_kept"] > 0  # nl pages
    assert dropped["language_score_below_threshold"] > 0  # symbol soup
    assert dropped["corrupt_gzip"] >= 1
    # documents read: everything in the readable files
    assert summary["documents"]["read"] == files_read * DOCS_PER_FILE


def test_missing_and_corrupt_files_are_listed_in_the_summary(http_run, mirror):
    output, summary, _, _ = http_run
    _, relpaths = mirror
    assert summary["files"] == {"in_shards": FILES, "failed": 1}
    reasons = {(Path(f["file"]).name, f["reason"]) for f in summary["failures"]["listed"]}
    assert (Path(relpaths[MISSING_FILE]).name, "file_not_found") in reasons
    assert (Path(relpaths[CORRUPT_FILE]).name, "corrupt_gzip") in reasons
    on_disk = json.loads((output / "_run_summary.json").read_text())
    assert on_disk["documents"] == summary["documents"]


def test_parquet_output_is_partitioned_bucketed_and_complete(http_run, models):
    output, summary, _, _ = http_run
    cutoffs = load_cutoffs(models[1])
    dataset = ds.dataset(output / "documents", format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert table.num_rows == summary["documents"]["kept"]
    rows = table.to_pylist()
    buckets = {row["bucket"] for row in rows}
    assert {"head", "middle", "tail"} <= buckets
    for row in rows:
        assert row["snapshot"] == "2023-06"
        p30, p60 = cutoffs[row["language"]]
        expected = "head" if row["perplexity"] < p30 else "middle" if row["perplexity"] < p60 else "tail"
        assert row["bucket"] == expected, row["id"]
        assert row["id"].startswith(f"2023-06/{int(row['id'].split('/')[1]):04d}/{row['language']}_{row['bucket']}")
        assert len(row["signature_sim0.7"]) == 14
    ids = [row["id"] for row in rows]
    assert len(set(ids)) == len(ids)
    # zstd everywhere, and no temporary files left behind
    for path in (output / "documents").rglob("*"):
        assert not path.name.startswith(".")
        if path.suffix == ".parquet":
            assert pq.read_metadata(path).row_group(0).column(0).compression == "ZSTD"


def test_two_worker_processes_write_byte_identical_files(tmp_path, mirror, models, local_run):
    root, _ = mirror
    local_output, local_summary = local_run
    output = tmp_path / "out"
    summary = run_pipeline(
        _config(str(root), output, models),
        ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    )
    assert _output_digests(output) == _output_digests(local_output)
    assert summary["documents"] == local_summary["documents"]
    shutil.rmtree(output)


_CHECK_SIGNALS = """
import json, sys
import pyarrow.dataset as ds
from dedup.minhash import RPv2MinHash
from signals.registry import DOC_LEVEL, LINE_LEVEL, QualitySignals
output, artifacts = sys.argv[1], sys.argv[2]
table = ds.dataset(output, format="parquet", partitioning="hive").to_table()
signals, minhash = QualitySignals(artifacts), RPv2MinHash()
mismatches, checked = [], 0
for row in table.to_pylist()[:30]:
    expected = signals.compute(row)
    for name in DOC_LEVEL:
        value = expected[name][0][2]
        if row[name] != (None if value is None else float(value)):
            mismatches.append([row["id"], name])
    spans = [(s["start"], s["end"]) for s in row["line_spans"]]
    for name in LINE_LEVEL:
        if [(a, b) for a, b, _ in expected[name]] != spans or \
                row[name] != [None if v is None else float(v) for _, _, v in expected[name]]:
            mismatches.append([row["id"], name])
    bands = minhash.banded_signatures(signals.document(row).normalized_words)
    for key, value in bands.items():
        if row[key] != value:
            mismatches.append([row["id"], key])
    checked += 1
print(json.dumps({"checked": checked, "mismatches": mismatches}))
"""


def test_quality_signals_and_minhash_columns_hold_rpv2_values(http_run):
    # The columns hold the signals module's own values for the stored record, flattened as the contract
    # says (a float per document-level signal, a list aligned with line_spans per line-level signal).
    # Recomputed in a process with another hash seed: RPv2's DSIR hash is emulated, not inherited.
    import os
    import subprocess
    import sys

    from signals.registry import DOC_LEVEL, LINE_LEVEL

    output, summary, _, _ = http_run
    table = ds.dataset(output / "documents", format="parquet", partitioning="hive").to_table()
    assert set(DOC_LEVEL) | set(LINE_LEVEL) | {"line_spans"} <= set(table.column_names)
    result = subprocess.run(
        [sys.executable, "-c", _CHECK_SIGNALS, str(output / "documents"), str(shared_path("groundtruth", "rpv2", "artifacts"))],
        env={**os.environ, "PYTHONHASHSEED": "7"}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["checked"] == min(30, table.num_rows)
    assert report["mismatches"] == []


def test_in_process_and_two_process_runs_write_the_same_bytes(tmp_path, mirror, models):
    # Without RPv2 DSIR artifacts nothing depends on the process hash seed, so the DirectRunner runs in
    # the launcher process (in_memory) by default; two worker processes must write the same files.
    root, _ = mirror
    outputs = {}
    for name, args in {
        "in_memory": ["--direct_running_mode=in_memory", "--direct_num_workers=1"],
        "two_processes": ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    }.items():
        config = dataclasses.replace(_config(str(root), tmp_path / name, models), artifacts=None)
        run_pipeline(config, args)
        outputs[name] = _output_digests(tmp_path / name)
    assert outputs["in_memory"] == outputs["two_processes"]
    assert len(outputs["in_memory"]) >= 9  # 3 languages x 3 buckets, over 3 shards


def test_shards_are_grouped_for_line_dedup_as_cc_net_hash_in_mem():
    from pipeline.transforms.run import hash_groups

    paths = [f"crawl-data/f{i}.warc.wet.gz" for i in range(8)]  # 8 files, 8 shards: one file each
    groups = hash_groups("/mirror", "CC-MAIN-2023-06", paths, 8, [5, 0, 2, 1], 2)
    # every shard of a chosen shard's group is read (its line hashes), only the chosen ones are written
    assert [[t.shard for t in g.tasks] for g in groups] == [[0, 1], [2, 3], [4, 5]]
    assert [list(g.selected) for g in groups] == [[0, 1], [2], [5]]
    assert groups[2].tasks[1].files == ("/mirror/crawl-data/f5.warc.wet.gz",)
    single = hash_groups("/mirror", "CC-MAIN-2023-06", paths, 8, [5, 0, 2, 1], 1)
    assert [[t.shard for t in g.tasks] for g in single] == [[0], [1], [2], [5]]
