"""Snapshot ids, listing URLs, and the CCNet / RPv2 shard split."""

from __future__ import annotations

import pytest
from http_mirror import HTTPMirror

from pipeline.dataset.ids import normalize_snapshot, short_snapshot
from pipeline.io.remote import RetryPolicy
from pipeline.io.uris import resolve
from pipeline.sample.mirror import build_mirror, gzip_member, segment_relpath
from pipeline.sources.listing import (
    DEFAULT_BASE_URL,
    ListingError,
    listing_url,
    parse_listing,
    parse_shard_spec,
    read_listing,
    shard_bounds,
    shard_paths,
)

FAST = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01)


@pytest.mark.parametrize("given", ["2023-06", "CC-MAIN-2023-06", " 2023-06 "])
def test_snapshot_accepts_short_and_long_forms(given):
    assert normalize_snapshot(given) == "CC-MAIN-2023-06"
    assert short_snapshot(given) == "2023-06"


@pytest.mark.parametrize("bad", ["2023", "CC-MAIN-23-06", "2023-6", "CC-MAIN-2023-06x", "", "latest"])
def test_snapshot_rejects_malformed_ids_with_a_clear_message(bad):
    with pytest.raises(ValueError, match="CC-MAIN-YYYY-WW"):
        normalize_snapshot(bad)


def test_listing_url_for_each_kind_of_base():
    assert DEFAULT_BASE_URL == "https://data.commoncrawl.org/"
    assert (
        listing_url(DEFAULT_BASE_URL, "2023-06")
        == "https://data.commoncrawl.org/crawl-data/CC-MAIN-2023-06/wet.paths.gz"
    )
    assert (
        listing_url("s3://commoncrawl/", "CC-MAIN-2023-06", "warc")
        == "s3://commoncrawl/crawl-data/CC-MAIN-2023-06/warc.paths.gz"
    )
    assert listing_url("/data/cc", "2014-35") == "/data/cc/crawl-data/CC-MAIN-2014-35/wet.paths.gz"
    assert (
        listing_url("file:///data/cc/", "2014-35")
        == "file:///data/cc/crawl-data/CC-MAIN-2014-35/wet.paths.gz"
    )
    with pytest.raises(ValueError, match="listing kind"):
        listing_url(DEFAULT_BASE_URL, "2023-06", "wet.gz")


def test_resolve_joins_without_double_slashes():
    rel = "crawl-data/CC-MAIN-2023-06/segments/1/wet/a.warc.wet.gz"
    assert resolve("https://data.commoncrawl.org", rel) == "https://data.commoncrawl.org/" + rel
    assert resolve("https://data.commoncrawl.org/", "/" + rel) == "https://data.commoncrawl.org/" + rel
    assert resolve("/mirror/", rel) == "/mirror/" + rel


def test_shard_split_is_ccnets_contiguous_floor_division():
    paths = [f"f{i}" for i in range(10)]
    # cc_net CCShardReader: i_min = shard*n//N, i_max = (shard+1)*n//N
    assert [shard_bounds(10, 3, s) for s in range(3)] == [(0, 3), (3, 6), (6, 10)]
    assert shard_paths(paths, 3, 2) == ["f6", "f7", "f8", "f9"]
    shards = [shard_paths(paths, 4, s) for s in range(4)]
    assert [p for shard in shards for p in shard] == paths  # a partition, in listing order


def test_rpv2_shard_count_on_a_snapshot_sized_listing():
    paths = [f"f{i}" for i in range(90000)]
    sizes = {len(shard_paths(paths, 5000, s)) for s in range(5000)}
    assert sizes == {18}


def test_more_shards_than_files_gives_empty_shards_and_covers_every_file_once():
    paths = ["a", "b", "c"]
    shards = [shard_paths(paths, 8, s) for s in range(8)]
    assert sum(1 for s in shards if not s) == 5
    assert [p for s in shards for p in s] == paths


@pytest.mark.parametrize("shard", [-1, 3])
def test_shard_out_of_range_is_an_error(shard):
    with pytest.raises(ValueError, match="out of range"):
        shard_paths(["a"], 3, shard)


def test_parse_shard_spec():
    assert parse_shard_spec("0-3,7", 8) == [0, 1, 2, 3, 7]
    assert parse_shard_spec("7, 0-1,1", 8) == [0, 1, 7]
    assert parse_shard_spec("all", 3) == [0, 1, 2]
    assert parse_shard_spec(None, 2) == [0, 1]
    assert parse_shard_spec(4, 5) == [4]


@pytest.mark.parametrize(
    "spec, match",
    [
        ("3-1", "end before start"),
        ("0-8", "out of range"),
        ("x", "invalid"),
        ("1,,2", "invalid"),
        ("-1", "invalid"),
    ],
)
def test_parse_shard_spec_rejects_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_shard_spec(spec, 8)


def test_parse_listing_accepts_gzip_and_plain():
    text = b"crawl-data/a.warc.wet.gz\n\ncrawl-data/b.warc.wet.gz\n"
    assert (
        parse_listing(gzip_member(text))
        == parse_listing(text)
        == ["crawl-data/a.warc.wet.gz", "crawl-data/b.warc.wet.gz"]
    )


def _mirror(root) -> list[str]:
    files = {
        segment_relpath("2023-06", i): [{"url": f"https://e.org/{i}", "raw_content": "x" * 400}]
        for i in range(5)
    }
    return build_mirror(root, "2023-06", files)


def test_read_listing_from_local_path_and_file_url(tmp_path):
    rels = _mirror(tmp_path)
    assert read_listing(str(tmp_path), "2023-06") == rels
    assert read_listing(f"file://{tmp_path}/", "CC-MAIN-2023-06") == rels


def test_read_listing_over_http_survives_slowdown(tmp_path):
    rels = _mirror(tmp_path)
    with HTTPMirror(tmp_path) as m:
        m.inject("crawl-data/CC-MAIN-2023-06/wet.paths.gz", "503", times=2)
        assert read_listing(m.base_url, "2023-06", retry=FAST) == rels
        assert [r["status"] for r in m.requests] == [503, 503, 200]


def test_missing_listing_raises_listing_error_naming_the_url(tmp_path):
    with pytest.raises(ListingError, match="CC-MAIN-2099-01/wet.paths.gz"):
        read_listing(str(tmp_path), "2099-01")
    with HTTPMirror(tmp_path) as m, pytest.raises(ListingError, match="not found"):
        read_listing(m.base_url, "2099-01", retry=FAST)
