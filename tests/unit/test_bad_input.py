"""Bad input never crashes the reader and is never lost without a count (issue 2, "Bad input").

Every case is built with the project's own mirror writer in tmp_path, read with the real reader, and
checked for: the outcome counted under its reason, a failure entry with the file and the offset of
the record, the records after it still read, and ``read == kept + sum(dropped)``.
"""

from __future__ import annotations

import gzip
import logging

import pytest
from http_mirror import HTTPMirror

from pipeline.io.remote import RetryPolicy
from pipeline.sample.mirror import (
    build_mirror,
    conversion_record,
    gzip_member,
    segment_relpath,
    warcinfo_record,
)
from pipeline.sources.read_report import ReadReport
from pipeline.sources.wet import iter_wet_documents

MIN_LEN = 300  # CCNet's min_len, as test input (the readers have no default)
FAST = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01)
TEXT = "This is a sentence of a web page that is long enough to be kept by the reader. " * 6


def make_docs(n: int, prefix: str = "doc") -> list[dict]:
    return [
        {"url": f"https://example.org/{prefix}/{i}", "title": f"{prefix} {i}", "raw_content": f"{i} {TEXT}"}
        for i in range(n)
    ]


def members(docs: list[dict], name: str = "x.warc.wet.gz") -> list[bytes]:
    """The gzip members of a WET file: warcinfo first, then one per document."""
    return [gzip_member(warcinfo_record(name, "CC-MAIN-2023-06"))] + [
        gzip_member(conversion_record(d, i, name)) for i, d in enumerate(docs)
    ]


def offsets(parts: list[bytes]) -> list[int]:
    out, pos = [], 0
    for p in parts:
        out.append(pos)
        pos += len(p)
    return out


def read(path, **kwargs) -> tuple[list[dict], ReadReport]:
    report = ReadReport()
    kwargs.setdefault("min_len", MIN_LEN)
    docs = list(iter_wet_documents(str(path), report=report, **kwargs))
    assert report.is_balanced(), report.to_dict()
    return docs, report


def failures(report: ReadReport, reason: str) -> list[dict]:
    return [f for f in report.failures if f["reason"] == reason]


def test_corrupt_gzip_member_in_the_middle(tmp_path, caplog):
    docs = make_docs(10)
    parts = members(docs)
    bad = bytearray(parts[5])  # document 4
    bad[len(bad) // 2 : len(bad) // 2 + 8] = b"\x00\xffGARBAG"
    parts[5] = bytes(bad)
    path = tmp_path / "corrupt.warc.wet.gz"
    path.write_bytes(b"".join(parts))
    with caplog.at_level(logging.WARNING):
        got, report = read(path)
    assert [d["url"] for d in got] == [d["url"] for i, d in enumerate(docs) if i != 4]
    assert report.read == 10 and report.dropped["corrupt_gzip"] == 1
    (lost,) = [f for f in failures(report, "corrupt_gzip") if f["message"].startswith("record lost")]
    assert lost["file"] == str(path) and lost["offset"] == offsets(parts)[5]
    assert f"offset {offsets(parts)[5]}" in caplog.text


def test_clobbered_gzip_header_resyncs_on_the_next_member(tmp_path):
    docs = make_docs(6)
    parts = members(docs)
    parts[3] = b"XX" + parts[3][2:]
    path = tmp_path / "header.warc.wet.gz"
    path.write_bytes(b"".join(parts))
    got, report = read(path)
    assert len(got) == 5 and report.read == 6 and report.dropped["corrupt_gzip"] == 1
    assert failures(report, "corrupt_gzip")[0]["offset"] == offsets(parts)[3]


def test_truncated_record_in_a_gzip_file(tmp_path):
    parts = members(make_docs(5))
    path = tmp_path / "cut.warc.wet.gz"
    path.write_bytes(b"".join(parts)[: offsets(parts)[5] + len(parts[5]) // 2])
    got, report = read(path)
    assert len(got) == 4 and report.read == 5 and report.dropped["truncated_record"] == 1
    assert failures(report, "truncated_record")[0]["offset"] == offsets(parts)[5]


def test_truncated_record_in_a_plain_file(tmp_path):
    raw = gzip.decompress(b"".join(members(make_docs(3))))
    path = tmp_path / "cut.warc.wet"
    path.write_bytes(raw[:-200])
    got, report = read(path)
    assert len(got) == 2 and report.dropped["truncated_record"] == 1
    (f,) = failures(report, "truncated_record")
    assert raw[f["offset"] :].startswith(b"WARC/1.0\r\nWARC-Type: conversion")
    assert "block bytes" in f["message"]


def test_invalid_utf8_is_repaired_and_counted(tmp_path):
    docs = make_docs(3)
    docs[1]["_block"] = b"Title\n" + TEXT.encode() + b" bad bytes \xff\xfe and \xc3\x28 here\n"
    path = tmp_path / "utf8.warc.wet.gz"
    path.write_bytes(b"".join(members(docs)))
    got, report = read(path)
    assert len(got) == 3 and report.repaired["invalid_utf8"] == 1
    assert "\ufffd" in got[1]["raw_content"]
    assert failures(report, "invalid_utf8")[0]["offset"] == offsets(members(docs))[2]
    got, report = read(path, on_invalid_utf8="drop")
    assert len(got) == 2 and report.dropped["invalid_utf8"] == 1 and report.read == 3


@pytest.mark.parametrize(
    "override",
    [
        {"WARC-Target-URI": None},
        {"WARC-Date": None},
        {"WARC-Type": None},
        {"Content-Length": None},
        {"Content-Length": "abc"},
    ],
)
def test_missing_warc_headers(tmp_path, override):
    docs = make_docs(4)
    docs[2]["_headers"] = override
    parts = members(docs)
    path = tmp_path / "headers.warc.wet.gz"
    path.write_bytes(b"".join(parts))
    got, report = read(path)
    assert [d["url"] for d in got] == [docs[i]["url"] for i in (0, 1, 3)]
    assert report.read == 4 and report.dropped["missing_headers"] == 1
    assert failures(report, "missing_headers")[0]["offset"] == offsets(parts)[3]


def test_garbage_between_records_is_counted(tmp_path):
    parts = members(make_docs(3))
    parts.insert(2, gzip_member(b"this is not a WARC record\r\nat all\r\n"))
    path = tmp_path / "garbage.warc.wet.gz"
    path.write_bytes(b"".join(parts))
    got, report = read(path)
    assert len(got) == 3 and report.dropped["missing_headers"] == 1
    assert failures(report, "missing_headers")[0]["offset"] == offsets(parts)[2]


def test_empty_file(tmp_path):
    path = tmp_path / "empty.warc.wet.gz"
    path.write_bytes(b"")
    got, report = read(path)
    assert got == [] and report.read == 0
    assert report.file_failures["empty_file"] == 1
    assert failures(report, "empty_file") == [
        {"file": str(path), "offset": 0, "reason": "empty_file", "message": "file is empty: no WARC records"}
    ]


def test_fifty_megabyte_single_line_record(tmp_path):
    docs = make_docs(3)
    docs.insert(1, {"url": "https://example.org/huge", "title": "huge", "raw_content": "x" * 50_000_000})
    parts = members(docs)
    path = tmp_path / "huge.warc.wet.gz"
    path.write_bytes(b"".join(parts))
    got, report = read(path)  # default max_doc_bytes (8 MiB): skipped without being held in memory
    assert [d["url"] for d in got] == [docs[i]["url"] for i in (0, 2, 3)]
    assert report.dropped["too_large"] == 1 and report.read == 4
    (f,) = failures(report, "too_large")
    assert f["offset"] == offsets(parts)[2] and "50000006 bytes" in f["message"]
    got, report = read(path, max_doc_bytes=64 << 20)  # allowed: one line of 50 MB
    huge = got[1]
    assert huge["nlines"] == 1 and huge["length"] == 50_000_000 and report.kept == 4


def test_404_for_a_listed_path_and_faults_over_http(tmp_path):
    """A shard over HTTP: one listed file missing, one corrupt, 503s and a cut body; the rest is read."""
    rels = [segment_relpath("2023-06", i) for i in range(4)]
    files = {
        rels[0]: make_docs(30, "a"),
        rels[1]: None,
        rels[2]: make_docs(30, "c"),
        rels[3]: make_docs(30, "d"),
    }
    build_mirror(tmp_path, "2023-06", files)
    corrupt = tmp_path / rels[3]
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4] = b"\x00\x00\x00\x00"
    corrupt.write_bytes(bytes(data))
    report = ReadReport()
    with HTTPMirror(tmp_path) as m:
        m.inject(rels[0], "503", times=2)
        m.inject(rels[2], "truncate", at=0.5)
        kept = []
        for rel in rels:
            kept += iter_wet_documents(m.url(rel), min_len=MIN_LEN, report=report, retry=FAST, cc_segment=rel)
        not_found_requests = [r for r in m.requests if r["path"].endswith(rels[1])]
    assert report.file_failures["file_not_found"] == 1 and len(not_found_requests) == 1
    (nf,) = failures(report, "file_not_found")
    assert nf["file"].endswith(rels[1])
    assert report.retries == 3
    assert report.read == 90 and report.is_balanced()
    assert len(kept) == 89 and report.dropped["corrupt_gzip"] == 1
    assert {d["cc_segment"] for d in kept} == {rels[0], rels[2], rels[3]}
    for f in report.failures:
        assert f["file"] and f["offset"] is not None and f["message"]
    summary = report.to_dict()
    assert summary["read"] == summary["kept"] + summary["dropped_total"]


@pytest.mark.parametrize("compressed", [True, False])
def test_random_damage_never_crashes_and_keeps_the_books_balanced(tmp_path, compressed):
    """Seeded damage (flipped bytes, cuts, insertions, deletions) anywhere in a 40-record file."""
    import random

    rng = random.Random(1234 + compressed)
    source = b"".join(members(make_docs(40)))
    if not compressed:
        source = gzip.decompress(source)
    for trial in range(60):
        data = bytearray(source)
        kind = ("flip", "cut", "insert", "delete")[trial % 4]
        pos = rng.randrange(len(data))
        damaged = 1  # records a change can cost: one per flipped byte, two for a deletion across a boundary
        if kind == "flip":
            damaged = rng.randint(1, 8)
            for _ in range(damaged):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == "cut":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = rng.randbytes(rng.randint(1, 50))
        else:
            del data[pos : pos + rng.randint(1, 200)]
            damaged = 2
        path = tmp_path / f"damaged{trial}.warc.wet{'.gz' if compressed else ''}"
        path.write_bytes(bytes(data))
        got, report = read(path)  # asserts read == kept + dropped
        assert len(got) == report.kept
        if kind != "cut":  # damage costs the records it touches, never the rest of the file
            assert report.kept >= 40 - damaged, (kind, report.to_dict())


def test_reports_merge_and_serialise_without_losing_counts(tmp_path):
    parts = members(make_docs(5))
    parts[2] = b"XX" + parts[2][2:]
    (tmp_path / "a.warc.wet.gz").write_bytes(b"".join(parts))
    (tmp_path / "b.warc.wet.gz").write_bytes(b"")
    _, a = read(tmp_path / "a.warc.wet.gz", min_len=10_000)
    _, b = read(tmp_path / "b.warc.wet.gz")
    merged = ReadReport.merged([a, b])
    assert merged.read == a.read + b.read == 5 and merged.is_balanced()
    assert merged.dropped == a.dropped + b.dropped
    assert merged.file_failures["empty_file"] == 1
    assert len(merged.failures) == len(a.failures) + len(b.failures)
    d = merged.to_dict()
    assert d["read"] == d["kept"] + d["dropped_total"]
    assert ReadReport.from_dict(d).to_dict() == d
