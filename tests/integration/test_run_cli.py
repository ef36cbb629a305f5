"""`rpv2 run` on the command line: flags, YAML, errors, the embedded sample."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from pipeline_corpus import build_corpus_mirror

from pipeline.cli import main as rpv2

REPO = Path(__file__).resolve().parents[2]


def test_help_lists_the_run_flags(capsys):
    try:
        rpv2(["run", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    text = capsys.readouterr().out
    for flag in ("--config", "--snapshot", "--base-url", "--num-shards", "--shards", "--output", "--input-format",
                 "--min-len", "--languages", "--lid-threshold", "--models-dir", "--cutoffs", "--artifacts",
                 "--runner-profile"):
        assert flag in text, flag


def test_bad_configuration_exits_2_with_a_message(capsys, tmp_path):
    assert rpv2(["run", "--snapshot", "CC-MAIN-23-6", "--output", str(tmp_path)]) == 2
    assert "snapshot" in capsys.readouterr().err


def test_run_on_a_local_mirror_from_yaml_and_flags(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    build_corpus_mirror(mirror, files=3, docs_per_file=12, seed=3)
    config = tmp_path / "run.yaml"
    config.write_text(
        f"snapshot: '2023-06'\nbase_url: {mirror}\nnum_shards: 3\nlanguages: [en, de]\nminhash: false\n"
        f"output: {tmp_path / 'ignored'}\n"
    )
    out = tmp_path / "out"
    # flags override the YAML (output, shards); Beam options pass through
    code = rpv2(["run", "--config", str(config), "--output", str(out), "--shards", "0,2", "--direct_num_workers=1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "read == kept + sum(dropped): ok" in printed
    summary = json.loads((out / "_run_summary.json").read_text())
    assert summary["shards"] == 2
    assert summary["run"]["shards"] == "0,2"
    assert summary["documents"]["read"] == 24
    assert summary["documents"]["read"] == summary["documents"]["kept"] + summary["documents"]["dropped"]
    table = ds.dataset(out / "documents", format="parquet", partitioning="hive").to_table()
    assert set(table.column("language").to_pylist()) <= {"en", "de"}
    assert {name.split("/")[-1] for name in map(str, (out / "documents").rglob("*.parquet"))} == {
        "0000.parquet", "0002.parquet"
    }
    assert "signature_sim0.7" not in table.column_names


def test_console_script_runs_as_a_subprocess(tmp_path):
    mirror = tmp_path / "mirror"
    build_corpus_mirror(mirror, files=1, docs_per_file=12, seed=4)
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", "--snapshot", "CC-MAIN-2023-06", "--base-url", str(mirror),
         "--num-shards", "1", "--output", str(out), "--languages", "all", "--no-minhash"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rpv2 run summary" in result.stdout
    summary = json.loads((out / "_run_summary.json").read_text())
    assert summary["run"]["languages"] == "all"
    assert "language_not_kept" not in summary["documents"]["dropped_by_reason"]


def test_run_without_arguments_runs_the_embedded_sample_offline(tmp_path):
    import os

    env = {**os.environ, "RPV2_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "EMBEDDED SAMPLE" in result.stderr
    assert "read == kept + sum(dropped): ok" in result.stdout
    output = tmp_path / "rpv2-output"
    summary = json.loads((output / "_run_summary.json").read_text())
    assert summary["run"]["embedded_sample"] is True
    dropped = summary["documents"]["dropped_by_reason"]
    assert dropped["too_short"] > 0 and dropped["language_not_kept"] > 0
    buckets = {b for per_lang in summary["kept_by_language_bucket"].values() for b in per_lang}
    assert {"head", "middle", "tail"} <= buckets
    table = ds.dataset(output / "documents", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == summary["documents"]["kept"]
    assert set(table.column("language").to_pylist()) <= {"en", "de", "fr", "es", "it"}
    # a plain hive dataset: the partition keys live in the paths only, so every reader agrees on them
    import pyarrow.parquet as pq

    whole = pq.read_table(output / "documents")
    assert whole.num_rows == table.num_rows
    assert sorted(map(str, whole.column("bucket").to_pylist())) == sorted(table.column("bucket").to_pylist())
    # signals are computed without artifacts (the artifact-based ones are null and counted)
    assert all(v is not None for v in table.column("rps_doc_word_count").to_pylist())
    assert set(table.column("rps_doc_stop_word_fraction").to_pylist()) == {None}
    assert any(k.startswith("signal_artifact_missing_stop_words_") for k in summary["events"])
    # the sample's tracking-URL copy and AMP near-copy are found by the fuzzy dedup at the end of the run
    assert "fuzzy dedup (threshold 0.8)" in result.stdout
    clusters = ds.dataset(output / "clusters_sim0.8" / "clusters", format="parquet").to_table().to_pylist()
    urls = dict(zip(table.column("id").to_pylist(), table.column("url").to_pylist(), strict=True))
    by_cluster: dict[int, set[str]] = {}
    for row in clusters:
        by_cluster.setdefault(row["cluster_id"], set()).add(urls[row["id"]].split("?")[0].removesuffix("-amp"))
    assert sorted(len(v) for v in by_cluster.values()) == [1, 1]  # each cluster: one page and its copy


def test_run_ends_with_exact_dedup_across_snapshots(tmp_path):
    """`rpv2 run --exact-dedup-state` ends with exact dedup: the sample's tracking-URL copy of a page
    (same WET text, same digest) is flagged, once, and every document gets a flag."""
    from pipeline.commands.run import sample_overrides

    values = sample_overrides(str(tmp_path / "cache"))
    args = ["run", "--snapshot", values["snapshot"], "--base-url", values["base_url"],
            "--num-shards", str(values["num_shards"]), "--models-dir", values["models_dir"],
            "--cutoffs", values["cutoffs"], "--no-signals", "--output", str(tmp_path / "out"),
            "--exact-dedup-state", str(tmp_path / "state")]
    assert rpv2(args) == 0
    flags = ds.dataset(tmp_path / "out" / "is_duplicate_exact", format="parquet", partitioning="hive").to_table()
    docs = ds.dataset(tmp_path / "out" / "documents", format="parquet", partitioning="hive").to_table()
    assert flags.num_rows == docs.num_rows
    flagged = {i for i, dup in zip(flags.column("id").to_pylist(), flags.column("is_duplicate_exact").to_pylist(),
                                   strict=True) if dup}
    url_of = dict(zip(docs.column("id").to_pylist(), docs.column("url").to_pylist(), strict=True))
    digests = docs.column("digest").to_pylist()
    assert len(flagged) == len(digests) - len(set(digests)) == 1
    assert "ferry-timetable-changes-spring" in url_of[flagged.pop()]  # one copy of the duplicated page


def test_bad_shard_spec_and_missing_listing_are_clear_errors(tmp_path, capsys):
    assert rpv2(["run", "--snapshot", "2023-06", "--base-url", str(tmp_path), "--num-shards", "4",
                 "--shards", "2-9", "--output", str(tmp_path / "out")]) == 2
    assert "shard" in capsys.readouterr().err
    assert rpv2(["run", "--snapshot", "2023-06", "--base-url", str(tmp_path), "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "cannot read listing" in err and "CC-MAIN-2023-06/wet.paths.gz" in err
    assert not (tmp_path / "out").exists()


def _relative_files(root: Path, dataset: str) -> set[str]:
    return {p.relative_to(root / dataset).as_posix() for p in (root / dataset).rglob("*.parquet")}


def test_one_pipeline_runs_the_ccnet_stage_then_dedups_the_files_it_wrote(tmp_path, monkeypatch, capsys):
    """The whole run is one composite: the embedded sample through the CCNet stage to Parquet, then exact
    and fuzzy dedup of exactly the files that stage wrote, in a single Beam pipeline (rounds converge)."""
    import apache_beam as beam
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.commands.run import sample_overrides
    from pipeline.config import load_config
    from pipeline.transforms.run import RunSetupError, run_pipeline

    values = sample_overrides(str(tmp_path / "cache"))
    out, state = tmp_path / "out", tmp_path / "state"
    # shard 0 first (a run the next one resumes), then another snapshot's file dropped into the output
    # dir: a dedup that listed the directory would read it; the run's dedup reads the run's files only
    first = load_config(overrides={**values, "output": str(out), "signals": False, "shards": "0"})
    run_pipeline(first, ["--direct_num_workers=1"], sample=True)
    stale = out / "documents" / "snapshot=2023-06" / "language=en" / "bucket=head" / "0000.parquet"
    stale.parent.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["2023-06/0000/en_head.json.gz/0"], "id_int": pa.array([1], pa.uint64()),
                             "digest": ["sha1:STALE"]}), stale)
    runs = []
    run = beam.Pipeline.run

    def counting_run(pipeline, *args, **kwargs):
        runs.append(pipeline)
        return run(pipeline, *args, **kwargs)

    monkeypatch.setattr(beam.Pipeline, "run", counting_run)
    config = load_config(overrides={**values, "output": str(out), "signals": False,
                                    "exact_dedup_state": str(state), "fuzzy_dedup": 0.8})
    summary = run_pipeline(config, ["--direct_num_workers=1"], sample=True)
    assert len(runs) == 1

    docs = summary["documents"]
    assert docs["read"] == docs["kept"] + docs["dropped"] and docs["kept"] > 0
    assert summary["counters"]["documents_kept"] == docs["kept"]  # the resumed shard's counts included
    assert summary["run"]["shards_resumed"] == [0]
    written = _relative_files(out, "documents") - {stale.relative_to(out / "documents").as_posix()}
    assert len(written) == summary["events"]["output_files"]
    # exact dedup: every kept document flagged once, the sample's one exact copy found, state committed
    exact = summary["exact_dedup"]
    assert exact["documents"] == docs["kept"] and exact["duplicates"] == 1
    assert _relative_files(out, "is_duplicate_exact") == written
    assert ds.dataset(out / "is_duplicate_exact", format="parquet").count_rows() == docs["kept"]
    assert json.loads((state / "MANIFEST.json").read_text())["snapshots"] == ["2024-10"]
    # fuzzy dedup: the exact copy and the AMP near-copy, each clustered with its page, converged in-pipeline
    fuzzy = summary["fuzzy_dedup"]
    assert fuzzy["counters"]["documents"] == docs["kept"]
    assert (fuzzy["clusters"], fuzzy["clustered"]) == (2, 4)
    assert fuzzy["counters"]["cc_rounds_run"] == 4
    assert _relative_files(out / "clusters_sim0.8", "documents") == written
    assert not (out / "clusters_sim0.8" / "_work").exists()

    # the same snapshot on the same state is refused before anything runs or is written
    again = load_config(overrides={**values, "output": str(tmp_path / "again"), "exact_dedup_state": str(state)})
    with pytest.raises(RunSetupError, match="already holds snapshot"):
        run_pipeline(again, sample=True)
    capsys.readouterr()
    args = ["run", "--snapshot", values["snapshot"], "--base-url", values["base_url"], "--num-shards",
            str(values["num_shards"]), "--models-dir", values["models_dir"],  # else: a warning line, no LMs
            "--output", str(tmp_path / "again"), "--exact-dedup-state", str(state)]
    assert rpv2(args) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("rpv2 run: exact dedup: state") and "already holds snapshot(s) 2024-10" in line
    assert len(runs) == 1 and not (tmp_path / "again").exists()
