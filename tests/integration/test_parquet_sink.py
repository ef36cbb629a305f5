"""Parquet output: layout, schema, ids, atomic publication and byte-determinism."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import shared_path

from pipeline.dataset.ids import document_id, document_id_int, shard_file_id
from pipeline.dataset.layout import shard_file_path
from pipeline.dataset.parquet_writer import ShardParquetWriter
from pipeline.dataset.schema import (
    DOCUMENT_FIELDS,
    document_schema,
    line_spans,
    minhash_columns,
    signal_columns,
)
from pipeline.io.publish import publish_bytes

GT = "groundtruth", "rpv2", "public"


def _gt_docs():
    with open(shared_path(*GT, "docs.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _gt_expected():
    with open(shared_path(*GT, "expected.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_document_ids_match_rpv2_ground_truth():
    for doc, expected in zip(_gt_docs(), _gt_expected(), strict=True):
        snapshot, shard, name, row = doc["id"].split("/")
        language, bucket = name.removesuffix(".json.gz").split("_")
        assert document_id(f"CC-MAIN-{snapshot}", int(shard), language, bucket, int(row)) == doc["id"]
        assert shard_file_id(snapshot, int(shard), language, bucket) == doc["shard_id"]
        assert document_id_int(doc["id"]) == expected["id_int"]


def test_output_path_is_hive_partitioned():
    assert (
        shard_file_path("gs://b/out/", "CC-MAIN-2023-06", "en", "head", 7)
        == "gs://b/out/documents/snapshot=2023-06/language=en/bucket=head/0007.parquet"
    )


def test_line_spans_are_rpv2_spans_including_newlines():
    assert line_spans("ab\n\ncd") == [(0, 3), (3, 4), (4, 6)]
    assert line_spans("ab\n") == [(0, 3)]
    assert line_spans("") == []


def test_signal_columns_round_trip_rpv2_ground_truth():
    # Flattening RPv2's [start, end, score] triples into columns and reading them back with line_spans
    # gives RPv2's values again, for every ground-truth document.
    docs = _gt_docs()
    expected = _gt_expected()
    names = list(expected[0]["quality_signals"])
    line_names = [n for n in names if n.startswith("rps_lines_")]
    doc_names = [n for n in names if n not in line_names]
    for doc, exp in zip(docs, expected, strict=True):
        qs = exp["quality_signals"]
        cols = signal_columns(qs, doc["raw_content"], doc_names, line_names)
        for name in doc_names:
            assert cols[name] == (None if qs[name][0][2] is None else float(qs[name][0][2]))
        for name in line_names:
            rebuilt = [[s["start"], s["end"], v] for s, v in zip(cols["line_spans"], cols[name], strict=True)]
            want = [t for t in qs[name] if t[:2] != [0, 0] or doc["raw_content"]]
            assert rebuilt == [[a, b, None if v is None else float(v)] for a, b, v in want], (doc["id"], name)


def _rows(n, signals=False):
    rows = []
    for i in range(n):
        text = f"line {i}\nsecond line of document {i}\n"
        row = {name: None for name, _ in DOCUMENT_FIELDS}
        row.update(
            url=f"https://example.com/{i}", raw_content=text, length=len(text), nlines=2, line_ids=[0, 1],
            language="en", language_score=0.9, perplexity=100.0 + i, bucket="head",
            id=document_id("CC-MAIN-2023-06", 3, "en", "head", i),
        )
        row["id_int"] = document_id_int(row["id"])
        if signals:
            row.update(signal_columns(
                {"rps_doc_word_count": [[0, len(text), 7]], "rps_lines_num_words": [[0, 7, 2], [7, len(text), 5]]},
                text, ["rps_doc_word_count"], ["rps_lines_num_words"],
            ))
            row.update(minhash_columns({"signature_sim0.7": [b"\x00\x01", b"\x02\x03"]}, [0.7]))
        rows.append(row)
    return rows


def _write(out, rows, schema, row_group_rows=4):
    with ShardParquetWriter(str(out), "CC-MAIN-2023-06", 3, schema, row_group_rows=row_group_rows) as writer:
        for row in rows:
            writer.write(row["language"], row["bucket"], row)
        return writer.close()


def test_writer_publishes_one_file_per_language_bucket_in_input_order(tmp_path):
    schema = document_schema(["rps_doc_word_count"], ["rps_lines_num_words"], [0.7])
    rows = _rows(10, signals=True)
    for row in rows[5:]:
        row["bucket"] = "tail"
    published = _write(tmp_path, rows, schema)
    assert sorted(published) == [("en", "head"), ("en", "tail")]
    head = pq.read_table(published[("en", "head")][0])
    assert head.schema == schema
    assert head.column("url").to_pylist() == [f"https://example.com/{i}" for i in range(5)]
    assert head.column("rps_lines_num_words").to_pylist()[0] == [2.0, 5.0]
    assert head.column("signature_sim0.7").to_pylist()[0] == [b"\x00\x01", b"\x02\x03"]
    # pyarrow.dataset reads the whole output with the hive partitions as columns
    dataset = ds.dataset(tmp_path / "documents", format="parquet", partitioning="hive")
    table = dataset.to_table(filter=ds.field("bucket") == "tail")
    assert table.num_rows == 5
    assert not [p for p in Path(tmp_path).rglob("*") if p.name.startswith(".")]  # no temporaries left


def test_same_rows_give_the_same_bytes(tmp_path):
    schema = document_schema()
    first = _write(tmp_path / "a", _rows(9), schema)
    second = _write(tmp_path / "b", _rows(9), schema)
    digest = {k: hashlib.sha256(Path(p).read_bytes()).hexdigest() for k, (p, _) in first.items()}
    assert digest == {k: hashlib.sha256(Path(p).read_bytes()).hexdigest() for k, (p, _) in second.items()}
    metadata = pq.read_metadata(first[("en", "head")][0])
    assert metadata.num_row_groups == 3  # 9 rows, 4 per group: fixed by the data, not by timing
    assert metadata.row_group(0).column(0).compression == "ZSTD"


def test_rewrite_replaces_the_file_whole(tmp_path):
    schema = document_schema()
    path, _ = _write(tmp_path, _rows(6), schema)[("en", "head")]
    _write(tmp_path, _rows(2), schema)
    assert pq.read_table(path).num_rows == 2


def test_failure_inside_the_writer_publishes_nothing(tmp_path):
    schema = document_schema()
    with pytest.raises(RuntimeError), ShardParquetWriter(str(tmp_path), "CC-MAIN-2023-06", 0, schema) as writer:
        writer.write("en", "head", _rows(1)[0])
        raise RuntimeError("worker died")
    assert not (tmp_path / "documents").exists()


def test_publish_bytes_is_atomic_rename(tmp_path):
    target = tmp_path / "x" / "_run_summary.json"
    publish_bytes(b"{}", str(target))
    publish_bytes(b'{"a": 1}', str(target))
    assert target.read_bytes() == b'{"a": 1}'
    assert os.listdir(target.parent) == ["_run_summary.json"]
