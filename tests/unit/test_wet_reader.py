"""WET parsing into CCNet documents: real CommonCrawl samples, CCNet field semantics, the mirror writer."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from collections import defaultdict

import pytest
from conftest import shared_path
from warcio.archiveiterator import ArchiveIterator

from pipeline.sample.mirror import build_mirror, wet_file_bytes, write_wet_file
from pipeline.sources.read_report import ReadReport
from pipeline.sources.warc_records import block_digest, wet_block
from pipeline.sources.wet import ccnet_lines, iter_wet_documents

MIN_LEN = 300  # CCNet's min_len, as test input (the readers have no default)
CCNET_FIELDS = {
    "url",
    "date_download",
    "digest",
    "source_domain",
    "title",
    "raw_content",
    "cc_segment",
    "original_length",
    "original_nlines",
    "length",
    "nlines",
}
WET_2024 = "whirlwind.warc.wet.gz"
WET_2014 = "CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc.wet"


def wet(name: str) -> str:
    return str(shared_path("realdata", "wet", name))


def conversion_blocks(path: str) -> list[tuple[dict, bytes]]:
    """Independent parse with warcio: (headers, block) of every conversion record."""
    out = []
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type == "conversion":
                out.append((dict(rec.rec_headers.headers), rec.content_stream().read()))
    return out


def sha1_b32(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


@pytest.mark.parametrize("name, n_docs", [(WET_2024, 1), (WET_2014, 3)])
def test_real_wet_record_counts_urls_and_digests(name, n_docs):
    report = ReadReport()
    docs = list(iter_wet_documents(wet(name), min_len=MIN_LEN, report=report))
    blocks = conversion_blocks(wet(name))
    assert len(docs) == len(blocks) == n_docs
    assert report.to_dict() | {"failures": []} == report.to_dict()  # no problem listed
    assert (report.read, report.kept, report.other_records["warcinfo"]) == (n_docs, n_docs, 1)
    for doc, (headers, block) in zip(docs, blocks, strict=True):
        assert set(doc) == CCNET_FIELDS
        assert doc["url"] == headers["WARC-Target-URI"]
        assert doc["date_download"] == headers["WARC-Date"]
        # the digest is CommonCrawl's, and it is the sha1 (base32) of the block we parsed
        assert doc["digest"] == headers["WARC-Block-Digest"] == sha1_b32(block)
        assert doc["original_length"] == int(headers["Content-Length"]) == len(block)
        lines = [x.strip() for x in block.decode("utf-8").split("\n")[:-1]]
        assert doc["title"] == lines[0]
        assert doc["raw_content"] == "\n".join(lines[1:])
        assert doc["original_nlines"] == doc["nlines"] == len(lines) - 1
        assert doc["length"] == len(doc["raw_content"])


def test_real_2024_wet_fields():
    (doc,) = iter_wet_documents(wet(WET_2024), min_len=MIN_LEN, include_language_hint=True)
    assert doc["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert doc["source_domain"] == "an.wikipedia.org"
    assert doc["title"] == "Escopete - Biquipedia, a enciclopedia libre"
    assert not doc["raw_content"].startswith(doc["title"])
    assert doc["digest"] == "sha1:RDTSR52RUHWDA7QK4BK7OUHU3EXTXYUL"
    assert doc["cc_languages"] == "spa"
    assert doc["cc_segment"] == WET_2024  # outside a crawl-data/ layout: the file name


def test_real_2014_wet_without_language_header():
    docs = list(iter_wet_documents(wet(WET_2014), min_len=MIN_LEN, include_language_hint=True))
    assert [d["url"] for d in docs] == [
        "http://0pointer.de/photos/?gallery=Australia&photo=496",
        "http://0pointer.de/photos/?gallery=Thailand%202011-01&photo=726&show_thumbs=yes&exif_style=",
        "http://0x20.be/Special:WhatLinksHere/Thread:Talk:Gentse_feesten/foo",
    ]
    assert [d["digest"] for d in docs] == [
        "sha1:IXDB7TEXWWXPAQYRUF4QT3LWM26O2VI2",
        "sha1:4IDACYQUFGTORIWTBWGQX2AKV5NVPNCY",
        "sha1:4EFUOG7D2OHS24DLCNUOKROUBD47SD2Q",
    ]
    assert all(d["cc_languages"] is None for d in docs)
    assert [d["title"] for d in docs[:2]] == ["Photos", "Photos"]


def test_ccnet_sample_with_inconsistent_lengths_is_recovered_and_counted():
    """cc_net's own test input has hand-edited Content-Lengths; cc_net's line parser ignores them."""
    report = ReadReport()
    docs = list(iter_wet_documents(wet("ccnet_sample.warc.wet"), min_len=0, report=report))
    assert [d["url"] for d in docs] == [
        "http://sample_english.com",
        "http://sample_chinese.zh",
        "http://sample_russian.ru",
    ]
    assert docs[0]["title"] == "Famous Mark Twain Quotes"
    assert docs[0]["raw_content"].split("\n")[0].startswith("Don't part with your illusions.")
    assert docs[0]["raw_content"].endswith("Fiction is obliged to stick to possibilities. Truth isn't.")
    assert docs[2]["title"] == "Цитаты знаменитого Марка Твена"
    assert report.repaired["content_length_mismatch"] == 3
    assert report.is_balanced() and report.kept == 3


def test_min_len_has_no_default_in_the_reader():
    # the run config (configs/default.yaml) is the one home of the default; a reader call must pass it
    with pytest.raises(TypeError, match="min_len"):
        iter_wet_documents(wet(WET_2024))


def test_min_len_drops_short_documents_and_counts_them():
    report = ReadReport()
    docs = list(iter_wet_documents(wet(WET_2014), min_len=1000, report=report))
    assert [d["original_length"] for d in docs] == [1283]
    assert report.dropped["too_short"] == 2
    assert report.read == 3 and report.is_balanced()


def test_ccnet_line_semantics():
    # lines stripped, empty lines kept, \r\n and lone \r are line breaks, final newline adds no line
    assert ccnet_lines("Title \r\n  a \n\n\tb\rc\n") == ["Title", "a", "", "b", "c"]
    assert ccnet_lines("x") == ["x"]
    assert ccnet_lines("") == []


def test_fields_match_real_ccnet_rpv1_output(tmp_path):
    """Serve real RPv1 documents as WET under their own cc_segment paths, read them back, and compare the
    fields the reader is responsible for with what CCNet recorded."""
    rows = []
    for name in ("cc_en_head-0091.jsonl", "cc_en_head-0174.jsonl"):
        path = shared_path("realdata", "groundtruth", "ccnet_rpv1", name)
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    files = defaultdict(list)
    for r in rows:
        m = r["metadata"]
        files[m["cc_segment"]].append(
            {
                "url": m["url"],
                "title": m["title"],
                "date_download": m["date_download"],
                "raw_content": r["text"],
            }
        )
    build_mirror(tmp_path, "2020-16", dict(files))
    expected = {r["metadata"]["url"]: r for r in rows}
    report = ReadReport()
    seen = 0
    for rel in files:
        for doc in iter_wet_documents(str(tmp_path / rel), min_len=0, report=report, cc_segment=rel):
            meta = expected[doc["url"]]["metadata"]
            for key in ("url", "source_domain", "title", "date_download", "cc_segment"):
                assert doc[key] == meta[key], key
            # RPv1's text is post-processed CCNet output (lines need not be stripped); CCNet strips each line
            assert doc["raw_content"].split("\n") == [
                x.strip() for x in expected[doc["url"]]["text"].split("\n")
            ]
            assert re.fullmatch(r"sha1:[A-Z2-7]{32}", doc["digest"]) and re.fullmatch(
                r"sha1:[A-Z2-7]{32}", meta["digest"]
            )
            for key in ("original_length", "original_nlines", "length", "nlines"):
                assert type(doc[key]) is type(meta[key]) is int
            assert set(doc) - {"raw_content"} <= set(meta)
            seen += 1
    assert seen == len(rows) == 20
    assert report.is_balanced()
    assert any(":" in r["metadata"]["source_domain"] for r in rows)  # netloc keeps the port, as CCNet


def test_mirror_round_trip_and_digest(tmp_path):
    docs = [
        {
            "url": f"https://example.org/{i}",
            "title": f"Title {i}",
            "raw_content": f"line one {i}\n\nline three",
            "language": "eng",
        }
        for i in range(5)
    ]
    path = write_wet_file(tmp_path / "a.warc.wet.gz", docs)
    got = list(iter_wet_documents(str(path), min_len=0))
    assert [(d["url"], d["title"], d["raw_content"]) for d in got] == [
        (d["url"], d["title"], d["raw_content"]) for d in docs
    ]
    assert [d["digest"] for d in got] == [block_digest(wet_block(d["title"], d["raw_content"])) for d in docs]
    assert got[0]["original_nlines"] == 3 and got[0]["original_length"] == len(
        wet_block("Title 0", docs[0]["raw_content"])
    )


def test_mirror_writer_is_deterministic_and_cc_shaped(tmp_path):
    docs = [{"url": "https://example.org/a", "title": "A", "raw_content": "text " * 100}]
    assert wet_file_bytes(docs) == wet_file_bytes(docs)
    path = write_wet_file(tmp_path / "x.warc.wet.gz", docs)
    raw = path.read_bytes()
    assert raw.count(b"\x1f\x8b\x08") >= 2  # one gzip member per record
    with open(path, "rb") as fh:
        recs = list(ArchiveIterator(fh))
    assert [r.rec_type for r in recs] == ["warcinfo", "conversion"]
    text = gzip.decompress(raw)
    assert b"WARC-Refers-To: <urn:uuid:" in text and b"Content-Type: text/plain\r\n" in text
