"""WARC input mode: HTML responses extracted to text with resiliparse, as CCNet-format documents.

CommonCrawl's WET files are one fixed HTML-to-text extraction. Reading the WARC files instead lets
users choose their own: here resiliparse (chatnoir-eu/chatnoir-resiliparse, maintained, ~100x faster
than trafilatura) with ``extract_plain_text(main_content=...)``. Only ``response`` records with HTTP
status 200 and an HTML content type become documents; every other response is counted as dropped
(``http_status``, ``not_html``), and request / metadata / warcinfo records as other records.

The document has the same fields as the WET reader's, built as if CommonCrawl had written a WET
record for the page: the block is ``<title>\\n<extracted text>\\n`` (title from ``<title>``,
whitespace collapsed), then split, stripped, title removed and length-filtered exactly like a WET
block (:func:`pipeline.sources.wet.wet_record_to_document`'s rules). Hence:

- ``digest`` is ``sha1:`` + base32 of the UTF-8 block ``title\nraw_content\n`` (the WET record
  :mod:`pipeline.sample.mirror` would write for the document), i.e. of the extracted text, NOT the WARC's
  ``WARC-Payload-Digest`` (which hashes the HTML); the same page read from WET and from WARC has
  different digests unless the extractions agree byte for byte.
- ``original_length`` is the byte length of that block.

Charset: the HTTP ``Content-Type`` charset when the payload decodes with it, else resiliparse's
``detect_encoding`` (HTML5 meta sniffing + statistical detection) with replacement of bad bytes.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from typing import Any

from pipeline.sources.read_report import ReadReport
from pipeline.sources.warc_records import (
    DEFAULT_MAX_DOC_BYTES,
    WarcRecord,
    block_digest,
    iter_file_records,
    wet_block,
)
from pipeline.sources.wet import cc_segment_of, make_document, title_and_body

logger = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")


def parse_http_response(block: bytes) -> tuple[int, dict[str, str], bytes] | None:
    """``(status, headers (lower-case names), payload)`` of an HTTP response block, None if unparsable."""
    sep = block.find(b"\r\n\r\n")
    sep_len = 4
    if sep < 0:
        sep = block.find(b"\n\n")
        sep_len = 2
    if sep < 0:
        return None
    head = block[:sep].decode("iso-8859-1").splitlines()
    if not head or not head[0].startswith("HTTP/"):
        return None
    parts = head[0].split(None, 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    headers: dict[str, str] = {}
    for line in head[1:]:
        k, s, v = line.partition(":")
        if s:
            headers[k.strip().lower()] = v.strip()
    return int(parts[1]), headers, block[sep + sep_len :]


def _charset(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        k, _, v = param.partition("=")
        if k.strip().lower() == "charset" and v.strip():
            return v.strip().strip("'\"")
    return None


def decode_html(payload: bytes, content_type: str) -> str:
    """HTML bytes -> str: the declared charset if it decodes cleanly, else resiliparse's detection."""
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    declared = _charset(content_type)
    if declared:
        try:
            return payload.decode(declared)
        except (LookupError, UnicodeDecodeError):
            pass
    return bytes_to_str(payload, detect_encoding(payload))


def _content_decoded(payload: bytes, headers: dict[str, str]) -> bytes:
    """Undo a Content-Encoding CommonCrawl left in place (it normally stores decoded payloads)."""
    enc = headers.get("content-encoding", "").lower()
    if enc in ("gzip", "x-gzip", "deflate") and payload[:1] in (b"\x1f", b"\x78"):
        try:
            return zlib.decompress(payload, 47)
        except zlib.error:
            return payload
    return payload


def html_to_block(html: str, *, main_content: bool = False) -> bytes:
    """The WET-like block of a page: collapsed ``<title>``, newline, extracted text, newline."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    tree = HTMLTree.parse(html)
    title = " ".join((tree.title or "").split())
    text = extract_plain_text(tree, main_content=main_content)
    return wet_block(title, text)


def warc_record_to_document(
    rec: WarcRecord,
    *,
    file: str,
    cc_segment: str,
    report: ReadReport,
    min_len: int,
    main_content: bool = False,
) -> dict[str, Any] | None:
    """One ``response`` record -> a kept document, or None after counting why it was dropped."""
    url, date = rec.headers.get("WARC-Target-URI", ""), rec.headers.get("WARC-Date", "")
    if not url or not date:
        report.count_dropped(
            "missing_headers", file, rec.offset, "response without WARC-Target-URI/WARC-Date", log=True
        )
        return None
    parsed = parse_http_response(rec.block)
    if parsed is None:
        report.count_dropped(
            "missing_headers", file, rec.offset, f"{url}: no HTTP status line/headers", log=True
        )
        return None
    status, headers, payload = parsed
    if status != 200:
        report.count_dropped("http_status", file, rec.offset)
        return None
    content_type = headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() not in HTML_TYPES:
        report.count_dropped("not_html", file, rec.offset)
        return None
    try:
        html = decode_html(_content_decoded(payload, headers), content_type)
        block = html_to_block(html, main_content=main_content)
    except Exception as exc:  # noqa: BLE001 - one bad page must not stop the file
        report.count_dropped(
            "extract_failed", file, rec.offset, f"{url}: {type(exc).__name__}: {exc}", log=True
        )
        return None
    split = title_and_body(block.decode("utf-8"), min_len)
    if split is None:
        report.count_dropped("too_short", file, rec.offset)
        return None
    title, body = split
    # Hash the block in its WET form (stripped lines), so that it is exactly the block cc_mirror would
    # write for this document and re-extracting the same page gives the same digest.
    wet_form = wet_block(title, "\n".join(body))
    doc = make_document(
        url=url,
        date_download=date,
        digest=block_digest(wet_form),
        title=title,
        body_lines=body,
        cc_segment=cc_segment,
        original_length=len(wet_form),
    )
    report.count_kept()
    return doc


def iter_warc_documents(
    url: str,
    *,
    min_len: int,
    report: ReadReport | None = None,
    retry=None,
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
    cc_segment: str | None = None,
    main_content: bool = False,
) -> Iterator[dict[str, Any]]:
    """Stream CCNet documents extracted from the HTML responses of one WARC file.

    Same contract as :func:`pipeline.sources.wet.iter_wet_documents`: every response record ends as
    kept or dropped in ``report``; a file that cannot be read is recorded and the generator ends.
    ``min_len`` is required, as there.
    """
    report = report if report is not None else ReadReport()
    segment = cc_segment if cc_segment is not None else cc_segment_of(url)
    for rec in iter_file_records(
        url, report=report, retry=retry, doc_types=frozenset({"response"}), max_block_bytes=max_doc_bytes
    ):
        doc = warc_record_to_document(
            rec, file=url, cc_segment=segment, report=report, min_len=min_len, main_content=main_content
        )
        if doc is not None:
            yield doc
