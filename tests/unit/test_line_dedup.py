"""CCNet's line dedup within a shard (pipeline/ccnet/line_dedup.py).

cc_net's exact semantics on real text, and its grouping of shards (hash_in_mem), are in
tests/test_line_dedup_ccnet_fidelity.py.
"""

from __future__ import annotations

import hashlib
import pickle
import random
from collections import Counter

import numpy as np
import pytest
from conftest import shared_path

from pipeline.ccnet.line_dedup import (
    DuplicateLineSet,
    ShardLineHashes,
    dedup_document,
    dedup_shard,
    line_hashes,
)
from pipeline.ccnet.text_normalization import normalize_for_dedup


def cc_net_hash(line: str) -> int:
    """cc_net's str_hash: first 8 bytes of sha1 of the normalized line, as a little-endian uint64."""
    return int.from_bytes(hashlib.sha1(normalize_for_dedup(line).encode("utf-8")).digest()[:8], "little")


def doc(text: str, **extra) -> dict:
    return {"url": "https://example.com/" + str(len(text)), "title": "A title", "raw_content": text, **extra}


def brute_force(docs: list[dict]) -> list[dict]:
    """cc_net's rule spelled out with Python sets: a line whose normalized form is in two or more
    documents is dropped everywhere; inside a document only the first copy of a line is kept; lines that
    normalize to nothing are dropped (our documented deviation)."""
    keys = [[normalize_for_dedup(line) for line in d["raw_content"].split("\n")] for d in docs]
    in_docs = Counter(k for doc_keys in keys for k in set(doc_keys))
    out = []
    for d, doc_keys in zip(docs, keys, strict=True):
        lines = d["raw_content"].split("\n")
        seen: set[str] = set()
        ids = []
        for i, k in enumerate(doc_keys):
            if k and in_docs[k] == 1 and k not in seen:
                ids.append(i)
            seen.add(k)
        if ids:
            out.append({"raw_content": "\n".join(lines[i] for i in ids), "line_ids": ids})
    return out


# --- the shard a reader sees: boilerplate repeated across pages ----------------------------------
NAV = "Home | About us | Contact"
FOOTER = "© 2023 Example Corp. All rights reserved."
SHARD = [
    doc(f"{NAV}\nThe river rose overnight and flooded the lower town.\n\n{FOOTER}"),
    doc(f"{NAV}\nA new bakery opened on the corner of Elm Street.\nIts bread sells out by noon.\n{FOOTER}"),
    doc("home | about us | contact\nCouncil approves the 2024 budget.\n© 2024 Example Corp. All rights reserved."),
    doc(f"{NAV}\n{FOOTER}"),
]


def test_lines_found_in_two_documents_of_the_shard_are_removed_from_all_of_them():
    kept, _ = dedup_shard(SHARD)
    assert [d["raw_content"] for d in kept] == [
        "The river rose overnight and flooded the lower town.",
        "A new bakery opened on the corner of Elm Street.\nIts bread sells out by noon.",
        "Council approves the 2024 budget.",
    ]


def test_line_ids_nlines_and_length_describe_the_kept_lines():
    kept, _ = dedup_shard(SHARD)
    assert [d["line_ids"] for d in kept] == [[1], [1, 2], [1]]
    assert [d["nlines"] for d in kept] == [1, 2, 1]
    assert [d["length"] for d in kept] == [len(d["raw_content"]) for d in kept]
    assert [d["original_nlines"] for d in kept] == [4, 4, 3]
    assert [d["original_length"] for d in kept] == [len(SHARD[i]["raw_content"]) for i in (0, 1, 2)]


def test_other_fields_are_kept_and_the_input_is_not_modified():
    before = [dict(d) for d in SHARD]
    kept, _ = dedup_shard(SHARD)
    assert kept[0]["title"] == "A title" and kept[0]["url"] == SHARD[0]["url"]
    assert SHARD == before


def test_a_document_made_only_of_boilerplate_ends_empty():
    dups = ShardLineHashes()
    for d in SHARD:
        dups.add(d["raw_content"])
    emptied = dedup_document(SHARD[3], dups.duplicates())
    assert emptied["nlines"] == 0 and emptied["raw_content"] == "" and emptied["line_ids"] == []
    assert emptied["length"] == 0


def test_a_line_repeated_only_inside_one_document_keeps_its_first_copy():
    # cc_net: HashesCollector adds a document's hashes as one batch, so the repeat is no duplicate;
    # finalize_doc then keeps the first occurrence in the document.
    kept, dups = dedup_shard([doc("Buy now!\nUnique sentence here.\nBuy now!\nBuy now!"), doc("Other page.")])
    assert kept[0]["raw_content"] == "Buy now!\nUnique sentence here." and kept[0]["line_ids"] == [0, 1]
    assert kept[0]["nlines"] == 2 and kept[0]["length"] == len("Buy now!\nUnique sentence here.")
    assert kept[0]["original_nlines"] == 4
    assert not dups.contains(np.array([cc_net_hash("Buy now!")], dtype="<u8"))[0]


def test_a_line_repeated_inside_a_document_and_found_in_another_is_removed_everywhere():
    kept, _ = dedup_shard([doc("Buy now!\nFirst page.\nBuy now!"), doc("Second page.\nBuy now!")])
    assert [(d["raw_content"], d["line_ids"]) for d in kept] == [("First page.", [1]), ("Second page.", [0])]


def test_lines_equal_after_normalization_inside_one_document_keep_the_first():
    kept, _ = dedup_shard([doc("Posted on 12/03/2021\nalpha\nPOSTED ON 01/01/1999")])
    assert kept[0]["raw_content"] == "Posted on 12/03/2021\nalpha" and kept[0]["line_ids"] == [0, 1]


def test_pass_one_counts_documents_not_copies():
    counter = ShardLineHashes()
    counter.add("x\nx\nx\ny")
    counter.add("y\nz")
    dups = counter.duplicates()
    found = dups.contains(np.array([cc_net_hash(t) for t in ("x", "y", "z", "")], dtype="<u8"))
    assert found.tolist() == [False, True, False, True]  # y: two documents; "": always (our deviation)
    assert counter.n_lines == 6 and counter.n_docs == 2 and counter.n_distinct == 3


def test_hashes_that_do_not_match_the_lines_are_refused():
    with pytest.raises(ValueError, match="2 line hashes for a document of 3 lines"):
        dedup_document(doc("a\nb\nc"), DuplicateLineSet(), line_hashes("a\nb"))


def test_lines_equal_after_normalization_are_duplicates():
    # case, digits and unicode punctuation do not make lines different (cc_net's normalize_for_dedup)
    kept, _ = dedup_shard([doc("Posted on 12/03/2021 «News»\nalpha"), doc("posted on 01/01/1999 News\nbeta")])
    assert [d["raw_content"] for d in kept] == ["alpha", "beta"]


def test_empty_and_whitespace_lines_are_removed_even_once_in_a_shard():
    kept, _ = dedup_shard([doc("first\n   \n\nsecond\n\t")])
    assert kept[0]["raw_content"] == "first\nsecond" and kept[0]["line_ids"] == [0, 3]


def test_hashes_are_cc_nets_sha1_prefix_as_uint64():
    lines = ["Hello World", "", "Prix: 25 € «promo»", "日本語のテキスト"]
    hashes = line_hashes("\n".join(lines))
    assert hashes.dtype == np.dtype("<u8")
    assert [int(h) for h in hashes] == [cc_net_hash(line) for line in lines]


def test_earlier_line_ids_are_carried_through_as_cc_net_does():
    d = doc("kept line\ndup line", line_ids=[3, 7])
    out = dedup_document(d, DuplicateLineSet(line_hashes("dup line")))
    assert out["line_ids"] == [3]


def test_bad_input_does_not_crash():
    lone_surrogate = "text with a lone surrogate \ud800 inside"
    kept, _ = dedup_shard([doc(lone_surrogate), {"raw_content": None}, {"url": "no content"}])
    assert [d["raw_content"] for d in kept] == [lone_surrogate]


@pytest.fixture(scope="module")
def real_shard() -> list[dict]:
    """Pages cut from real text, with boilerplate lines shared between some pages."""
    text = shared_path("realdata", "corpora", "botchan_en.txt").read_text(encoding="utf-8").split("\n")
    rng = random.Random(3)
    boiler = ["Share this page", "Subscribe to our newsletter", "Page 1 of 12", "Cookies help us deliver our services."]
    docs = []
    for start in range(0, len(text) - 40, 35):  # pages overlap by 5 lines: shared between two pages
        lines = text[start : start + 40]
        for _ in range(rng.randrange(3)):
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(boiler))
        for _ in range(rng.randrange(3)):  # a line of the page repeated inside it
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(lines))
        docs.append(doc("\n".join(lines), url=f"https://example.com/page{len(docs)}"))
    return docs


def test_real_shard_matches_the_brute_force_rule(real_shard):
    kept, dups = dedup_shard(real_shard)
    expected = brute_force(real_shard)
    assert [(d["raw_content"], d["line_ids"]) for d in kept] == [(e["raw_content"], e["line_ids"]) for e in expected]
    assert len(dups) > 0
    # the fixture exercises both rules: some first copies of in-page repeats survive, shared lines do not
    originals = {d["url"]: d["raw_content"].split("\n") for d in real_shard}
    internal_repeats_kept = [
        line for d in kept for line in d["raw_content"].split("\n") if originals[d["url"]].count(line) > 1
    ]
    assert internal_repeats_kept


def test_pass_one_hashes_reused_in_pass_two_give_the_same_documents(real_shard):
    counter = ShardLineHashes()
    pass_one = [counter.add(d["raw_content"]) for d in real_shard]
    dups = counter.duplicates()
    for doc, hashes in zip(real_shard, pass_one, strict=True):
        assert dedup_document(doc, dups, hashes) == dedup_document(doc, dups)


def test_result_does_not_depend_on_buffering_or_on_how_the_shard_is_split(real_shard):
    whole = ShardLineHashes()
    for d in real_shard:
        whole.add(d["raw_content"])
    tiny_buffer = ShardLineHashes(buffer_size=64)  # compacts many times
    for d in real_shard:
        tiny_buffer.add(d["raw_content"])
    halves = [ShardLineHashes(buffer_size=1000), ShardLineHashes(buffer_size=1000)]
    for i, d in enumerate(real_shard):
        halves[i % 2].add(d["raw_content"])
    merged = halves[1].merge(halves[0])
    assert whole.duplicates() == tiny_buffer.duplicates() == merged.duplicates()
    assert merged.n_lines == whole.n_lines and merged.n_docs == whole.n_docs


def test_memory_is_eight_bytes_per_distinct_line(real_shard):
    hashes = ShardLineHashes(buffer_size=256)
    for d in real_shard:
        hashes.add(d["raw_content"])
    distinct = len({normalize_for_dedup(line) for d in real_shard for line in d["raw_content"].split("\n")})
    assert hashes.n_distinct == distinct
    assert hashes.nbytes <= 8 * (distinct + 256 + 40)  # compacted arrays + at most one buffer


def test_duplicate_set_pickles_for_beam_side_inputs(real_shard):
    counter = ShardLineHashes()
    for d in real_shard:
        counter.add(d["raw_content"])
    dups = counter.duplicates()
    again = pickle.loads(pickle.dumps(dups))
    assert again == dups
    sample = line_hashes(real_shard[0]["raw_content"])
    assert np.array_equal(again.contains(sample), dups.contains(sample))
    assert pickle.loads(pickle.dumps(counter)).duplicates() == dups
