"""A snapshot listing is untrusted input: entries that could reach outside the base are refused, counted
and named, never cleaned up into another path, and the rest of the listing is kept in order."""

from __future__ import annotations

import gzip
import pickle

import pytest
from http_mirror import HTTPMirror

from pipeline.io.remote import RetryPolicy
from pipeline.sample.mirror import segment_relpath, write_listing
from pipeline.sources.listing import (
    REFUSED_EXAMPLES,
    Listing,
    check_listing_entry,
    parse_listing,
    read_listing,
)

GOOD = segment_relpath("2023-06", 0)  # crawl-data/CC-MAIN-2023-06/segments/.../wet/CC-MAIN-...-00000.warc.wet.gz
FAST = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.01)


@pytest.mark.parametrize(
    "entry, reason",
    [
        ("../secret.warc.wet.gz", "'..' path segment"),
        ("crawl-data/../../etc/passwd", "'..' path segment"),
        ("crawl-data/CC-MAIN-2023-06/..", "'..' path segment"),
        ("/etc/passwd", "absolute path"),
        ("//evil.example/x.warc.wet.gz", "absolute path"),
        ("http://evil.example/x.warc.wet.gz", "URL scheme or drive"),
        ("https://evil.example/x.warc.wet.gz", "URL scheme or drive"),
        ("file:///etc/passwd", "URL scheme or drive"),
        ("file:etc/passwd", "URL scheme or drive"),
        ("s3://other-bucket/key", "URL scheme or drive"),
        ("gs://other-bucket/key", "URL scheme or drive"),
        ("C:/Windows/win.ini", "URL scheme or drive"),
        ("crawl-data\\..\\secret", "backslash"),
        ("a\\b.warc.wet.gz", "backslash"),
        ("a\tb.warc.wet.gz", "control character U+0009"),
        ("a\rb.warc.wet.gz", "control character U+000D"),
        ("a\x00b.warc.wet.gz", "control character U+0000"),
        ("a\x1b[2Jb.warc.wet.gz", "control character U+001B"),
        ("a\x7fb.warc.wet.gz", "control character U+007F"),
        ("a\x85b.warc.wet.gz", "control character U+0085"),
        ("a\u2028b.warc.wet.gz", "control character U+2028"),
        ("a\u202eb.warc.wet.gz", "control character U+202E"),  # right-to-left override
        ("crawl-data/%2e%2e/%2e%2e/secret", "percent-escape"),
        ("crawl-data%2F..%2Fsecret", "percent-escape"),
        ("a.warc.wet.gz?x-amz-redirect=1", "URL query or fragment mark"),
        ("a.warc.wet.gz#fragment", "URL query or fragment mark"),
    ],
)
def test_entries_that_could_leave_the_base_are_refused_with_the_reason(entry, reason):
    assert check_listing_entry(entry) is not None
    assert check_listing_entry(entry).startswith(reason)


@pytest.mark.parametrize(
    "entry",
    [
        GOOD,
        "crawl-data/CC-MAIN-2023-06/segments/1674764494826.00/warc/CC-MAIN-20230126210844-00000.warc.gz",
        "a/b..c/d...warc.wet.gz",  # dots inside a name are not a '..' segment
        "a/./b.warc.wet.gz",  # '.' stays where it is
        "segments/x-y_z+1~2.warc.wet.gz",
    ],
)
def test_plain_relative_paths_are_accepted(entry):
    assert check_listing_entry(entry) is None


def test_parse_listing_keeps_the_good_entries_in_order_and_names_the_refused_by_line():
    lines = [GOOD, "../outside.warc.wet.gz", "", "b/second.warc.wet.gz", "/abs.warc.wet.gz", "c/third.warc.wet.gz"]
    listing = parse_listing(gzip.compress("\n".join(lines).encode("utf-8") + b"\n"))
    assert listing == [GOOD, "b/second.warc.wet.gz", "c/third.warc.wet.gz"]
    assert [(r.line, r.entry, r.reason) for r in listing.refused] == [
        (2, "../outside.warc.wet.gz", "'..' path segment"),
        (5, "/abs.warc.wet.gz", "absolute path"),
    ]


def test_crlf_line_ends_are_line_ends_but_a_cr_inside_an_entry_is_refused_not_split():
    listing = parse_listing(b"a/one.warc.wet.gz\r\nb/two.warc.wet.gz\r\nc/x\rd/y.warc.wet.gz\n")
    assert listing == ["a/one.warc.wet.gz", "b/two.warc.wet.gz"]
    assert [(r.line, r.entry) for r in listing.refused] == [(3, "c/x\rd/y.warc.wet.gz")]


def test_an_entry_that_is_not_utf8_is_refused_alone_and_the_listing_goes_on():
    listing = parse_listing(b"a/one.warc.wet.gz\nbad\xff\xfe.warc.wet.gz\nb/two.warc.wet.gz\n")
    assert listing == ["a/one.warc.wet.gz", "b/two.warc.wet.gz"]
    (refused,) = listing.refused
    assert (refused.line, refused.entry, refused.reason) == (2, "bad\\xff\\xfe.warc.wet.gz", "not UTF-8")


def test_refused_summary_counts_every_entry_and_names_the_first_few():
    bad = [f"../{i}.warc.wet.gz" for i in range(REFUSED_EXAMPLES + 5)]
    listing = parse_listing("\n".join([GOOD, *bad]).encode("utf-8"))
    summary = listing.refused_summary()
    assert summary["count"] == len(bad)
    assert [e["entry"] for e in summary["entries"]] == bad[:REFUSED_EXAMPLES]
    assert summary["entries"][0] == {"line": 2, "entry": bad[0], "reason": "'..' path segment"}
    assert parse_listing(GOOD.encode()).refused_summary() == {"count": 0, "entries": []}


def test_a_listing_is_the_plain_list_of_paths_and_keeps_its_refused_entries_through_pickle():
    listing = parse_listing(f"{GOOD}\n/etc/passwd\n".encode())
    assert isinstance(listing, list) and listing == [GOOD] and listing[0:1] == [GOOD]
    again = pickle.loads(pickle.dumps(listing))
    assert isinstance(again, Listing) and again == [GOOD] and again.refused == listing.refused


def test_read_listing_from_a_local_mirror_and_over_http_refuses_the_same_entries(tmp_path):
    entries = [GOOD, "../../etc/passwd", "http://127.0.0.1:9/x.warc.wet.gz", "b/ok.warc.wet.gz"]
    write_listing(tmp_path, "2023-06", entries)
    local = read_listing(str(tmp_path), "2023-06")
    assert local == [GOOD, "b/ok.warc.wet.gz"]
    assert [r.reason for r in local.refused] == ["'..' path segment", "URL scheme or drive"]
    with HTTPMirror(tmp_path) as mirror:
        remote = read_listing(mirror.base_url, "2023-06", retry=FAST)
        assert [r["path"] for r in mirror.requests] == ["/crawl-data/CC-MAIN-2023-06/wet.paths.gz"]
    assert remote == local and remote.refused == local.refused
