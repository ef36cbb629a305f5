"""Snapshots and uri_ids found in ids and paths as RPv2's Worker finds them (pipeline.dataset.ids).

The expected values are RPv2's own: the ``metadata.snapshot_id`` and ``metadata.cc_net_source`` (its
uri_id) that RPv2's Worker wrote into the ground-truth signals files (public/native), from the paths of
the input files in public/listings.txt.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from conftest import shared_path

from pipeline.dataset.ids import snapshot_of, uri_id_of

# directories an input may sit under, whose digits must not be taken for a snapshot: a job directory with
# a longer number before a dash (the regex without word boundaries found "2345-67" in it) and a name that
# runs into a date ("crawl_1999-01": "_" is a word character, so RPv2 does not see a snapshot there)
PREFIXES = ("", "/scratch/job12345-678/", "/data/crawl_1999-01/documents/")


def _native_records() -> list[dict]:
    """The first record of every RPv2-written signals file, with the listing path it was made from."""
    public = shared_path("groundtruth", "rpv2", "public")
    records = []
    for listed in (public / "listings.txt").read_text().split():
        native = public / "native" / listed.replace(".json.gz", ".signals.json.gz")
        with gzip.open(native, "rt") as f:
            record = json.loads(f.readline())
        records.append({"listed": listed, **record})
    return records


RECORDS = _native_records()


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("record", RECORDS, ids=[r["listed"] for r in RECORDS])
def test_input_path_gives_rpv2s_snapshot_and_uri_id(record, prefix):
    path = prefix + record["listed"]
    assert snapshot_of(path) == record["metadata"]["snapshot_id"]
    assert uri_id_of(path) == record["metadata"]["cc_net_source"]


@pytest.mark.parametrize("record", RECORDS, ids=[r["listed"] for r in RECORDS])
def test_document_id_gives_rpv2s_snapshot(record):
    assert snapshot_of(record["id"]) == record["metadata"]["snapshot_id"]


def test_digits_inside_a_longer_number_are_no_snapshot():
    # a WET file's name (CC-MAIN-<14 digits>-<14 digits>-<5 digits>) holds "dddd-dd" only inside longer
    # numbers: RPv2's regex finds no snapshot in it (the one without word boundaries found "4745-20")
    segment_name = Path(RECORDS[0]["metadata"]["cc_segment"]).name
    assert snapshot_of(segment_name) is None
    assert snapshot_of(segment_name, fallback="CC-MAIN-2020-16") == "2020-16"
    assert uri_id_of(segment_name) is None


def test_fallback_without_a_snapshot_is_returned_as_given():
    assert snapshot_of("doc-17", fallback="unknown") == "unknown"
    assert snapshot_of(None) is None
