"""`rpv2 export --format rpv2`: our Parquet back in RedPajama-V2's release layout, equal to RPv2's files.

The specification is RPv2's own worker output for the public ground-truth documents
(../shared/groundtruth/rpv2/public/native/*/*/*.signals.json.gz and *.minhash.parquet) and the CCNet
documents files it read (public/documents). Two round trips:

* native -> our Parquet (pipeline/dataset/schema.py's flattening) -> export: every file equals RPv2's
  (documents byte for byte after gunzip; signals record for record, value and int/float type; minhash
  table equal);
* public documents -> signals and MinHash computed by the pipeline's own annotators -> Parquet -> export:
  equal to RPv2's files (classifier scores within 1e-6, float32 fastText, as tests/test_signals_groundtruth).

Plus the embedded sample run: exporting it and reading the files back gives exactly the Parquet values.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import shared_path

from pipeline.dataset.files import read_documents_file
from pipeline.dataset.schema import (
    DOCUMENT_FIELDS,
    MINHASH_THRESHOLDS,
    document_schema,
    minhash_columns,
    signal_columns,
)
from pipeline.export.rpv2 import CCNET_FIELDS
from pipeline.transforms.export import run_export
from signals.registry import CLASSIFIER_SIGNALS, DOC_LEVEL, INT_SIGNALS, LINE_LEVEL

GT = shared_path("groundtruth", "rpv2")
PUBLIC = GT / "public"
SOURCE_FILES = sorted(p.relative_to(PUBLIC / "documents").as_posix() for p in (PUBLIC / "documents").rglob("*.json.gz"))
SCHEMA = document_schema(DOC_LEVEL, LINE_LEVEL, MINHASH_THRESHOLDS)


def _jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _parquet_path(root: Path, rel: str) -> Path:
    snapshot, shard, name = rel.split("/")
    language, bucket = name[: -len(".json.gz")].split("_")
    return root / "documents" / f"snapshot={snapshot}" / f"language={language}" / f"bucket={bucket}" / f"{shard}.parquet"


def _base_row(record: dict, rel: str, row: int) -> dict:
    from pipeline.dataset.ids import document_id_int

    out = {name: record.get(name) for name, _ in DOCUMENT_FIELDS}
    out["id"] = f"{rel}/{row}"
    out["id_int"] = document_id_int(out["id"])
    out["shard_id"] = rel
    return out


def _write(root: Path, rel: str, rows: list[dict]) -> None:
    import pyarrow as pa

    path = _parquet_path(root, rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)


@pytest.fixture(scope="module")
def native_round_trip(tmp_path_factory) -> Path:
    """RPv2's native files flattened into our Parquet, then exported."""
    root = tmp_path_factory.mktemp("native_parquet")
    for rel in SOURCE_FILES:
        records = _jsonl_gz(PUBLIC / "documents" / rel)
        native = _jsonl_gz(PUBLIC / "native" / rel.replace(".json.gz", ".signals.json.gz"))
        minhash = pq.read_table(PUBLIC / "native" / rel.replace(".json.gz", ".minhash.parquet")).to_pylist()
        rows = []
        for i, (record, signals, bands) in enumerate(zip(records, native, minhash, strict=True)):
            row = _base_row(record, rel, i)
            assert signals["id"] == row["id"] == bands["id"]
            row.update(signal_columns(signals["quality_signals"], record["raw_content"], DOC_LEVEL, LINE_LEVEL))
            row.update(minhash_columns(bands, MINHASH_THRESHOLDS))
            rows.append(row)
        _write(root, rel, rows)
    out = tmp_path_factory.mktemp("native_export")
    stats, _ = run_export(root, str(out))
    assert stats.errors == [] and stats.files == len(SOURCE_FILES)
    return out


@pytest.fixture(scope="module")
def computed_round_trip(tmp_path_factory) -> Path:
    """Signals and MinHash computed by the pipeline's annotators for the public documents, then exported."""
    from pipeline.shard.annotators import MinHashAnnotator, SignalsAnnotator

    signals = SignalsAnnotator(str(GT / "artifacts"), languages=("en", "de", "fr", "es", "it"))
    minhash = MinHashAnnotator()
    root = tmp_path_factory.mktemp("computed_parquet")
    for rel in SOURCE_FILES:
        rows = []
        for i, record in enumerate(_jsonl_gz(PUBLIC / "documents" / rel)):
            row = _base_row(record, rel, i)
            view: dict = {}
            row.update(signals.annotate(record, view))
            row.update(minhash.annotate(record, view))
            rows.append(row)
        _write(root, rel, rows)
    out = tmp_path_factory.mktemp("computed_export")
    stats, _ = run_export(root, str(out))
    assert stats.errors == [] and stats.files == len(SOURCE_FILES)
    return out


def _same_triples(got: list, want: list, tol: float = 0.0) -> bool:
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=True):
        if g[0] != w[0] or g[1] != w[1] or (g[2] is None) != (w[2] is None):
            return False
        if w[2] is None:
            continue
        if tol == 0.0 and (type(g[2]) is not type(w[2]) or g[2] != w[2]):
            return False
        if tol and abs(g[2] - w[2]) > tol:
            return False
    return True


@pytest.mark.parametrize("rel", SOURCE_FILES)
def test_documents_files_equal_rpv2_inputs_byte_for_byte(native_round_trip, rel):
    with gzip.open(native_round_trip / "documents" / rel, "rb") as f:
        got = f.read()
    with gzip.open(PUBLIC / "documents" / rel, "rb") as f:
        assert got == f.read()


@pytest.mark.parametrize("rel", SOURCE_FILES)
def test_native_signals_round_trip_exactly(native_round_trip, rel):
    name = rel.replace(".json.gz", ".signals.json.gz")
    got = _jsonl_gz(native_round_trip / "quality_signals" / name)
    want = _jsonl_gz(PUBLIC / "native" / name)
    assert [r["id"] for r in got] == [r["id"] for r in want]
    for g, w in zip(got, want, strict=True):
        assert list(g) == list(w) == ["id", "id_int", "metadata", "quality_signals"]
        assert g["id_int"] == w["id_int"] and g["metadata"] == w["metadata"]
        assert list(g["quality_signals"]) == list(w["quality_signals"])  # RPv2's emit order
        bad = [k for k in w["quality_signals"] if not _same_triples(g["quality_signals"][k], w["quality_signals"][k])]
        assert bad == [], f"{w['id']}: {bad}"


@pytest.mark.parametrize("rel", SOURCE_FILES)
def test_native_minhash_round_trip_exactly(native_round_trip, rel):
    name = rel.replace(".json.gz", ".minhash.parquet")
    got = pq.read_table(native_round_trip / "minhash" / name)
    want = pq.read_table(PUBLIC / "native" / name)
    assert got.schema == want.schema
    assert got.to_pylist() == want.to_pylist()


@pytest.mark.parametrize("rel", SOURCE_FILES)
def test_pipeline_computed_export_equals_rpv2_native_files(computed_round_trip, rel):
    name = rel.replace(".json.gz", ".signals.json.gz")
    got = _jsonl_gz(computed_round_trip / "quality_signals" / name)
    want = _jsonl_gz(PUBLIC / "native" / name)
    assert [(r["id"], r["id_int"]) for r in got] == [(r["id"], r["id_int"]) for r in want]
    for g, w in zip(got, want, strict=True):
        assert g["metadata"] == w["metadata"]
        assert list(g["quality_signals"]) == list(w["quality_signals"])
        bad = [
            k for k, spans in w["quality_signals"].items()
            if not _same_triples(g["quality_signals"][k], spans, 1e-6 if k in CLASSIFIER_SIGNALS else 0.0)
        ]
        assert bad == [], f"{w['id']}: {bad}"
    mh = rel.replace(".json.gz", ".minhash.parquet")
    assert pq.read_table(computed_round_trip / "minhash" / mh).to_pylist() == pq.read_table(
        PUBLIC / "native" / mh
    ).to_pylist()


# ---- the embedded sample run -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_export(sample_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample_export")
    from pipeline.cli import main

    assert main(["export", "--format", "rpv2", str(sample_run), "--output", str(out)]) == 0
    return out


def _sample_files(sample_run: Path) -> list[Path]:
    files = sorted((sample_run / "documents").rglob("*.parquet"))
    assert files
    return files


def _rel_of(path: Path) -> str:
    snapshot, language, bucket = (p.split("=", 1)[1] for p in path.parts[-4:-1])
    return f"{snapshot}/{path.stem}/{language}_{bucket}"


def test_sample_export_reads_back_the_parquet_values(sample_run, sample_export):
    for path in _sample_files(sample_run):
        rows = read_documents_file(path).to_pylist()
        rel = _rel_of(path)
        docs = _jsonl_gz(sample_export / "documents" / f"{rel}.json.gz")
        signals = _jsonl_gz(sample_export / "quality_signals" / f"{rel}.signals.json.gz")
        minhash = pq.read_table(sample_export / "minhash" / f"{rel}.minhash.parquet").to_pylist()
        assert len(docs) == len(signals) == len(minhash) == len(rows)
        for row, doc, sig, mh in zip(rows, docs, signals, minhash, strict=True):
            assert doc == {name: row[name] for name in CCNET_FIELDS}
            assert (sig["id"], sig["id_int"]) == (row["id"], row["id_int"]) == (mh["id"], mh["id_int"])
            qs = sig["quality_signals"]
            for name in DOC_LEVEL:
                (start, end, value), = qs[name]
                assert (start, end, value) == (0, len(row["raw_content"]), row[name])
                if value is not None:
                    assert isinstance(value, int if name in INT_SIGNALS else float)
            spans = [(s["start"], s["end"]) for s in row["line_spans"]]
            for name in LINE_LEVEL:
                assert [(s, e) for s, e, _ in qs[name]] == spans
                assert [v for _, _, v in qs[name]] == row[name]
            for t in MINHASH_THRESHOLDS:
                assert mh[f"signature_sim{t}"] == row[f"signature_sim{t}"]
            assert mh["shard_id"] == row["shard_id"]


def test_sample_export_layout_and_schemas_equal_rpv2_native_files(sample_run, sample_export):
    native_signals = _jsonl_gz(PUBLIC / "native/2023-06/0000/en_head.signals.json.gz")[0]
    native_docs = _jsonl_gz(PUBLIC / "documents/2023-06/0000/en_head.json.gz")[0]
    native_minhash = pq.read_schema(PUBLIC / "native/2023-06/0000/en_head.minhash.parquet")
    for path in _sample_files(sample_run):
        rel = _rel_of(path)
        doc = _jsonl_gz(sample_export / "documents" / f"{rel}.json.gz")
        if doc:
            assert list(doc[0]) == list(native_docs)
            assert {k: type(v) for k, v in doc[0].items()} == {k: type(v) for k, v in native_docs.items()}
        sig = _jsonl_gz(sample_export / "quality_signals" / f"{rel}.signals.json.gz")
        if sig:
            assert list(sig[0]) == list(native_signals)
            assert list(sig[0]["metadata"]) == list(native_signals["metadata"])
            assert list(sig[0]["quality_signals"]) == list(native_signals["quality_signals"])
        assert pq.read_schema(sample_export / "minhash" / f"{rel}.minhash.parquet") == native_minhash


def test_sample_export_writes_rpv2_duplicates_from_exact_dedup(sample_run, sample_export):
    written = 0
    for path in sorted((sample_run / "duplicates_exact").rglob("*.parquet")):
        rel = _rel_of(path)
        got = pq.read_table(sample_export / "duplicates" / f"{rel}.duplicates.parquet")
        assert got.schema.names == ["shard_id", "doc_id", "digest"]
        assert got.to_pylist() == pq.read_table(path).to_pylist()
        written += got.num_rows
    assert written >= 1  # the sample holds one exact duplicate


def test_export_is_deterministic(sample_run, sample_export, tmp_path):
    again = tmp_path / "again"
    run_export(sample_run, str(again))
    for path in sorted(sample_export.rglob("*.gz")):
        assert path.read_bytes() == (again / path.relative_to(sample_export)).read_bytes()


def test_export_reports_a_corrupt_file_and_goes_on(sample_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(sample_run / "documents", copy / "documents")
    victim = sorted((copy / "documents").rglob("*.parquet"))[0]
    victim.write_bytes(b"not a parquet file")
    stats, _ = run_export(copy, str(tmp_path / "exp"))
    assert stats.counts["unreadable_files"] == 1
    assert stats.files == len(_sample_files(sample_run)) - 1
    assert "skipped" in stats.errors[0]


def test_export_cli_rejects_a_directory_without_documents(tmp_path, capsys):
    from pipeline.cli import main

    assert main(["export", "--format", "rpv2", str(tmp_path), "--output", str(tmp_path / "x")]) == 2
    captured = capsys.readouterr()
    assert "no documents/ dataset" in captured.err and captured.out == ""


# ---- the Beam pipeline: any worker count, counters, outputs never overwrite inputs -------------------


def _sha256s(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_worker_processes_write_the_same_bytes_and_the_counters_equal_the_stats(sample_run, tmp_path):
    from pipeline.cli import main

    stats, counters = run_export(sample_run, str(tmp_path / "one"), ["--direct_num_workers=1"])
    two = ["export", "--format", "rpv2", str(sample_run), "--output", str(tmp_path / "two"),
           "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    assert main(two) == 0
    written = _sha256s(tmp_path / "one")
    sources = _sample_files(sample_run)
    assert "_export_report.json" in written and len(written) > 3 * len(sources)
    assert _sha256s(tmp_path / "two") == written
    assert counters == stats.counters()
    assert counters["files"] == len(sources)
    assert counters["documents"] == sum(pq.read_metadata(p).num_rows for p in sources)


@pytest.mark.parametrize("where", ["same", "inside", "file-url-inside-documents", "through-symlink"])
def test_export_refuses_an_output_inside_its_input_before_any_work(sample_run, tmp_path, capsys, where):
    import shutil

    from pipeline.cli import main

    run = tmp_path / "run"
    shutil.copytree(sample_run / "documents", run / "documents")
    (tmp_path / "link").symlink_to(run)
    given, output = {
        "same": (run, f"{run}/"),
        "inside": (run, str(run / "release")),
        "file-url-inside-documents": (run / "documents", f"file://{run}/documents/release"),
        "through-symlink": (tmp_path / "link", str(run / "release")),
    }[where]
    before = _sha256s(run)
    assert main(["export", "--format", "rpv2", str(given), "--output", output]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "outputs never overwrite inputs" in captured.err and not captured.out
    assert _sha256s(run) == before
