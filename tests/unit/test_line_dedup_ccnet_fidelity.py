"""cc_net's line dedup on real web text, and its grouping of shards (pipeline/ccnet/line_dedup.py).

The expectations are written by hand from cc_net's ``dedup.py`` / ``mine.py``: ``HashesCollector``
adds a document's line hashes as one batch, so a hash becomes a duplicate only when another document
of the group has it; ``finalize_doc`` keeps the first copy of a line inside a document; ``mine`` gives
every shard the hash sets of its group of ``hash_in_mem`` consecutive shards, loaded into one set.
The lines are real CommonCrawl lines from RedPajama-1T's CCNet output (groundtruth/ccnet_rpv1) and
real Wikipedia paragraphs (wikitext-2).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter

import numpy as np
import pytest
from conftest import shared_path

from pipeline.ccnet.line_dedup import ShardLineHashes, dedup_shard, dedup_shards, hash_group
from pipeline.ccnet.text_normalization import normalize_for_dedup


@pytest.fixture(scope="module")
def web() -> dict[str, str]:
    """Named real lines of CCNet documents (cc_en_head-0091.jsonl, document / line)."""
    path = shared_path("realdata", "groundtruth", "ccnet_rpv1", "cc_en_head-0091.jsonl")
    rows = [json.loads(row)["text"].split("\n") for row in path.read_text(encoding="utf-8").splitlines()]
    lines = {
        "invoice": rows[0][0],
        "factoring": rows[0][1],
        "pressure": rows[1][0],
        "headmaster": rows[1][1],
        "decade": rows[1][2],
        "ruby": rows[2][0],
        "pentagon": rows[3][0],
        "check_out": rows[3][2],
        "thanks": rows[3][3],
        "dhs": rows[3][5],
    }
    # the lines this file relies on, as they are in the data
    assert lines["check_out"] == "Check out the full article via the link above."
    assert lines["thanks"] == "Thanks Killtown for the reminder!"
    assert lines["dhs"] == "DHS on Thu, 11/02/2006 - 6:21pm."
    assert lines["decade"] == "it ran for over a decade."
    return lines


def page(url: str, *lines: str) -> dict:
    return {"url": url, "raw_content": "\n".join(lines)}


def kept_lines(docs: list[dict]) -> list[tuple[str, list[str], list[int]]]:
    return [(d["url"], d["raw_content"].split("\n"), d["line_ids"]) for d in docs]


def cc_net_hash(line: str) -> int:
    """cc_net's str_hash of a line that is already normalized (lower-case, no digit)."""
    return int.from_bytes(hashlib.sha1(line.encode("utf-8")).digest()[:8], "little")


def test_one_shard_of_real_pages(web):
    # a comment header whose date differs: the same line once digits are normalized (cc_net)
    dhs_later = "DHS on Thu, 03/07/2007 - 9:45pm."
    a = page("a", web["invoice"], web["check_out"], web["factoring"], web["check_out"], web["dhs"])
    b = page("b", web["pressure"], dhs_later, web["headmaster"], web["pressure"], web["thanks"], web["thanks"])
    c = page("c", web["thanks"], web["decade"])
    kept, _ = dedup_shard([a, b, c])
    assert kept_lines(kept) == [
        # check_out repeats inside a only: first copy kept; dhs is also in b: removed
        ("a", [web["invoice"], web["check_out"], web["factoring"]], [0, 1, 2]),
        # pressure repeats inside b only: first copy kept; thanks is also in c: every copy removed
        ("b", [web["pressure"], web["headmaster"]], [0, 2]),
        ("c", [web["decade"]], [1]),
    ]
    assert [d["nlines"] for d in kept] == [3, 2, 1]
    assert [d["original_nlines"] for d in kept] == [5, 6, 2]
    assert [d["length"] for d in kept] == [
        len(web["invoice"]) + len(web["check_out"]) + len(web["factoring"]) + 2,
        len(web["pressure"]) + len(web["headmaster"]) + 1,
        len(web["decade"]),
    ]
    assert [d["original_length"] for d in kept] == [len(x["raw_content"]) for x in (a, b, c)]


@pytest.fixture(scope="module")
def three_shards(web) -> list[list[dict]]:
    """Three one-page shards; the Pentagon line is on every page, the Ruby line on pages 0 and 2."""
    return [
        [page("s0", web["ruby"], web["pentagon"], web["ruby"])],
        [page("s1", web["pentagon"], web["headmaster"])],
        [page("s2", web["pentagon"], web["decade"], web["ruby"])],
    ]


def test_per_shard_sets_by_default_keep_lines_shared_between_shards(web, three_shards):
    expected = [
        [("s0", [web["ruby"], web["pentagon"]], [0, 1])],
        [("s1", [web["pentagon"], web["headmaster"]], [0, 1])],
        [("s2", [web["pentagon"], web["decade"], web["ruby"]], [0, 1, 2])],
    ]
    assert [kept_lines(s) for s in dedup_shards(three_shards, hash_in_mem=1)] == expected
    assert [kept_lines(dedup_shard(s)[0]) for s in three_shards] == expected


def test_a_group_of_two_shards_removes_the_lines_they_share(web, three_shards):
    # groups {0, 1} and {2}: the Pentagon line goes from shards 0 and 1; shard 2 is alone
    assert [kept_lines(s) for s in dedup_shards(three_shards, hash_in_mem=2)] == [
        [("s0", [web["ruby"]], [0])],
        [("s1", [web["headmaster"]], [1])],
        [("s2", [web["pentagon"], web["decade"], web["ruby"]], [0, 1, 2])],
    ]


def test_a_group_of_all_shards_removes_every_shared_line(web, three_shards):
    assert [kept_lines(s) for s in dedup_shards(three_shards, hash_in_mem=3)] == [
        [],  # s0 had only the Ruby and Pentagon lines, both on other pages of the group
        [("s1", [web["headmaster"]], [1])],
        [("s2", [web["decade"]], [1])],
    ]


def test_one_hash_set_per_group_whether_filled_at_once_or_merged_per_shard(web, three_shards):
    pentagon = cc_net_hash(web["pentagon"].lower())
    ruby = cc_net_hash(web["ruby"].lower())
    assert normalize_for_dedup(web["pentagon"]) == web["pentagon"].lower()  # no digit, no unicode punct
    assert normalize_for_dedup(web["ruby"]) == web["ruby"].lower()

    per_shard = []
    for shard in three_shards:
        hashes = ShardLineHashes()
        for d in shard:
            hashes.add(d["raw_content"])
        per_shard.append(hashes)
    assert not per_shard[0].duplicates().contains(np.array([pentagon, ruby], dtype="<u8")).any()

    group = ShardLineHashes()  # processor flow: every document of shards 0 and 1 into one set
    for shard in three_shards[:2]:
        for d in shard:
            group.add(d["raw_content"])
    merged = per_shard[0].merge(per_shard[1])
    assert group.duplicates() == merged.duplicates()
    assert group.duplicates().contains(np.array([pentagon, ruby], dtype="<u8")).tolist() == [True, False]


def test_hash_groups_are_consecutive_runs_of_hash_in_mem_shards():
    assert [hash_group(s, 5, 1) for s in range(5)] == [range(s, s + 1) for s in range(5)]
    assert [list(hash_group(s, 5, hash_in_mem=2)) for s in range(5)] == [[0, 1], [0, 1], [2, 3], [2, 3], [4]]
    assert {hash_group(s, 5, hash_in_mem=50) for s in range(5)} == {range(0, 5)}  # cc_net's default
    with pytest.raises(ValueError):
        hash_group(0, 5, hash_in_mem=0)
    with pytest.raises(ValueError):
        hash_group(5, 5, 1)


def reference(shards: list[list[dict]], hash_in_mem: int) -> list[list[tuple[str, list[int]]]]:
    """cc_net's rule with Python sets, group by group: a normalized line in two or more documents of
    the group is dropped everywhere, a line's later copies in a document are dropped, and lines that
    normalize to nothing are dropped (our documented deviation)."""
    out: list[list[tuple[str, list[int]]]] = []
    for start in range(0, len(shards), hash_in_mem):
        group = shards[start : start + hash_in_mem]
        keys = [[[normalize_for_dedup(x) for x in d["raw_content"].split("\n")] for d in s] for s in group]
        in_docs = Counter(k for s in keys for doc_keys in s for k in set(doc_keys))
        for shard, shard_keys in zip(group, keys, strict=True):
            kept = []
            for d, doc_keys in zip(shard, shard_keys, strict=True):
                seen: set[str] = set()
                ids = []
                for i, k in enumerate(doc_keys):
                    if k and in_docs[k] == 1 and k not in seen:
                        ids.append(i)
                    seen.add(k)
                if ids:
                    kept.append((d["url"], ids))
            out.append(kept)
    return out


@pytest.fixture(scope="module")
def wiki_shards() -> list[list[dict]]:
    """Five shards of pages cut from wikitext-2 paragraphs, with lines repeated inside a page and
    lines shared between pages of the same and of other shards."""
    text = shared_path("realdata", "corpora", "wikitext-2_test.txt").read_text(encoding="utf-8")
    paragraphs = [p.strip() for p in text.split("\n") if p.strip()]
    rng = random.Random(7)
    shared = rng.sample(paragraphs, 30)
    shards = []
    for s in range(5):
        docs = []
        for n in range(30):
            lines = rng.sample(paragraphs, rng.randrange(1, 10))
            for _ in range(rng.randrange(3)):
                lines.insert(rng.randrange(len(lines) + 1), rng.choice(lines))
            if rng.random() < 0.4:
                lines.insert(rng.randrange(len(lines) + 1), rng.choice(shared))
            docs.append(page(f"s{s}-{n}", *lines))
        shards.append(docs)
    return shards


@pytest.mark.parametrize("hash_in_mem", [1, 2, 3, 5])
def test_real_shards_match_the_reference_for_every_grouping(wiki_shards, hash_in_mem):
    got = [[(d["url"], d["line_ids"]) for d in s] for s in dedup_shards(wiki_shards, hash_in_mem)]
    assert got == reference(wiki_shards, hash_in_mem)


def test_larger_groups_remove_more_on_real_shards(wiki_shards):
    kept = {h: sum(d["nlines"] for s in dedup_shards(wiki_shards, h) for d in s) for h in (1, 2, 5)}
    assert kept[1] > kept[2] > kept[5] > 0
