"""The WARC record parser shared by the WET and WARC readers, and CommonCrawl's block digest.

:func:`iter_warc_records` splits a (gzip or plain) WARC/WET byte stream into records. It is our own
small parser over ``zlib`` rather than warcio or fastwarc, although benchmarks/bench_read.py measures
fastwarc faster (about 2x in CPU time per record): neither library keeps the accounting exact on bad
input. fastwarc 2 raises on a corrupt gzip member and cannot go on, and silently drops a truncated last
record; warcio raises on the first bad member. This parser resynchronises on the next gzip member after
a corrupt one (CommonCrawl writes one member per record), skips oversized blocks without holding them
in memory, recovers from a wrong Content-Length (checked against WARC-Block-Digest), and reports the
file offset of every problem.
"""


from __future__ import annotations

import base64
import bisect
import hashlib
import logging
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from pipeline.sources.read_report import ReadReport

if TYPE_CHECKING:
    from pipeline.io.remote import RetryPolicy

logger = logging.getLogger(__name__)


def block_digest(block: bytes) -> str:
    """``sha1:`` + base32 of the block, the form of CommonCrawl's ``WARC-Block-Digest``."""
    return "sha1:" + base64.b32encode(hashlib.sha1(block).digest()).decode("ascii")


def wet_block(title: str, raw_content: str) -> bytes:
    """The WET block CommonCrawl writes: title line, text, final newline (UTF-8)."""
    return (title + "\n" + raw_content + "\n").encode("utf-8")

# CommonCrawl truncates fetched payloads at 1 MiB, so a WET block far above that is not a web page.
DEFAULT_MAX_DOC_BYTES = 8 << 20
MAX_HEADER_LINE = 64 << 10
MAX_HEADERS = 512
_CHUNK = 1 << 18
_GZIP_MAGIC = b"\x1f\x8b\x08"
_WARC_LINE = re.compile(rb"(?:^|\n)WARC/1\.[01](?:\r?\n|\Z)")


class CorruptGzip(Exception):
    """A gzip member that does not decompress (``truncated`` when the file ends inside it)."""

    def __init__(self, offset: int, message: str, truncated: bool = False):
        super().__init__(message)
        self.offset = offset
        self.truncated = truncated


class _ByteSource:
    """Decompressed bytes of a plain or multi-member gzip stream, with member offsets and resync."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._raw_eof = False
        self._cbuf = b""  # compressed bytes not yet fed to zlib
        self._coff = 0  # file offset of _cbuf[0]
        self._d = None  # zlib decompressor of the current member
        self._member_off = 0
        self._failed_feed: tuple[int, bytes] = (0, b"")
        self._bounds_pos: list[int] = []  # decompressed position where each member starts
        self._bounds_off: list[int] = []  # ... and its compressed file offset
        self.buf = b""
        self.pos = 0
        self.out_total = 0
        self.gz: bool | None = None  # decided by the first bytes
        self.pending_error: CorruptGzip | None = None

    # -- raw input --------------------------------------------------------------------------------
    def _raw_more(self) -> bool:
        if self._raw_eof:
            return False
        chunk = self._raw.read(_CHUNK)
        if not chunk:
            self._raw_eof = True
            return False
        self._cbuf += chunk
        return True

    def start(self) -> bool:
        """Detect gzip vs plain; False for an empty stream."""
        while len(self._cbuf) < 2 and self._raw_more():
            pass
        if not self._cbuf:
            return False
        self.gz = self._cbuf[:2] == b"\x1f\x8b"
        return True

    # -- decompression ----------------------------------------------------------------------------
    def _append(self, out: bytes) -> None:
        self.buf = self.buf[self.pos :] + out if self.pos < len(self.buf) else out
        self.pos = 0
        self.out_total += len(out)

    def _fill(self) -> bool:
        if not self.gz:
            if not self._cbuf and not self._raw_more():
                return False
            out, self._cbuf = self._cbuf, b""
            self._coff += len(out)
            self._append(out)
            return True
        while True:
            if self._d is None:
                while len(self._cbuf) < 3 and self._raw_more():
                    pass
                if not self._cbuf:
                    return False
                if not self._cbuf.startswith(_GZIP_MAGIC):
                    self._failed_feed = (self._coff, self._cbuf)
                    self._member_off = self._coff
                    raise CorruptGzip(self._coff, "data between gzip members is not a gzip header")
                self._d = zlib.decompressobj(31)
                self._member_off = self._coff
                self._bounds_pos.append(self.out_total)
                self._bounds_off.append(self._coff)
            if not self._cbuf and not self._raw_more():
                self._d = None
                self._failed_feed = (self._coff, b"")
                raise CorruptGzip(self._member_off, "file ends inside a gzip member", truncated=True)
            fed = self._cbuf
            try:
                out = self._d.decompress(fed, 1 << 20)
            except zlib.error as exc:
                self._d = None
                self._failed_feed = (self._coff, fed)
                raise CorruptGzip(self._member_off, f"gzip member does not decompress: {exc}") from None
            if self._d.eof:
                rest = self._d.unused_data
                self._d = None
            else:
                rest = self._d.unconsumed_tail
            self._coff += len(fed) - len(rest)
            self._cbuf = rest
            if out:
                self._append(out)
                return True

    def resync(self) -> int | None:
        """After :class:`CorruptGzip`: continue at the next gzip member that starts a WARC record.

        Returns the number of compressed bytes skipped, or None when the file has no further member.
        """
        self.buf, self.pos = b"", 0
        self._d = None
        feed_off, fed = self._failed_feed
        start = max(self._member_off + 1, feed_off)
        data = fed[
            start - feed_off :
        ]  # zlib failed somewhere in this feed: the next member is after its start
        data_off = start
        self._cbuf = b""
        while True:
            i = data.find(_GZIP_MAGIC)
            if i < 0:
                keep = data[-2:]
                data_off += len(data) - len(keep)
                data = keep
                self._cbuf = b""
                if not self._raw_more():
                    self._coff = data_off + len(data)
                    return None
                data, self._cbuf = data + self._cbuf, b""
                continue
            while len(data) - i < 4096 and self._raw_more():
                data, self._cbuf = data + self._cbuf, b""
            try:
                probe = zlib.decompressobj(31).decompress(data[i : i + 65536], 16)
            except zlib.error:
                probe = b""
            if probe.startswith(b"WARC/"):
                self._cbuf = data[i:]
                skipped = data_off + i - self._member_off
                self._coff = data_off + i
                return skipped
            data = data[i + 1 :]
            data_off += i + 1

    # -- reading ----------------------------------------------------------------------------------
    @property
    def consumed(self) -> int:
        return self.out_total - (len(self.buf) - self.pos)

    def offset_of(self, position: int) -> int:
        """File offset of the gzip member holding decompressed ``position`` (or the byte offset)."""
        if not self.gz:
            return position
        i = bisect.bisect_right(self._bounds_pos, position) - 1
        return self._bounds_off[i] if i >= 0 else 0

    def readline(self, limit: int = MAX_HEADER_LINE) -> bytes:
        while True:
            i = self.buf.find(b"\n", self.pos, self.pos + limit)
            if i >= 0:
                line = self.buf[self.pos : i + 1]
                self.pos = i + 1
                return line
            if len(self.buf) - self.pos >= limit or not self._fill():
                line = self.buf[self.pos : self.pos + limit]
                self.pos += len(line)
                return line

    def read(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n and self._fill():
            pass
        data = self.buf[self.pos : self.pos + n]
        self.pos += len(data)
        return data

    def skip(self, n: int) -> int:
        got = 0
        while got < n:
            avail = len(self.buf) - self.pos
            if avail == 0:
                if not self._fill():
                    break
                continue
            take = min(avail, n - got)
            self.pos += take
            got += take
        return got

    def unread(self, data: bytes) -> None:
        if data:
            self.buf = data + self.buf[self.pos :]
            self.pos = 0


@dataclass
class WarcRecord:
    """One complete record: ``offset`` is the file offset of its gzip member (or of its first byte)."""

    offset: int
    warc_type: str
    headers: dict[str, str]
    block: bytes
    content_length: int


def _parse_header_line(line: bytes) -> tuple[str, str] | None:
    key, sep, value = line.decode("utf-8", "replace").partition(":")
    if not sep or not key.strip():
        return None
    return key.strip(), value.strip()


def iter_warc_records(
    raw: BinaryIO,
    *,
    file: str,
    report: ReadReport,
    doc_types: frozenset[str],
    max_block_bytes: int = DEFAULT_MAX_DOC_BYTES,
) -> Iterator[WarcRecord]:
    """Yield the complete records whose WARC-Type is in ``doc_types``; count the rest in ``report``.

    Record-level problems of document records (truncated, corrupt gzip, too large, missing headers)
    are counted as ``read`` + ``dropped[reason]`` here with file and offset; non-document records
    (warcinfo, request, metadata...) go to ``report.other_records``. Every record yielded must be
    counted by the caller as kept or dropped, which keeps ``read = kept + dropped`` exact.
    """
    src = _ByteSource(raw)
    if not src.start():
        report.count_file_failure("empty_file", file, 0, "file is empty: no WARC records")
        return
    while True:
        try:
            rec = _next_record(src, file, report, doc_types, max_block_bytes)
        except CorruptGzip as exc:
            reason = "truncated_record" if exc.truncated else "corrupt_gzip"
            report.count_dropped(reason, file, exc.offset, f"record lost: {exc}", log=True)
            if exc.truncated:
                return
            skipped = src.resync()
            if skipped is None:
                report.add_failure(
                    file, exc.offset, "corrupt_gzip", "no valid gzip member after the corrupt one"
                )
                return
            report.file_failures["corrupt_gzip"] += 1
            report.add_failure(
                file,
                exc.offset,
                "corrupt_gzip",
                f"resumed at the next gzip member, {skipped} compressed bytes skipped",
            )
            continue
        if rec is None:
            return
        if rec is not _SKIP:
            yield rec


_SKIP = WarcRecord(-1, "", {}, b"", 0)


def _read_crlf_headers(src: _ByteSource, headers: dict[str, str], malformed: list[bytes]) -> bool:
    """Fast path: parse a CRLF header block already in the buffer in one go (most records).

    False (nothing consumed) when the block is not entirely buffered or is not plain CRLF; the
    caller then reads the headers line by line.
    """
    end = src.buf.find(b"\r\n\r\n", src.pos - 2, src.pos + MAX_HEADER_LINE)
    if end < 0:
        return False
    block = src.buf[src.pos : end] if end >= src.pos else b""
    if b"\n\n" in block:
        return False
    src.pos = end + 4
    for raw in block.decode("utf-8", "replace").split("\r\n") if block else ():
        key, sep, value = raw.partition(":")
        key = key.strip()
        if not sep or not key or len(headers) >= MAX_HEADERS:
            malformed.append(raw[:80].encode())
            continue
        headers[key] = value.strip()
    return True


def _next_record(
    src: _ByteSource, file: str, report: ReadReport, doc_types: frozenset[str], max_block_bytes: int
) -> WarcRecord | None:
    """Read one record; None at the end of the stream, _SKIP when it was counted and not yielded."""
    if src.pending_error is not None:  # the next member was found corrupt while finishing the last record
        exc, src.pending_error = src.pending_error, None
        raise exc
    # Skip blank lines between records; anything else before "WARC/" is garbage to count and skip.
    while True:
        start = src.consumed
        line = src.readline()
        if not line:
            return None
        if line.strip():
            break
    offset = src.offset_of(start)
    if not line.startswith(b"WARC/"):
        skipped = len(line)
        while True:
            nxt = src.readline()
            if not nxt or nxt.startswith(b"WARC/"):
                src.unread(nxt)
                break
            skipped += len(nxt)
        report.count_dropped(
            "missing_headers",
            file,
            offset,
            f"{skipped} bytes without a WARC/1.x record header skipped",
            log=True,
        )
        return _SKIP

    headers: dict[str, str] = {}
    malformed = []
    fast = line.endswith(b"\r\n") and _read_crlf_headers(src, headers, malformed)
    while not fast:
        hl = src.readline()
        if not hl:
            report.count_dropped(
                "truncated_record", file, offset, "file ends inside the record headers", log=True
            )
            return None
        if hl in (b"\r\n", b"\n"):
            break
        kv = _parse_header_line(hl)
        if kv is None or len(headers) >= MAX_HEADERS:
            malformed.append(hl[:80])
            continue
        headers[kv[0]] = kv[1]
    warc_type = headers.get("WARC-Type", "")
    is_doc = warc_type in doc_types or not warc_type
    cl = headers.get("Content-Length", "")
    if not _is_content_length(cl):
        # Without a length the block can only be delimited by the next record header.
        _read_until_next_record(src, max_block_bytes)
        if is_doc:
            report.count_dropped(
                "missing_headers",
                file,
                offset,
                f"{warc_type or 'record'} without a valid Content-Length ({cl!r})",
                log=True,
            )
        else:
            report.count_other(warc_type)
        return _SKIP
    length = int(cl)
    if length > max_block_bytes:
        got = src.skip(length)
        if got < length:
            if is_doc:
                report.count_dropped(
                    "truncated_record",
                    file,
                    offset,
                    f"file ends after {got} of {length} block bytes",
                    log=True,
                )
            return None
        _consume_separator(src)
        if is_doc:
            report.count_dropped(
                "too_large",
                file,
                offset,
                f"block of {length} bytes > max_doc_bytes={max_block_bytes}, skipped",
                log=True,
            )
        else:
            report.count_other(warc_type)
        return _SKIP
    block = src.read(length)
    if len(block) < length:
        if is_doc:
            report.count_dropped(
                "truncated_record",
                file,
                offset,
                f"file ends after {len(block)} of {length} block bytes",
                log=True,
            )
        return None
    if not _consume_separator(src) and not _digest_matches(headers, block):
        # The length does not end the record and the block is not the one the digest describes:
        # the Content-Length is wrong. (When the digest matches, the block is right and whatever
        # follows is garbage, counted by the next call.)
        block = _repair_length(src, block, max_block_bytes)
        if is_doc:
            report.count_repaired(
                "content_length_mismatch",
                file,
                offset,
                f"Content-Length {length} does not end the record; block resynchronised "
                f"on the next WARC header ({len(block)} bytes)",
            )
    if not warc_type:
        report.count_dropped("missing_headers", file, offset, "record without WARC-Type", log=True)
        return _SKIP
    if malformed and is_doc:
        report.add_failure(
            file,
            offset,
            "malformed_header_line",
            f"ignored header lines: {malformed[:3]}",
            level=logging.INFO,
        )
    if not is_doc:
        report.count_other(warc_type)
        return _SKIP
    return WarcRecord(offset, warc_type, headers, block, length)


def _is_content_length(value: str) -> bool:
    """ASCII digits only, as WARC/1.1 states: ``str.isdigit`` also accepts superscripts and other digits
    ``int`` refuses (``'²'``, ``'❶'``), and more than 19 digits is no file's length (and more than 4300
    is more than ``int`` converts)."""
    return 0 < len(value) <= 19 and value.isascii() and value.isdigit()


def _digest_matches(headers: dict[str, str], block: bytes) -> bool:
    digest = headers.get("WARC-Block-Digest", "")
    if not digest.startswith("sha1:"):
        return False

    return digest.upper() == block_digest(block).upper()


def _consume_separator(src: _ByteSource) -> bool:
    """Consume the blank lines after a block; True when they end at a record header or EOF.

    Looking past the separator may hit the next gzip member: if that one is corrupt, the record just
    read is still complete, so the error is kept for the next record instead of being raised here.
    """
    consumed = []
    while True:
        try:
            line = src.readline()
        except CorruptGzip as exc:
            src.pending_error = exc
            return True
        if not line:
            return True
        if line.strip():
            src.unread(line)
            if line.startswith(b"WARC/"):
                return True
            src.unread(b"".join(consumed))
            return False
        consumed.append(line)
        if len(consumed) > 64:
            src.unread(b"".join(consumed))
            return False


def _read_until_next_record(src: _ByteSource, limit: int) -> bytes:
    """Lines up to (not including) the next line starting with ``WARC/1.``; at most ``limit`` kept."""
    parts, size = [], 0
    while True:
        line = src.readline()
        if not line:
            break
        if line.startswith(b"WARC/1."):
            src.unread(line)
            break
        if size < limit:
            parts.append(line)
        size += len(line)
    return b"".join(parts)


def _repair_length(src: _ByteSource, block: bytes, limit: int) -> bytes:
    """Re-delimit a block whose Content-Length is wrong by the next ``WARC/1.x`` header line.

    Too long: the block ran into the next record, so cut it at the header and give the rest back.
    Too short: the text goes on, so read up to the next header. Trailing blank lines (the record
    separator) are removed either way.
    """
    m = _WARC_LINE.search(block)
    if m:
        cut = m.start() + (1 if block[m.start() : m.start() + 1] == b"\n" else 0)
        src.unread(block[cut:])
        block = block[:cut]
    else:
        block += _read_until_next_record(src, limit)
    return block.rstrip(b"\r\n") + b"\n"


def iter_file_records(
    url: str, *, report: ReadReport, retry: RetryPolicy | None, doc_types: frozenset[str], max_block_bytes: int
) -> Iterator[WarcRecord]:
    """The records of ``doc_types`` in one WET or WARC file (https, s3, local path or file://), read
    through pipeline.io.remote (retries, resumed bodies). A file that cannot be read (404, retries
    exhausted) is counted in ``report.file_failures`` and the generator simply ends, so the caller's
    shard goes on with its next file; bytes read and files read are counted either way. Shared by the
    WET and the WARC readers, which turn the records into documents."""
    from pipeline.io.remote import RemoteNotFound, RemoteReadError, open_stream

    def on_retry() -> None:
        report.retries += 1

    stream = open_stream(url, retry=retry, on_retry=on_retry)
    try:
        yield from iter_warc_records(
            stream, file=url, report=report, doc_types=doc_types, max_block_bytes=max_block_bytes
        )
        report.files_read += 1
    except RemoteNotFound as exc:
        report.count_file_failure("file_not_found", url, exc.offset, exc.detail)
    except RemoteReadError as exc:
        report.count_file_failure("file_failed", url, exc.offset, exc.detail)
    finally:
        report.bytes_read += stream.tell()
        stream.close()
