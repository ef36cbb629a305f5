"""Bounded fuzzing of the WET and WARC readers with MUTATED REAL CommonCrawl files (issue 9, "Fuzzing").

Every example starts from one of the real WET/WARC samples in realdata/{wet,warc} (split into its records:
one per gzip member, or at each ``WARC/1.x`` line of a plain file), damages it at the record level (records
duplicated, removed or reordered; headers with garbage: Content-Length huge / negative / non-numeric /
off by a few bytes, WARC-Type or the URI/date missing, LF instead of CRLF, over-long and too many header
lines; garbage between records; records cut short; thousands of tiny records), writes it plain, gzipped
per record (as CommonCrawl) or as one gzip member, then damages the bytes (flips, truncation, chunks
duplicated / removed / inserted, one gzip member corrupted or cut, the whole file emptied) and reads it
with the real reader from a local file. Checked for every example:

- no exception escapes (the readers document none for input data: every problem is a counted outcome);
- it ends in bounded time: hypothesis' deadline (2 s) for examples that finish, and a hard alarm for a hang;
- every record ends in exactly one outcome: ``read == kept + sum(dropped)`` (ReadReport's identity), and
  the documents yielded are exactly ``report.kept``, each a well-formed document at least min_len long;
- memory stays bounded: tracemalloc's peak is below a small multiple of the input size.

Crashers found by these fuzzers are pinned as named regression tests at the end of this file.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import signal
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import shared_path
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.sources.read_report import ReadReport
from pipeline.sources.warc import iter_warc_documents
from pipeline.sources.warc_records import DEFAULT_MAX_DOC_BYTES
from pipeline.sources.wet import iter_wet_documents

# Examples per target (three targets); RPV2_FUZZ_EXAMPLES=20000 explores further locally (CI: the default).
MAX_EXAMPLES = int(os.environ.get("RPV2_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=2000,  # ms per example: a reader that slows down on some input fails here
    derandomize=True,  # the same examples on every run, so CI is deterministic
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
HANG_SECONDS = 30  # hard stop: the deadline only judges examples that finish
# Peak traced memory <= MEMORY_FACTOR * input size + MEMORY_SLACK (the reader's 256 KiB read chunk and its
# copies). Measured over 1,200 reads of damaged files: at most 7.1x the input, 3.2 MB in all.
MEMORY_FACTOR = 8
MEMORY_SLACK = 2 << 20

WET_FILES = sorted(p.name for p in shared_path("realdata", "wet").iterdir())
WARC_FILES = sorted(p.name for p in shared_path("realdata", "warc").iterdir())
_RECORD_LINE = re.compile(rb"(?m)^WARC/1\.[01]\r?$")


def _gzip_members(data: bytes) -> list[bytes]:
    out = []
    while data:
        d = zlib.decompressobj(31)
        out.append(d.decompress(data))
        assert d.eof, "a real sample must be made of complete gzip members"
        data = d.unused_data
    return out


def _split_plain(data: bytes) -> list[bytes]:
    starts = [m.start() for m in _RECORD_LINE.finditer(data)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    return [data[a:b] for a, b in zip(starts, [*starts[1:], len(data)], strict=True)]


def _load(kind: str, name: str) -> tuple[bytes, list[bytes]]:
    raw = shared_path("realdata", kind, name).read_bytes()
    records = _gzip_members(raw) if raw[:2] == b"\x1f\x8b" else _split_plain(raw)
    return raw, records


CORPUS: dict[str, tuple[str, bytes, list[bytes]]] = {
    name: (kind, *_load(kind, name))
    for kind, names in (("wet", WET_FILES), ("warc", WARC_FILES))
    for name in names
}


# ---- record-level damage ------------------------------------------------------------------------------

CONTENT_LENGTH_GARBAGE = [
    "99999999999999999999999999",  # far beyond any block
    str(DEFAULT_MAX_DOC_BYTES + 1),  # just above the reader's limit
    str(1 << 63),
    "-1",
    "-99999",
    "0",
    "abc",
    "",
    "1e3",
    "0x10",
    "+5",
    "5 5",
    " 12 ",
    "12\x00",
    "\u00b2",  # SUPERSCRIPT TWO: str.isdigit() is True, int() refuses it
    "\u0661\u0662",  # ARABIC-INDIC 12: isdigit() and int() accept it
    "\uff11\uff12",  # FULLWIDTH 12
    "9" * 5000,  # digits beyond int()'s 4300-digit conversion limit
]
# Text made of characters that look like numbers to some of Python's tests and not to others
# (digits of every script, superscripts, fractions, Roman numerals, spaces, dashes, plus signs).
NUMBER_LIKE_TEXT = st.text(
    st.characters(categories=("Nd", "No", "Nl", "Zs", "Pd", "Sm")), min_size=1, max_size=6
)
HEADER_GARBAGE = [
    "",
    "garbage",
    "\x00\xff",
    "conversion",
    "response",
    "warcinfo",
    "request",
    "WARC/1.0",
    "\u00e9t\u00e9",
]
HEADERS = ["Content-Length", "WARC-Type", "WARC-Target-URI", "WARC-Date", "WARC-Block-Digest", "Content-Type"]


def _split_record(record: bytes) -> tuple[list[bytes], bytes, bytes]:
    """(header lines without their ends, line end, the rest after the blank line)."""
    for eol in (b"\r\n", b"\n"):
        head, sep, rest = record.partition(eol + eol)
        if sep:
            return head.split(eol), eol, rest
    return record.split(b"\n"), b"\n", b""


def _set_header(record: bytes, key: str, value: bytes | None) -> bytes:
    lines, eol, rest = _split_record(record)
    prefix = key.lower().encode() + b":"
    kept = [line for line in lines if not line.lower().startswith(prefix)]
    if value is not None:
        kept.insert(min(len(kept), 1), key.encode() + b": " + value)
    return eol.join(kept) + eol + eol + rest


@st.composite
def _header_value(draw, key: str, length: int) -> bytes | None:
    """A damaged value for header ``key`` of a record whose block is ``length`` bytes; None: removed."""
    choice = draw(st.sampled_from(["remove", "garbage", "garbage", "near", "binary"]))
    if choice == "remove":
        return None
    if choice == "binary":
        return draw(st.binary(max_size=40)).replace(b"\n", b"")
    if key != "Content-Length":
        return draw(st.sampled_from(HEADER_GARBAGE)).encode("utf-8")
    if choice == "near":  # a few bytes off the true length (a block that overruns or stops short)
        return str(length + draw(st.integers(-40, 40))).encode()
    return draw(st.one_of(st.sampled_from(CONTENT_LENGTH_GARBAGE), NUMBER_LIKE_TEXT)).encode("utf-8")


def _index(draw, seq) -> int:
    return draw(st.integers(0, len(seq) - 1))


# Each operation damages ``records`` in place and returns what it did, for the example's repr.


def _op_duplicate(draw, records) -> str:
    i, at = _index(draw, records), draw(st.integers(0, len(records)))
    records.insert(at, records[i])
    return f"record {i} copied to {at}"


def _op_remove(draw, records) -> str:
    i = _index(draw, records)
    del records[i]
    return f"record {i} removed"


def _op_swap(draw, records) -> str:
    i, j = _index(draw, records), _index(draw, records)
    records[i], records[j] = records[j], records[i]
    return f"records {i} and {j} swapped"


def _op_header(draw, records) -> str:
    i = _index(draw, records)
    key = draw(st.sampled_from(["Content-Length", "Content-Length", *HEADERS]))
    length = len(_split_record(records[i])[2].rstrip(b"\r\n"))
    value = draw(_header_value(key, length))
    records[i] = _set_header(records[i], key, value)
    return f"record {i}: {key}: {value!r}"


def _op_lf_only(draw, records) -> str:
    i = _index(draw, records)
    if draw(st.booleans()):
        records[i] = records[i].replace(b"\r\n", b"\n")
        return f"record {i}: LF line ends"
    lines, _, rest = _split_record(records[i])
    records[i] = b"\n".join(lines) + b"\n\n" + rest
    return f"record {i}: LF line ends in the headers"


def _op_cut_record(draw, records) -> str:
    i = _index(draw, records)
    at = draw(st.integers(0, len(records[i])))
    records[i] = records[i][:at]
    return f"record {i} cut at {at}"


def _op_garbage_between(draw, records) -> str:
    at, garbage = draw(st.integers(0, len(records))), draw(st.binary(min_size=1, max_size=300))
    records.insert(at, garbage)
    return f"garbage before record {at}: {garbage[:40]!r}"


def _op_bad_header_lines(draw, records) -> str:
    i = _index(draw, records)
    lines, eol, rest = _split_record(records[i])
    kind = draw(st.sampled_from(["long", "many", "no_colon"]))
    if kind == "long":  # above warc_records.MAX_HEADER_LINE
        extra = [b"X-Long: " + b"a" * draw(st.sampled_from([70_000, 200_000]))]
    elif kind == "many":  # above warc_records.MAX_HEADERS
        extra = [b"X-H%d: v" % k for k in range(draw(st.sampled_from([100, 600])))]
    else:
        extra = [draw(st.binary(min_size=1, max_size=30)).replace(b"\n", b"").replace(b":", b"")]
    at = draw(st.integers(1, max(1, len(lines))))
    records[i] = eol.join(lines[:at] + extra + lines[at:]) + eol + eol + rest
    return f"record {i}: {len(extra)} {kind} header line(s), first {len(extra[0])} bytes, at line {at}"


def _op_tiny_records(draw, records) -> str:
    """Many tiny records of the same type as a real one (same headers, blocks of a few bytes)."""
    i = _index(draw, records)
    lines, eol, _ = _split_record(records[i])
    # at most ~1 MB of them, so that an example stays well inside the deadline under tracemalloc (a
    # record given 600 header lines, copied 2000 times, is 13 MB: 5x slower traced than the 0.3 s untraced)
    n = draw(st.integers(1, max(1, min(2000, 1_000_000 // (len(b"".join(lines)) + 100)))))
    out = []
    for k in range(n):
        block = b"t%d\n" % k if k % 3 else b""
        head = _set_header(eol.join(lines) + eol + eol, "Content-Length", str(len(block)).encode())
        out.append(head + block + eol + eol)
    records[i:i] = out
    return f"{n} tiny records like record {i} inserted before it"


RECORD_OPS: list[Callable[..., str]] = [
    _op_header,  # listed three times: header damage is the most common kind of real damage
    _op_header,
    _op_header,
    _op_duplicate,
    _op_remove,
    _op_swap,
    _op_lf_only,
    _op_cut_record,
    _op_garbage_between,
    _op_bad_header_lines,
    _op_tiny_records,
]


# ---- byte-level damage --------------------------------------------------------------------------------


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


def _serialise(records: list[bytes], mode: str) -> tuple[bytes, list[tuple[int, int]]]:
    """The file bytes and the (start, end) of each gzip member (empty for plain)."""
    if mode == "plain":
        return b"".join(records), []
    members = [_gz(r) for r in records if r] if mode == "per_record" else [_gz(b"".join(records))]
    spans, pos = [], 0
    for m in members:
        spans.append((pos, pos + len(m)))
        pos += len(m)
    return b"".join(members), spans


# Each operation returns the damaged bytes and what it did.


def _byte_flip(draw, data: bytearray, spans) -> tuple[bytearray, str]:
    at = []
    for _ in range(draw(st.integers(1, 8))):
        at.append(draw(st.integers(0, len(data) - 1)))
        data[at[-1]] = draw(st.integers(0, 255))
    return data, f"bytes flipped at {at}"


def _byte_truncate(draw, data, spans):
    at = draw(st.integers(0, len(data) - 1))
    return data[:at], f"file cut at {at}"


def _byte_dup_chunk(draw, data, spans):
    a, n, at = (
        draw(st.integers(0, len(data) - 1)),
        draw(st.integers(1, 4096)),
        draw(st.integers(0, len(data))),
    )
    return data[:at] + data[a : a + n] + data[at:], f"bytes {a}:{a + n} copied to {at}"


def _byte_remove_chunk(draw, data, spans):
    a, n = draw(st.integers(0, len(data) - 1)), draw(st.integers(1, 4096))
    return data[:a] + data[a + n :], f"bytes {a}:{a + n} removed"


def _byte_insert(draw, data, spans):
    at, junk = draw(st.integers(0, len(data))), draw(st.binary(min_size=1, max_size=200))
    return data[:at] + junk + data[at:], f"{len(junk)} random bytes inserted at {at}"


def _byte_corrupt_member(draw, data, spans):
    """One gzip member damaged: its header clobbered, a byte of its deflate stream or trailer flipped, or
    its tail cut."""
    if not spans:
        return _byte_flip(draw, data, spans)
    j = _index(draw, spans)
    start, end = spans[j]
    if end > len(data):
        return data, "nothing (member beyond the end)"
    how = draw(st.sampled_from(["header", "body", "cut", "trailer"]))
    if how == "header":
        data[start : start + 3] = draw(st.binary(min_size=3, max_size=3))
    elif how == "body" and end - start > 20:
        data[draw(st.integers(start + 10, end - 9))] ^= draw(st.integers(1, 255))
    elif how == "cut":
        data = data[: draw(st.integers(start, end - 1))] + data[end:]
    else:  # CRC32 / ISIZE
        data[draw(st.integers(max(start, end - 8), end - 1))] ^= 0xFF
    return data, f"gzip member {j} ({start}:{end}): {how} damaged"


def _byte_empty(draw, data, spans):
    return bytearray(), "file emptied"


BYTE_OPS: list[Callable[..., tuple[bytearray, str]]] = [
    _byte_flip,
    _byte_corrupt_member,
    _byte_truncate,
    _byte_dup_chunk,
    _byte_remove_chunk,
    _byte_insert,
    _byte_corrupt_member,
    _byte_empty,
]


@dataclass(frozen=True)
class Damaged:
    """A damaged file: its source, bytes, suffix, the records' size before compression, and what was done
    (the repr shows the damage rather than kilobytes of bytes)."""

    source: str
    data: bytes = field(repr=False)
    suffix: str
    plain_size: int
    damage: tuple[str, ...]

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis prints a failing example with this
        printer.text(
            f"Damaged(source={self.source!r}, {len(self.data)} bytes{self.suffix and ' gzip'}, "
            f"plain_size={self.plain_size}, damage={self.damage!r})"
        )

    def write(self, directory: Path) -> Path:
        path = directory / (self.source.removesuffix(".gz") + self.suffix)
        path.write_bytes(self.data)
        return path


@st.composite
def mutated_files(draw, sources: list[str]) -> Damaged:
    name = draw(st.sampled_from(sources))
    records, damage = list(CORPUS[name][2]), []
    for _ in range(draw(st.integers(0, 3))):
        if not records:
            break
        damage.append(draw(st.sampled_from(RECORD_OPS))(draw, records))
    mode = draw(st.sampled_from(["per_record", "plain", "one_member"]))
    damage.append(f"written {mode}")
    data, spans = _serialise(records, mode)
    data = bytearray(data)
    for _ in range(draw(st.integers(0, 3))):
        if not data:
            break
        data, what = draw(st.sampled_from(BYTE_OPS))(draw, data, spans)
        damage.append(what)
    return Damaged(name, bytes(data), "" if mode == "plain" else ".gz", sum(map(len, records)), tuple(damage))


# ---- running a reader under the checks ------------------------------------------------------------------


class ReaderHang(AssertionError):
    pass


@contextlib.contextmanager
def hard_timeout(seconds: float) -> Iterator[None]:
    def on_alarm(signum, frame):
        raise ReaderHang(f"reader still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def read_checked(reader, path: Path, plain_size: int, **kwargs) -> tuple[list[dict], ReadReport]:
    """Read ``path`` with every fuzz invariant checked; returns the documents and the report.

    ``plain_size``: the size of the records before compression and byte damage (memory is bounded
    relative to the larger of it and the file size)."""
    size = path.stat().st_size
    report = ReadReport()
    tracemalloc.start()
    try:
        with hard_timeout(HANG_SECONDS):
            docs = list(reader(str(path), report=report, **kwargs))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    bound = MEMORY_FACTOR * max(size, plain_size) + MEMORY_SLACK
    assert peak <= bound, f"peak traced memory {peak} bytes > {bound} for a {size}-byte input"
    assert report.is_balanced(), report.to_dict()
    assert len(docs) == report.kept, (len(docs), report.to_dict())
    assert report.files_read == 1 and report.bytes_read <= size
    if size == 0:
        assert report.file_failures["empty_file"] == 1 and report.read == 0
    min_len = kwargs["min_len"]
    for doc in docs:
        assert isinstance(doc["raw_content"], str) and len(doc["raw_content"]) >= min_len
        assert doc["url"] and doc["date_download"] and doc["digest"]
        # "" is a document of no line or of one empty line; else one line more than its "\n"s
        lines = {doc["raw_content"].count("\n") + 1} if doc["raw_content"] else {0, 1}
        assert doc["nlines"] == doc["original_nlines"] and doc["nlines"] in lines
    for failure in report.failures:
        assert failure["file"] == str(path) and failure["reason"] and failure["message"]
    return docs, report


def _events(report: ReadReport) -> None:
    """Label the example with its outcomes (``pytest --hypothesis-show-statistics`` shows the spread)."""
    event("kept documents" if report.kept else "no document kept")
    for reason in report.dropped:
        event(f"dropped: {reason}")
    for reason in report.repaired:
        event(f"repaired: {reason}")
    for reason in report.file_failures:
        event(f"file failure: {reason}")


@pytest.fixture(scope="module", autouse=True)
def _readers_warmed_up() -> None:
    """One read of each real file with each reader first: the readers import their modules (remote I/O,
    resiliparse) on first use, which must not be counted as the memory of reading the first example."""
    for name in CORPUS:
        for reader in (iter_wet_documents, iter_warc_documents):
            list(reader(str(shared_path("realdata", CORPUS[name][0], name)), min_len=0))


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    """The directory the damaged files are written to (one file per source, overwritten per example)."""
    return tmp_path_factory.mktemp("fuzz_readers")


# ---- the fuzz targets ---------------------------------------------------------------------------------


@FUZZ
@given(
    case=mutated_files(WET_FILES * 2 + WARC_FILES),  # mostly WET input; WARC files too
    min_len=st.sampled_from([0, 0, 300]),
    max_doc_bytes=st.sampled_from([DEFAULT_MAX_DOC_BYTES, 2048]),
    on_invalid_utf8=st.sampled_from(["repair", "drop"]),
)
def test_fuzz_wet_reader_with_mutated_real_files(fuzz_dir, case, min_len, max_doc_bytes, on_invalid_utf8):
    _, report = read_checked(
        iter_wet_documents,
        case.write(fuzz_dir),
        case.plain_size,
        min_len=min_len,
        max_doc_bytes=max_doc_bytes,
        on_invalid_utf8=on_invalid_utf8,
    )
    _events(report)


@FUZZ
@given(
    case=mutated_files(WARC_FILES * 2 + WET_FILES),  # mostly WARC input; WET files too
    min_len=st.sampled_from([0, 0, 300]),
    max_doc_bytes=st.sampled_from([DEFAULT_MAX_DOC_BYTES, 16384]),
    main_content=st.booleans(),
)
def test_fuzz_warc_reader_with_mutated_real_files(fuzz_dir, case, min_len, max_doc_bytes, main_content):
    _, report = read_checked(
        iter_warc_documents,
        case.write(fuzz_dir),
        case.plain_size,
        min_len=min_len,
        max_doc_bytes=max_doc_bytes,
        main_content=main_content,
    )
    _events(report)


@st.composite
def damaged_headers(draw) -> Damaged:
    """A real file whose records are intact but for a few header values: number-like text of any script,
    arbitrary text, known garbage, or the header removed; optionally with LF line ends."""
    name = draw(st.sampled_from(sorted(CORPUS)))
    records, damage = list(CORPUS[name][2]), []
    for _ in range(draw(st.integers(1, 4))):
        i = _index(draw, records)
        key = draw(st.sampled_from(["Content-Length", *HEADERS]))
        value = draw(
            st.one_of(
                NUMBER_LIKE_TEXT,
                st.text(max_size=20),
                st.sampled_from(CONTENT_LENGTH_GARBAGE + HEADER_GARBAGE),
                st.none(),
            )
        )
        if value is not None:
            value = value.replace("\r", "").replace("\n", "").encode("utf-8")
        records[i] = _set_header(records[i], key, value)
        damage.append(f"record {i}: {key}: {value!r}")
        if draw(st.booleans()):
            lines, _, rest = _split_record(records[i])
            records[i] = b"\n".join(lines) + b"\n\n" + rest
            damage.append(f"record {i}: LF line ends in the headers")
    mode = draw(st.sampled_from(["per_record", "plain"]))
    data, _ = _serialise(records, mode)
    return Damaged(name, data, "" if mode == "plain" else ".gz", sum(map(len, records)), tuple(damage))


@FUZZ
@given(case=damaged_headers(), min_len=st.sampled_from([0, 300]))
def test_fuzz_both_readers_with_damaged_header_values(fuzz_dir, case, min_len):
    reader = iter_wet_documents if CORPUS[case.source][0] == "wet" else iter_warc_documents
    _, report = read_checked(reader, case.write(fuzz_dir), case.plain_size, min_len=min_len)
    _events(report)


# ---- the harness itself: undamaged input, re-serialised, reads exactly as the original -------------------


@pytest.mark.parametrize("mode", ["per_record", "plain", "one_member"])
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_undamaged_records_reserialised_read_as_the_original(tmp_path, name, mode):
    kind, raw, records = CORPUS[name]
    assert b"".join(records) == (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    reader = iter_wet_documents if kind == "wet" else iter_warc_documents
    original = tmp_path / name
    original.write_bytes(raw)
    expected, expected_report = read_checked(reader, original, len(raw), min_len=0)
    assert expected_report.kept >= 1 or name.endswith(".wat.gz")
    data, _ = _serialise(records, mode)
    again = Damaged("again-" + name, data, "" if mode == "plain" else ".gz", len(raw), ()).write(tmp_path)
    got, report = read_checked(reader, again, len(raw), min_len=0)
    strip = {"cc_segment"}  # the file name differs
    assert [{k: v for k, v in d.items() if k not in strip} for d in got] == [
        {k: v for k, v in d.items() if k not in strip} for d in expected
    ]
    assert report.read == expected_report.read and report.other_records == expected_report.other_records


# ---- regression tests: crashers the fuzzers found ------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["\u2776", "\u00b2", "9" * 5000, "\u0661\u0662"],
    ids=["dingbat_digit_one", "superscript_two", "5000_digits", "arabic_indic_12"],
)
@pytest.mark.parametrize("reader", ["wet", "warc"])
def test_regression_content_length_that_str_isdigit_accepts(tmp_path, value, reader):
    """Found by the fuzzers: ``Content-Length: ❶`` (DINGBAT NEGATIVE CIRCLED DIGIT ONE; also ``²``) passed
    ``str.isdigit()``, then ``int()`` raised ValueError out of both readers; 5000 ASCII digits passed it
    too and exceeded ``int()``'s 4300-digit limit. A Content-Length is ASCII digits (WARC/1.1): anything
    else is a record without a valid length, dropped as missing_headers, and the next record is read."""
    name = "whirlwind.warc.wet.gz" if reader == "wet" else "whirlwind.warc.gz"
    records = CORPUS[name][2]
    doc = next(r for r in records if b"WARC-Type: conversion" in r or b"WARC-Type: response" in r)
    bad = _set_header(doc, "Content-Length", value.encode("utf-8"))
    path = tmp_path / "x.warc"
    path.write_bytes(bad + doc)
    read = iter_wet_documents if reader == "wet" else iter_warc_documents
    docs, report = read_checked(read, path, path.stat().st_size, min_len=0)
    assert report.dropped == {"missing_headers": 1} and report.kept == 1
    assert "without a valid Content-Length" in next(f for f in report.failures if f["offset"] == 0)["message"]
    assert docs[0]["url"] == "https://an.wikipedia.org/wiki/Escopete"
