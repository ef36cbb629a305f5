"""WARC input mode: real CommonCrawl WARC samples, HTML extraction with resiliparse, accounting."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import shared_path
from warcio.archiveiterator import ArchiveIterator

from pipeline.sample.mirror import gzip_member, warc_record_bytes
from pipeline.sources.read_report import ReadReport
from pipeline.sources.warc import iter_warc_documents, parse_http_response
from pipeline.sources.warc_records import block_digest, wet_block
from pipeline.sources.wet import ccnet_lines, iter_wet_documents

MIN_LEN = 300  # CCNet's min_len, as test input (the readers have no default)

WARC_2020 = "resiliparse_CC-MAIN-2020-34_warcfile.warc.gz"
WARC_2014 = "CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc"


def warc(name: str) -> str:
    return str(shared_path("realdata", "warc", name))


def record_types_and_responses(path: str) -> tuple[Counter, list[tuple[str, int, str]]]:
    """Independent parse with warcio: record types, and (url, status, content type) of responses."""
    types, responses = Counter(), []
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh):
            types[rec.rec_type] += 1
            if rec.rec_type == "response":
                responses.append(
                    (
                        rec.rec_headers.get_header("WARC-Target-URI"),
                        int(rec.http_headers.get_statuscode()),
                        rec.http_headers.get_header("Content-Type") or "",
                    )
                )
    return types, responses


def test_real_warc_2020_every_html_response_becomes_a_document():
    report = ReadReport()
    docs = list(iter_warc_documents(warc(WARC_2020), min_len=0, report=report))
    types, responses = record_types_and_responses(warc(WARC_2020))
    html = [url for url, status, ct in responses if status == 200 and ct.split(";")[0].strip() == "text/html"]
    assert len(responses) == 16 and len(html) == 16
    assert [d["url"] for d in docs] == html
    assert report.read == 16 and report.kept == 16 and report.is_balanced()
    assert report.other_records == Counter({k: v for k, v in types.items() if k != "response"})
    langs_seen = {d["source_domain"].rsplit(".", 1)[-1] for d in docs}
    assert {"cn", "ru", "nl"} <= langs_seen


def test_warc_document_fields_and_digest_of_extracted_text():
    docs = list(iter_warc_documents(warc(WARC_2020), min_len=0))
    ru = next(d for d in docs if d["url"] == "http://01spb.ru/company/")
    assert ru["title"] == "О компании - Стратегия пожарной безопасности"  # windows-1251 page decoded
    assert "Стратегия пожарной безопасности" in ru["raw_content"]
    for d in docs:
        block = wet_block(d["title"], d["raw_content"])
        # digest = sha1 (base32) of the WET-like block of the extracted text, not of the HTML
        assert d["digest"] == block_digest(block)
        assert d["original_length"] == len(block)
        assert d["nlines"] == d["original_nlines"] == len(d["raw_content"].split("\n"))


def test_real_2014_warc_uncompressed_with_a_non_html_response():
    report = ReadReport()
    docs = list(iter_warc_documents(warc(WARC_2014), min_len=0, report=report))
    _, responses = record_types_and_responses(warc(WARC_2014))
    assert len(responses) == 4
    assert [d["url"] for d in docs] == [u for u, s, ct in responses if ct.startswith("text/html")]
    assert report.dropped == Counter({"not_html": 1}) and report.read == 4 and report.is_balanced()


def test_min_len_has_no_default_in_the_reader():
    with pytest.raises(TypeError, match="min_len"):
        iter_warc_documents(warc(WARC_2020))


def test_same_page_from_warc_and_from_wet():
    """CommonCrawl's own WET extraction and ours of the same page agree on url, date and title, and
    share most words (resiliparse adds list bullets and splits blocks differently)."""
    (from_wet,) = iter_wet_documents(str(shared_path("realdata", "wet", "whirlwind.warc.wet.gz")), min_len=MIN_LEN)
    (from_warc,) = iter_warc_documents(warc("whirlwind.warc.gz"), min_len=MIN_LEN)
    assert from_warc["url"] == from_wet["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert from_warc["title"] == from_wet["title"]
    assert from_warc["date_download"] == from_wet["date_download"]
    wet_words, warc_words = set(from_wet["raw_content"].split()), set(from_warc["raw_content"].split())
    assert len(wet_words & warc_words) / len(wet_words | warc_words) > 0.8
    assert from_warc["digest"] != from_wet["digest"]  # different extractions, documented


def test_main_content_option_keeps_less_boilerplate():
    full = {d["url"]: d for d in iter_warc_documents(warc(WARC_2020), min_len=0)}
    main = {d["url"]: d for d in iter_warc_documents(warc(WARC_2020), min_len=0, main_content=True)}
    assert set(main) <= set(full)
    assert sum(d["length"] for d in main.values()) < sum(d["length"] for d in full.values())


def _response(url: str, status: int, content_type: str, body: bytes) -> bytes:
    http = (f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n\r\n").encode() + body
    headers = [
        ("WARC-Type", "response"),
        ("WARC-Target-URI", url),
        ("WARC-Date", "2023-01-26T21:08:44Z"),
        ("WARC-Record-ID", f"<urn:uuid:{url}>"),
        ("Content-Type", "application/http; msgtype=response"),
        ("Content-Length", str(len(http))),
    ]
    return gzip_member(warc_record_bytes(headers, http))


def test_status_and_type_filters_are_counted(tmp_path):
    page = (
        b"<html><head><title>T</title></head><body><p>"
        + b"Real paragraph text. " * 30
        + b"</p></body></html>"
    )
    data = b"".join(
        [
            _response("https://a.org/ok", 200, "text/html; charset=utf-8", page),
            _response("https://a.org/moved", 301, "text/html", b""),
            _response("https://a.org/img", 200, "image/png", b"\x89PNG"),
            _response("https://a.org/short", 200, "text/html", b"<title>S</title><p>tiny</p>"),
        ]
    )
    path = tmp_path / "x.warc.gz"
    path.write_bytes(data)
    report = ReadReport()
    docs = list(iter_warc_documents(str(path), min_len=MIN_LEN, report=report))
    assert [d["url"] for d in docs] == ["https://a.org/ok"]
    assert docs[0]["title"] == "T" and ccnet_lines(docs[0]["raw_content"])[0].startswith("Real paragraph")
    assert report.dropped == Counter({"http_status": 1, "not_html": 1, "too_short": 1})
    assert report.read == 4 and report.is_balanced()


def test_parse_http_response():
    status, headers, payload = parse_http_response(
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n\r\nbody"
    )
    assert (status, headers["content-type"], payload) == (404, "text/html", b"body")
    assert parse_http_response(b"garbage") is None
