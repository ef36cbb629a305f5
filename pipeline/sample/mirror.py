"""Write a CommonCrawl-layout mirror: real gzip WET files and ``wet.paths.gz`` listings.

The embedded sample, the integration tests and the bad-input tests all need CommonCrawl input that
is byte-for-byte shaped like the real thing, so this module writes it the way CommonCrawl's
ia-web-commons does (compare ``realdata/wet/whirlwind.warc.wet.gz``):

- one gzip member per WARC record (so a reader can resynchronise after a corrupt member);
- a ``warcinfo`` record first, then one ``conversion`` record per document with ``WARC-Target-URI``,
  ``WARC-Date``, ``WARC-Record-ID``, ``WARC-Refers-To``, ``WARC-Block-Digest`` (``sha1:`` + base32),
  optionally ``WARC-Identified-Content-Language`` (CC adds it since 2018), ``Content-Type: text/plain``
  and ``Content-Length``; CRLF header lines; records separated by ``\\r\\n\\r\\n``;
- the block is the page title on the first line, then the text, then a final newline.

Output is deterministic (record ids are uuid5 of the url and position, gzip mtime is 0) so a mirror
built twice has the same bytes.

Test hooks (used to build bad input): a document may carry ``_block`` (bytes written as the block
as is, e.g. invalid UTF-8) and ``_headers`` (a dict of header overrides; a value of ``None`` removes
that header).
"""

from __future__ import annotations

import gzip
import io
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.sources.warc_records import block_digest, wet_block

DEFAULT_DATE = "2023-01-26T21:08:44Z"
_NS = uuid.UUID("6f1c4f55-2b2e-4a53-9c63-7c1b3f5e9a10")  # fixed namespace: deterministic record ids



def warc_record_bytes(headers: Sequence[tuple[str, str]], block: bytes) -> bytes:
    """Serialise one WARC/1.0 record: status line, CRLF headers, blank line, block, CRLF CRLF."""
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("utf-8") + block + b"\r\n\r\n"


def gzip_member(data: bytes) -> bytes:
    """One gzip member with mtime 0 (deterministic bytes)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def _record_id(*parts: object) -> str:
    return f"<urn:uuid:{uuid.uuid5(_NS, '|'.join(str(p) for p in parts))}>"


def _apply_overrides(
    headers: list[tuple[str, str]], overrides: Mapping[str, str | None]
) -> list[tuple[str, str]]:
    out = [(k, overrides[k]) if k in overrides else (k, v) for k, v in headers]
    known = {k for k, _ in headers}
    out += [(k, v) for k, v in overrides.items() if k not in known]
    return [(k, v) for k, v in out if v is not None]


def warcinfo_record(filename: str, snapshot: str, date: str = DEFAULT_DATE) -> bytes:
    fields = (
        "Software-Info: rpv2.cc_mirror\r\n"
        f"isPartOf: {snapshot}\r\n"
        "operator: rpv2 test mirror\r\n"
        "description: CommonCrawl-layout mirror written by rpv2\r\n"
        "publisher: rpv2\r\n\r\n"
    ).encode()
    headers = [
        ("WARC-Type", "warcinfo"),
        ("WARC-Date", date),
        ("WARC-Filename", filename),
        ("WARC-Record-ID", _record_id("warcinfo", filename)),
        ("Content-Type", "application/warc-fields"),
        ("Content-Length", str(len(fields))),
        ("WARC-Block-Digest", block_digest(fields)),
    ]
    return warc_record_bytes(headers, fields)


def conversion_record(doc: Mapping[str, Any], position: int, filename: str) -> bytes:
    """The ``conversion`` record for one document dict (url, raw_content, optional title/date/language)."""
    url = doc["url"]
    if "_block" in doc:
        block = doc["_block"]
    else:
        text = doc.get("raw_content", doc.get("text", ""))
        block = wet_block(doc.get("title", ""), text)
    headers = [
        ("WARC-Type", "conversion"),
        ("WARC-Target-URI", url),
        ("WARC-Date", doc.get("date_download", DEFAULT_DATE)),
        ("WARC-Record-ID", _record_id("conversion", filename, position, url)),
        ("WARC-Refers-To", _record_id("response", filename, position, url)),
        ("WARC-Block-Digest", block_digest(block)),
    ]
    if doc.get("language"):
        headers.append(("WARC-Identified-Content-Language", doc["language"]))
    headers += [("Content-Type", "text/plain"), ("Content-Length", str(len(block)))]
    headers = _apply_overrides(headers, doc.get("_headers", {}))
    return warc_record_bytes(headers, block)


def wet_file_bytes(
    docs: Iterable[Mapping[str, Any]],
    *,
    filename: str = "sample.warc.wet.gz",
    snapshot: str = "CC-MAIN-2023-06",
    compress: bool = True,
) -> bytes:
    """The bytes of a WET file: warcinfo + one conversion record per doc (one gzip member each)."""
    records = [warcinfo_record(filename, snapshot)]
    records += [conversion_record(doc, i, filename) for i, doc in enumerate(docs)]
    if compress:
        return b"".join(gzip_member(r) for r in records)
    return b"".join(records)


def write_wet_file(
    path: str | Path,
    docs: Iterable[Mapping[str, Any]],
    *,
    snapshot: str = "CC-MAIN-2023-06",
    compress: bool | None = None,
) -> Path:
    """Write a WET file at ``path`` (gzip unless ``compress=False`` or the name does not end in .gz)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress is None:
        compress = path.name.endswith(".gz")
    path.write_bytes(wet_file_bytes(docs, filename=path.name, snapshot=snapshot, compress=compress))
    return path


def snapshot_dir(snapshot: str) -> str:
    from pipeline.dataset.ids import normalize_snapshot

    return f"crawl-data/{normalize_snapshot(snapshot)}"


def segment_relpath(snapshot: str, index: int, kind: str = "wet") -> str:
    """A CommonCrawl-style relative path for the index-th file of a snapshot, e.g.
    ``crawl-data/CC-MAIN-2023-06/segments/1674764494826.00/wet/``
    ``CC-MAIN-20230126210844-20230127000844-00000.warc.wet.gz``."""
    suffix = {"wet": ".warc.wet.gz", "warc": ".warc.gz"}[kind]
    return (
        f"{snapshot_dir(snapshot)}/segments/1674764494826.{index // 100:02d}/{kind}/"
        f"CC-MAIN-20230126210844-20230127000844-{index:05d}{suffix}"
    )


def write_listing(root: str | Path, snapshot: str, relpaths: Sequence[str], kind: str = "wet") -> Path:
    """Write ``crawl-data/CC-MAIN-<id>/<kind>.paths.gz`` under ``root`` (one relative path a line)."""
    path = Path(root) / snapshot_dir(snapshot) / f"{kind}.paths.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip_member("".join(p + "\n" for p in relpaths).encode("utf-8")))
    return path


def build_mirror(
    root: str | Path, snapshot: str, files: Mapping[str, Sequence[Mapping[str, Any]]], kind: str = "wet"
) -> list[str]:
    """Write every WET file of ``files`` (relative path -> documents) under ``root`` and the listing.

    The listing keeps the order of ``files``. Returns the relative paths. A relative path whose
    value is ``None`` is listed but not written (a 404 for a listed path).
    """
    from pipeline.dataset.ids import normalize_snapshot

    snapshot = normalize_snapshot(snapshot)
    root = Path(root)
    relpaths = list(files)
    for rel in relpaths:
        docs = files[rel]
        if docs is None:
            continue
        write_wet_file(root / rel, docs, snapshot=snapshot)
    write_listing(root, snapshot, relpaths, kind=kind)
    return relpaths
