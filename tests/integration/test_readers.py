"""Reading rpv2's output as users do: DuckDB, Polars and HuggingFace ``datasets`` (README, "Reading the
output"), on a real run of the embedded sample.

The reference for every count is the run's own ``_run_summary.json`` (documents kept, per language and
bucket) and pyarrow's reading of the same files, never a number written here. ``datasets`` reads the
hive dataset without its partition columns, so `rpv2 export --format hf` is checked to give them back
(as real columns, filterable), with the MinHash bands under undotted names, the same rows as the run, and
the same bytes for one worker or the ``direct`` runner profile's two worker processes.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from conftest import REPO_ROOT

SIGNATURES = ("signature_sim1.0", "signature_sim0.9", "signature_sim0.8", "signature_sim0.7")
PARTITIONS = ("snapshot", "language", "bucket")


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory) -> Path:
    """`rpv2 run` on the embedded sample, with exact and fuzzy dedup (the sample's default)."""
    out = tmp_path_factory.mktemp("sample_run")
    subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", "--output", str(out / "out"),
         "--exact-dedup-state", str(out / "state")],
        check=True, cwd=REPO_ROOT, capture_output=True,
    )
    return out / "out"


@pytest.fixture(scope="module")
def summary(sample_run) -> dict:
    return json.loads((sample_run / "_run_summary.json").read_text())


@pytest.fixture(scope="module")
def hive(sample_run) -> pa.Table:
    """The documents dataset as pyarrow reads a hive dataset (partition columns from the paths)."""
    return pads.dataset(sample_run / "documents", format="parquet", partitioning="hive").to_table()


@pytest.fixture(scope="module")
def hf_export(sample_run, tmp_path_factory) -> Path:
    from pipeline.cli import main

    out = tmp_path_factory.mktemp("hf_export")
    assert main(["export", "--format", "hf", str(sample_run), "--output", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory) -> str:
    """A cache of its own for ``datasets`` (not ~/.cache/huggingface: no state shared between runs)."""
    import datasets

    datasets.disable_progress_bars()
    return str(tmp_path_factory.mktemp("hf_cache"))


def _kept_by_language(summary: dict) -> dict[str, int]:
    return {lang: sum(buckets.values()) for lang, buckets in summary["kept_by_language_bucket"].items()}


def _kept_by_partition(summary: dict) -> dict[tuple[str, str], int]:
    return {(lang, bucket): n for lang, buckets in summary["kept_by_language_bucket"].items()
            for bucket, n in buckets.items()}


# ---- DuckDB and Polars on the run's hive dataset --------------------------------------------------


def test_duckdb_reads_the_documents_with_their_partition_columns(sample_run, summary, hive):
    import duckdb

    glob = f"{sample_run}/documents/**/*.parquet"
    con = duckdb.connect()
    [(count,)] = con.sql(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning=true)").fetchall()
    assert count == summary["documents"]["kept"]
    rows = con.sql(f"SELECT language, bucket, count(*) FROM read_parquet('{glob}', hive_partitioning=true) "
                   "GROUP BY ALL").fetchall()
    assert {(lang, bucket): n for lang, bucket, n in rows} == _kept_by_partition(summary)
    [(snapshots,)] = con.sql(f"SELECT list(DISTINCT snapshot) FROM read_parquet('{glob}', hive_partitioning=true)"
                             ).fetchall()
    assert set(snapshots) == set(hive.column("snapshot").to_pylist())
    # a dotted column name is quoted; the bands read back as pyarrow reads them
    got = con.sql(f"SELECT id, \"signature_sim0.7\" FROM read_parquet('{glob}', hive_partitioning=true) "
                  "WHERE language = 'en' ORDER BY id").fetchall()
    en = hive.filter(pc.equal(hive.column("language"), "en")).sort_by("id")
    assert len(got) == _kept_by_language(summary)["en"] == en.num_rows
    assert [list(bands) for _, bands in got] == en.column("signature_sim0.7").to_pylist()


def test_duckdb_joins_the_dedup_flags_as_the_readme_shows(sample_run, hive):
    import duckdb

    out = str(sample_run)
    got = dict(duckdb.sql(f"""
        SELECT d.language, count(*)
        FROM read_parquet('{out}/documents/**/*.parquet', hive_partitioning=true) d
        JOIN read_parquet('{out}/is_duplicate_exact/**/*.parquet', hive_partitioning=false) x USING (id)
        JOIN read_parquet('{out}/clusters_sim0.8/documents/**/*.parquet', hive_partitioning=false) c USING (id)
        WHERE NOT x.is_duplicate_exact AND c.is_representative
        GROUP BY ALL""").fetchall())
    flags = pq.read_table(sample_run / "is_duplicate_exact", partitioning=None, columns=["id", "is_duplicate_exact"])
    clusters = pq.read_table(sample_run / "clusters_sim0.8" / "documents", partitioning=None,
                             columns=["id", "is_representative"])
    duplicate = dict(zip(flags.column("id").to_pylist(), flags.column("is_duplicate_exact").to_pylist(), strict=True))
    representative = dict(zip(clusters.column("id").to_pylist(), clusters.column("is_representative").to_pylist(),
                              strict=True))
    want: dict[str, int] = {}
    for doc_id, language in zip(hive.column("id").to_pylist(), hive.column("language").to_pylist(), strict=True):
        if not duplicate[doc_id] and representative[doc_id]:
            want[language] = want.get(language, 0) + 1
    assert got == want
    assert sum(want.values()) < hive.num_rows  # the sample holds an exact and a near duplicate


def test_polars_scans_the_documents_with_their_partition_columns(sample_run, summary, hive):
    import polars as pl

    lf = pl.scan_parquet(f"{sample_run}/documents/**/*.parquet", hive_partitioning=True)
    assert lf.select(pl.len()).collect().item() == summary["documents"]["kept"]
    counts = lf.group_by("language", "bucket").len().collect()
    assert {(r["language"], r["bucket"]): r["len"] for r in counts.iter_rows(named=True)} == _kept_by_partition(summary)
    en = lf.filter(pl.col("language") == "en").select("id", "signature_sim0.7").sort("id").collect()
    want = hive.filter(pc.equal(hive.column("language"), "en")).sort_by("id")
    assert en.height == _kept_by_language(summary)["en"]
    assert en["signature_sim0.7"].to_list() == want.column("signature_sim0.7").to_pylist()


# ---- HuggingFace datasets ---------------------------------------------------------------------------


def test_datasets_reads_the_run_output_without_its_partition_columns(sample_run, summary, hf_cache):
    """Why `rpv2 export --format hf` exists: datasets keeps the rows but drops the hive columns."""
    import datasets

    ds = datasets.load_dataset("parquet", data_files=f"{sample_run}/documents/**/*.parquet", split="train",
                               cache_dir=hf_cache)
    assert ds.num_rows == summary["documents"]["kept"]
    assert not set(PARTITIONS) & set(ds.column_names)
    with pytest.raises(KeyError):
        ds.filter(lambda r: r["language"] == "en")


def test_datasets_loads_the_hf_export_with_partition_columns(hf_export, summary, hf_cache):
    import datasets

    ds = datasets.load_dataset(str(hf_export), split="train", cache_dir=hf_cache)  # the card's default config
    assert ds.num_rows == summary["documents"]["kept"]
    assert ds.column_names[-3:] == list(PARTITIONS)
    for language, count in _kept_by_language(summary).items():
        assert ds.filter(lambda r, lang=language: r["language"] == lang).num_rows == count
    by_partition = {}
    for row in ds.select_columns(["language", "bucket"]):
        key = (row["language"], row["bucket"])
        by_partition[key] = by_partition.get(key, 0) + 1
    assert by_partition == _kept_by_partition(summary)
    again = datasets.load_dataset("parquet", data_dir=str(hf_export / "data"), split="train", cache_dir=hf_cache)
    assert again.num_rows == ds.num_rows and again.column_names == ds.column_names


def test_every_language_bucket_is_a_config_of_the_dataset_card(hf_export, summary, hf_cache):
    import datasets

    for (language, bucket), count in _kept_by_partition(summary).items():
        ds = datasets.load_dataset(str(hf_export), f"{language}_{bucket}", split="train", cache_dir=hf_cache)
        assert ds.num_rows == count
        assert set(ds.unique("language")) == {language} and set(ds.unique("bucket")) == {bucket}


def test_datasets_reads_the_signatures_under_undotted_names(hf_export, hive, hf_cache):
    import datasets

    ds = datasets.load_dataset(str(hf_export), split="train", cache_dir=hf_cache)
    assert not any("." in name for name in ds.column_names)
    want = {doc_id: i for i, doc_id in enumerate(hive.column("id").to_pylist())}
    for name in SIGNATURES:
        alias = name.replace(".", "_")
        bands = hive.column(name).to_pylist()
        assert [bands[want[doc_id]] for doc_id in ds["id"]] == ds[alias]


def test_the_hf_files_hold_the_run_rows_in_order_with_every_column(sample_run, hf_export):
    """One HF file per documents file: the same rows in the same order, every column's values equal,
    the partition columns added from the path and the MinHash columns renamed."""
    sources = sorted((sample_run / "documents").rglob("*.parquet"))
    exported = sorted((hf_export / "data").rglob("*.parquet"))
    assert len(exported) == len(sources)
    for source in sources:
        snapshot, language, bucket = (part.split("=", 1)[1] for part in source.parts[-4:-1])
        target = hf_export / "data" / snapshot / language / bucket / source.name
        want, got = pq.read_table(source, partitioning=None), pq.read_table(target, partitioning=None)
        renamed = [name.replace(".", "_") if name in SIGNATURES else name for name in want.column_names]
        assert got.column_names == renamed + _flag_columns(sample_run) + list(PARTITIONS)
        for name, alias in zip(want.column_names, renamed, strict=True):
            assert got.column(alias).equals(want.column(name)), name
        values = {"snapshot": snapshot, "language": language, "bucket": bucket}
        for name in PARTITIONS:
            assert got.column(name).to_pylist() == [values[name]] * want.num_rows


def test_signature_names_both_keeps_rpv2s_dotted_columns_too(sample_run, hf_export, tmp_path):
    from pipeline.transforms.export import run_export_hf

    stats, counters = run_export_hf(sample_run, tmp_path, signature_names="both")
    assert counters["documents"] == stats.documents
    one = sorted((tmp_path / "data").rglob("*.parquet"))[0]
    table = pq.read_table(one, partitioning=None)
    for name in SIGNATURES:
        assert table.column(name).equals(table.column(name.replace(".", "_")))


def test_the_report_and_card_account_for_every_document(hf_export, summary):
    report = json.loads((hf_export / "_export_report.json").read_text())
    assert report["documents"] == summary["documents"]["kept"] and report["errors"] == []
    assert report["configs"] == {f"{lang}_{bucket}": n for (lang, bucket), n in _kept_by_partition(summary).items()}
    assert report["signatures"] == sorted(SIGNATURES)
    card = (hf_export / "README.md").read_text()
    for name in report["configs"]:
        assert f"config_name: {name}\n" in card


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_direct_profiles_worker_processes_write_the_same_bytes(sample_run, hf_export, tmp_path):
    """`--runner-profile direct` (two DirectRunner worker processes): every file, the report and the card
    equal one process's bytes."""
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "-v", "export", "--format", "hf", str(sample_run), "--output",
         str(tmp_path), "--runner-profile", "direct"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "'direct_running_mode': 'multi_processing'" in done.stderr  # the workers' logged options (-v)
    assert _digests(tmp_path) == _digests(hf_export) != {}


def test_export_hf_refuses_an_output_inside_its_input(sample_run, capsys):
    from pipeline.cli import main

    inside = sample_run / "documents" / "hf"
    assert main(["export", "--format", "hf", str(sample_run), "--output", str(inside)]) == 2
    captured = capsys.readouterr()
    assert "rpv2 export: error:" in captured.err and "error" not in captured.out
    assert not inside.exists()


def test_export_hf_counts_an_unreadable_file_and_exports_the_others(sample_run, tmp_path, capsys):
    import shutil

    from pipeline.cli import main

    copy = tmp_path / "run"
    shutil.copytree(sample_run / "documents", copy / "documents")
    sources = sorted((copy / "documents").rglob("*.parquet"))
    lost = pq.read_metadata(sources[0]).num_rows
    total = sum(pq.read_metadata(p).num_rows for p in sources)
    sources[0].write_bytes(b"not parquet")
    assert main(["export", "--format", "hf", str(copy), "--output", str(tmp_path / "hf")]) == 1
    assert "unreadable_files: 1" in capsys.readouterr().out
    report = json.loads((tmp_path / "hf" / "_export_report.json").read_text())
    assert report["counts"] == {"unreadable_files": 1} and len(report["errors"]) == 1
    assert report["files"] == len(sources) - 1 and report["documents"] == total - lost
    assert len(list((tmp_path / "hf" / "data").rglob("*.parquet"))) == len(sources) - 1


# ---- dedup flags: joined by id from the run's sibling datasets ------------------------------------------


def _flag_columns(run: Path) -> list[str]:
    """The flag columns the HF files should hold, from the run's directories (not from rpv2's code)."""
    names = ["is_duplicate_exact"] if any((run / "is_duplicate_exact").rglob("*.parquet")) else []
    names += [f"is_fuzzy_duplicate_sim{d.name.removeprefix('clusters_sim').replace('.', '_')}"
              for d in sorted(run.glob("clusters_sim*")) if any((d / "documents").rglob("*.parquet"))]
    return names


def _flags_by_id(run: Path) -> dict[str, dict[str, bool]]:
    """column -> id -> flag, read with pyarrow alone: ``is_duplicate_exact`` as the exact dataset stores it,
    a fuzzy flag as *not* ``is_representative`` (the copy of a cluster a filter keeps)."""
    exact = pads.dataset(run / "is_duplicate_exact", format="parquet", partitioning=None).to_table()
    fuzzy = pads.dataset(run / "clusters_sim0.8" / "documents", format="parquet", partitioning=None).to_table()
    return {
        "is_duplicate_exact": dict(zip(exact.column("id").to_pylist(), exact.column("is_duplicate_exact").to_pylist(),
                                       strict=True)),
        "is_fuzzy_duplicate_sim0_8": {i: not r for i, r in zip(fuzzy.column("id").to_pylist(),
                                                              fuzzy.column("is_representative").to_pylist(),
                                                              strict=True)},
    }


def test_the_hf_files_carry_the_runs_dedup_flags_joined_by_id(sample_run, hf_export, hf_cache):
    """Both flags the sample run computed are bool columns equal to an independent join by id, and
    ``datasets`` filters on them; the card and the report name them."""
    import datasets

    assert _flag_columns(sample_run) == ["is_duplicate_exact", "is_fuzzy_duplicate_sim0_8"]
    want = _flags_by_id(sample_run)
    ds = datasets.load_dataset(str(hf_export), split="train", cache_dir=hf_cache)
    for column, by_id in want.items():
        assert ds.features[column].dtype == "bool"
        assert ds[column] == [by_id[doc_id] for doc_id in ds["id"]], column
    flagged = sum(want["is_fuzzy_duplicate_sim0_8"][doc_id] for doc_id in ds["id"])
    assert flagged > 0  # the sample has near-duplicates: the flag is not all false
    kept = ds.filter(lambda row: not row["is_fuzzy_duplicate_sim0_8"])
    assert kept.num_rows == ds.num_rows - flagged
    report = json.loads((hf_export / "_export_report.json").read_text())
    assert report["flags"] == ["is_duplicate_exact", "is_fuzzy_duplicate_sim0.8"]
    card = (hf_export / "README.md").read_text()
    assert "`is_duplicate_exact` (`rpv2 dedup exact`" in card and "`is_fuzzy_duplicate_sim0_8` (`rpv2 dedup fuzzy`" in card


def test_a_missing_flag_file_is_a_null_column_counted_and_no_dedup_no_flag_columns(sample_run, tmp_path):
    import shutil

    from pipeline.transforms.export import run_export_hf

    copy = tmp_path / "run"
    for dataset in ("documents", "is_duplicate_exact", "clusters_sim0.8"):
        shutil.copytree(sample_run / dataset, copy / dataset)
    gone = sorted((copy / "is_duplicate_exact").rglob("*.parquet"))[0]
    gone.unlink()
    stats, counters = run_export_hf(copy, tmp_path / "hf")
    assert stats.counts == {"files_without_is_duplicate_exact": 1} and counters["files_without_is_duplicate_exact"] == 1
    target = tmp_path / "hf" / "data" / Path(*(part.split("=", 1)[1] for part in gone.parts[-4:-1])) / gone.name
    table = pq.read_table(target, partitioning=None)
    assert table.column("is_duplicate_exact").null_count == table.num_rows > 0
    assert table.column("is_fuzzy_duplicate_sim0_8").null_count == 0

    bare = tmp_path / "bare"
    shutil.copytree(sample_run / "documents", bare / "documents")
    stats, _ = run_export_hf(bare, tmp_path / "hf_bare")
    assert stats.flags == [] and stats.counts == {}
    one = sorted((tmp_path / "hf_bare" / "data").rglob("*.parquet"))[0]
    assert not [n for n in pq.read_schema(one).names if n.startswith(("is_duplicate", "is_fuzzy"))]
    assert "Dedup flags" not in (tmp_path / "hf_bare" / "README.md").read_text()
