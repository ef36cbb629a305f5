"""Exact dedup across snapshots: RPv2's semantics (newest snapshot first, first occurrence kept), no false
negatives against a brute-force set, a persisted state across runs, and the Beam pipeline on the
DirectRunner giving the same flags as the pure-Python core.

Inputs are small Parquet datasets in the pipeline's layout, built here with pyarrow from real text
(the RPv2 ground-truth documents, which include exact duplicates, and wikitext paragraphs)."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import shared_path

from dedup.exact import (
    ExactDedupState,
    KeyedDoc,
    SeenSnapshotsError,
    keyed_doc,
    merge_counts,
    output_rel_path,
    processing_order,
    refuse_seen_snapshots,
    run_exact_dedup,
    shard_tables,
    summarize,
    text_sha1,
)
from pipeline.cli import main as rpv2
from pipeline.dataset.ids import document_id, document_id_int
from pipeline.dataset.schema import MINHASH_THRESHOLDS, document_schema

# the pipeline's documents schema (ARCHITECTURE.md output contract), with the MinHash columns
DOCUMENT_SCHEMA = document_schema(minhash_thresholds=MINHASH_THRESHOLDS)


def ccnet_digest(text: str) -> str:
    """CCNet's digest form: ``sha1:`` + base32(sha1(utf-8 text))."""
    return "sha1:" + base64.b32encode(hashlib.sha1(text.encode("utf-8")).digest()).decode()


@lru_cache(maxsize=1)
def real_texts() -> tuple[str, ...]:
    """Real texts: the ground-truth documents (digest-identical exact duplicates included) + wikitext."""
    docs_file = shared_path("groundtruth", "rpv2", "public", "docs.jsonl")
    with open(docs_file, encoding="utf-8") as fh:
        texts = [json.loads(line)["raw_content"] for line in fh]
    wiki = shared_path("realdata", "corpora", "wikitext-2_test.txt").read_text(encoding="utf-8")
    texts += [p for p in wiki.split("\n") if len(p) > 300][:200]
    return tuple(texts)


def build_dataset(root: Path, snapshots: dict[str, list[str]], shards: int = 2) -> list[dict]:
    """Write ``root/documents/snapshot=<s>/language=en/bucket=<b>/<shard:04d>.parquet`` and return the rows.

    Documents of a snapshot are spread over shards and head/middle buckets; rows in a file are numbered
    from 0 as RPv2's ids require.
    """
    rows_out = []
    for snapshot, texts in snapshots.items():
        files: dict[tuple[int, str], list[str]] = {}
        for i, text in enumerate(texts):
            files.setdefault((i % shards, "head" if i % 3 else "middle"), []).append(text)
        for (shard, bucket), file_texts in sorted(files.items()):
            rows = []
            for row, text in enumerate(file_texts):
                doc_id = document_id(snapshot, shard, "en", bucket, row)
                rows.append(
                    {
                        "shard_id": doc_id.rpartition("/")[0],
                        "id": doc_id,
                        "id_int": document_id_int(doc_id),
                        "digest": ccnet_digest(text),
                        "raw_content": text,
                        "language": "en",
                        "bucket": bucket,
                    }
                )
            path = root / "documents" / f"snapshot={snapshot}" / "language=en" / f"bucket={bucket}" / f"{shard:04d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows, schema=DOCUMENT_SCHEMA), path)
            rows_out.extend(rows)
    return rows_out


def brute_force_flags(rows: list[dict], key_mode: str = "digest", seen: set[str] | None = None) -> dict[str, bool]:
    """The specification: exact set membership in RPv2's processing order."""
    seen = set() if seen is None else seen
    docs = [keyed_doc(r, key_mode)[0] for r in rows]
    flags = {}
    for doc in processing_order(docs):
        flags[doc.doc_id] = doc.key in seen
        seen.add(doc.key)
    return flags


def snapshot_texts(seed: int, n: int, pool: tuple[str, ...]) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(pool) for _ in range(n)]  # draws with replacement: repeats inside the snapshot


@pytest.fixture(scope="module")
def three_snapshots(tmp_path_factory):
    pool = real_texts()[:150]
    root = tmp_path_factory.mktemp("run")
    rows = build_dataset(
        root,
        {
            "2023-06": snapshot_texts(1, 120, pool),
            "2023-14": snapshot_texts(2, 120, pool),
            "2023-23": snapshot_texts(3, 120, pool),
        },
    )
    return root, rows


def read_flags(out: Path) -> dict[str, bool]:
    table = pq.read_table(out / "is_duplicate_exact")
    return dict(zip(table.column("id").to_pylist(), table.column("is_duplicate_exact").to_pylist(), strict=True))


def test_core_within_one_run_equals_brute_force_exactly(three_snapshots):
    _, rows = three_snapshots
    state = ExactDedupState.create(None, num_partitions=8, expected_count=4 * len(rows))
    flags, stats, counts = run_exact_dedup(rows, state)
    ours = {doc.doc_id: flag for doc, flag in flags}
    expected = brute_force_flags(rows)
    print(f"exact dedup: {counts.documents} docs, {counts.duplicates} flagged, brute force {sum(expected.values())}")
    # inside a run the keep-first rule is applied by grouping on the key: no false negative and no
    # false positive (the Bloom filter only answers for keys of earlier runs)
    assert ours == expected
    assert counts.documents == len(rows) and counts.bad_records == 0
    assert sum(s["run_keys"] for s in stats) == len({r["digest"] for r in rows})


def test_flags_do_not_depend_on_input_order(three_snapshots, tmp_path):
    _, rows = three_snapshots
    earlier = [r for r in rows if r["id"].startswith("2023-06")]
    later = [r for r in rows if not r["id"].startswith("2023-06")]
    results = []
    for seed in (1, 2, 3):
        state_dir = str(tmp_path / f"state{seed}")
        run_exact_dedup(earlier, ExactDedupState.open_or_create(state_dir, 4, 2000, 0.01, "digest"))
        shuffled = later[:]
        random.Random(seed).shuffle(shuffled)
        state = ExactDedupState.open_or_create(state_dir, 4, 2000, 0.01, "digest")
        results.append({d.doc_id: f for d, f in run_exact_dedup(shuffled, state)[0]})
    assert results[0] == results[1] == results[2]


def test_newest_snapshot_kept_then_lowest_shard_and_row():
    text = "same text " * 40
    rows = []
    for snapshot, shard, row in [("2023-06", 0, 0), ("2023-14", 1, 5), ("2023-14", 0, 7), ("2023-14", 0, 3)]:
        doc_id = document_id(snapshot, shard, "en", "head", row)
        rows.append({"id": doc_id, "id_int": document_id_int(doc_id), "digest": ccnet_digest(text)})
    state = ExactDedupState.create(None, num_partitions=4, expected_count=100)
    flags = {doc.doc_id: flag for doc, flag in run_exact_dedup(rows, state)[0]}
    kept = [i for i, f in flags.items() if not f]
    assert kept == ["2023-14/0000/en_head.json.gz/3"]  # newest snapshot, then shard 0, then row 3 < 7


def test_processing_order_is_numeric_by_row():
    docs = [KeyedDoc("2023-06", f"2023-06/0000/en_head.json.gz/{r}", None, "k", "k") for r in (10, 2, 1)]
    assert [d.doc_id.rsplit("/", 1)[1] for d in processing_order(docs)] == ["1", "2", "10"]


def test_ground_truth_exact_duplicates_are_flagged_once_each():
    docs_file = shared_path("groundtruth", "rpv2", "public", "docs.jsonl")
    with open(docs_file, encoding="utf-8") as fh:
        docs = [json.loads(line) for line in fh]
    state = ExactDedupState.create(None, num_partitions=4, expected_count=1000)
    flags = {doc.doc_id: flag for doc, flag in run_exact_dedup(docs, state)[0]}
    digests = Counter(d["digest"] for d in docs)
    expected_dups = sum(c - 1 for c in digests.values())
    assert expected_dups >= 4  # README: a triple and two pairs
    assert sum(flags.values()) == expected_dups == sum(brute_force_flags(docs).values())
    for d in docs:
        if d.get("dup_of"):  # every member of a duplicate set but one is flagged
            group = [x["id"] for x in docs if x["digest"] == d["digest"]]
            assert sum(not flags[i] for i in group) == 1


def test_text_sha1_key_uses_the_final_text_not_the_digest():
    rows = []
    for row, digest in enumerate(["sha1:AAAA", "sha1:BBBB"]):  # same text, different WET digests
        doc_id = document_id("2023-06", 0, "en", "head", row)
        rows.append({"id": doc_id, "id_int": document_id_int(doc_id), "digest": digest, "raw_content": "x" * 400})
    by_digest = run_exact_dedup(rows, ExactDedupState.create(None, 2, 10, key_mode="digest"))[0]
    by_text = run_exact_dedup(rows, ExactDedupState.create(None, 2, 10, key_mode="text-sha1"), "text-sha1")[0]
    assert [f for _, f in by_digest] == [False, False]
    assert [f for _, f in by_text] == [False, True]
    assert by_text[0][0].key == text_sha1("x" * 400)
    assert by_digest[0][0].digest == "AAAA"  # RPv2 strips "sha1:"


def test_bad_records_are_counted_not_fatal():
    good = document_id("2023-06", 0, "en", "head", 0)
    rows = [
        {"id": good, "id_int": 1, "digest": "sha1:X"},
        {"id": None, "digest": "sha1:Y"},
        {"id": document_id("2023-06", 0, "en", "head", 1), "digest": None},
        {"id": "no-snapshot-here/1", "digest": "sha1:Z"},
        {"id": document_id("2023-06", 0, "en", "head", 2), "id_int": "not a number", "digest": "sha1:W"},
    ]
    flags, _, counts = run_exact_dedup(rows, ExactDedupState.create(None, 2, 10))
    assert [d.doc_id for d, _ in flags] == [good]
    assert counts.bad_reasons == {"missing_id": 1, "missing_digest": 1, "no_snapshot_in_id": 1, "bad_id_int": 1}
    text_rows = [{"id": good, "digest": "sha1:X", "raw_content": b"bytes, not text"}]
    _, _, counts = run_exact_dedup(text_rows, ExactDedupState.create(None, 2, 10, key_mode="text-sha1"), "text-sha1")
    assert counts.bad_reasons == {"missing_raw_content": 1}


def test_state_flags_documents_seen_in_earlier_runs(three_snapshots, tmp_path):
    root, rows = three_snapshots
    state_dir = tmp_path / "state"
    by_snapshot = {}
    for row in rows:
        by_snapshot.setdefault(row["id"].split("/")[0], []).append(row)
    seen: set[str] = set()
    for generation, snapshot in enumerate(["2023-06", "2023-14", "2023-23"], start=1):
        state = ExactDedupState.open_or_create(str(state_dir), 8, 4 * len(rows), 0.01, "digest")
        assert state.generation == generation - 1
        flags = {d.doc_id: f for d, f in run_exact_dedup(by_snapshot[snapshot], state)[0]}
        expected = brute_force_flags(by_snapshot[snapshot], seen=seen)  # `seen` carries earlier snapshots
        assert all(flags[i] for i, f in expected.items() if f)  # no false negatives across runs
        assert sum(flags[i] and not f for i, f in expected.items()) <= 0.01 * len(expected)
    final = ExactDedupState.load(str(state_dir))
    assert final.snapshots == ["2023-23", "2023-14", "2023-06"] and final.generation == 3
    assert final.already_seen(["2023-14", "2024-10"]) == ["2023-14"]


def test_cli_beam_direct_runner_matches_core_and_brute_force(three_snapshots, tmp_path, capsys):
    root, rows = three_snapshots
    out_beam, out_local = tmp_path / "beam", tmp_path / "local"
    common = ["--partitions", "8", "--expected-count", str(4 * len(rows))]
    assert rpv2(["dedup", "exact", str(root), "--output", str(out_beam), "--state", str(tmp_path / "s1"), *common]) == 0
    printed = capsys.readouterr().out
    assert "exact dedup" in printed and "memory per partition" in printed
    assert rpv2(["dedup", "exact", str(root), "--output", str(out_local), "--engine", "local", *common]) == 0
    beam_flags, local_flags = read_flags(out_beam), read_flags(out_local)
    assert beam_flags == local_flags == brute_force_flags(rows)
    # results mirror the documents layout, file by file; RPv2's duplicates schema holds the flagged ones
    sources = sorted(p.relative_to(root / "documents") for p in (root / "documents").rglob("*.parquet"))
    assert sorted(p.relative_to(out_beam / "is_duplicate_exact") for p in (out_beam / "is_duplicate_exact").rglob("*.parquet")) == sources
    dups = pq.read_table(out_beam / "duplicates_exact")
    assert dups.schema.names[:3] == ["shard_id", "doc_id", "digest"]
    assert sorted(dups.column("doc_id").to_pylist()) == sorted(i for i, f in beam_flags.items() if f)
    summary = json.loads((out_beam / "duplicates_exact" / "_summary.json").read_text())
    assert summary["documents"] == len(rows) and summary["duplicates"] == sum(beam_flags.values())
    assert summary["max_partition_memory_bytes"] > 0
    # the same snapshots again on the same state: refused with a clear message, not silently all-flagged
    again = ["dedup", "exact", str(root), "--output", str(out_beam), "--state", str(tmp_path / "s1"), *common]
    assert rpv2(again) == 2
    captured = capsys.readouterr()
    assert "already holds snapshot" in captured.err and "error" not in captured.out


def test_reruns_write_identical_bytes(three_snapshots, tmp_path):
    root, _ = three_snapshots
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        args = ["dedup", "exact", str(root), "--output", str(out), "--engine", "local", "--partitions", "4",
                "--expected-count", "2000"]
        assert rpv2(args) == 0
        outs.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*.parquet"))})
    assert outs[0] == outs[1] and len(outs[0]) > 0


def test_beam_multiprocess_direct_runner_gives_the_same_flags(three_snapshots, tmp_path):
    root, rows = three_snapshots
    out = tmp_path / "mp"
    args = ["dedup", "exact", str(root), "--output", str(out), "--partitions", "4", "--expected-count", "2000",
            "--direct_running_mode=multi_processing", "--direct_num_workers=2"]  # Beam's own flags pass through
    assert rpv2(args) == 0
    reference = {d.doc_id: f for d, f in run_exact_dedup(rows, ExactDedupState.create(None, 4, 2000))[0]}
    assert read_flags(out) == reference


def test_beam_state_across_runs_flags_earlier_snapshots_and_counts_bad_files(tmp_path, capsys):
    pool = real_texts()[:120]
    old_run, new_run = tmp_path / "run-2023-06", tmp_path / "run-2023-14"
    old_rows = build_dataset(old_run, {"2023-06": snapshot_texts(11, 80, pool)})
    new_rows = build_dataset(new_run, {"2023-14": snapshot_texts(12, 80, pool)})
    corrupt = new_run / "documents" / "snapshot=2023-14" / "language=en" / "bucket=head" / "0009.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    state = str(tmp_path / "state")
    common = ["--state", state, "--partitions", "4", "--expected-count", "1000"]
    assert rpv2(["dedup", "exact", str(old_run), *common]) == 0
    assert rpv2(["dedup", "exact", str(new_run), *common]) == 0
    assert "bad_files=1" in capsys.readouterr().out
    seen: set[str] = set()
    brute_force_flags(old_rows, seen=seen)
    expected = brute_force_flags(new_rows, seen=seen)
    flags = read_flags(new_run)
    assert set(flags) == set(expected)
    assert all(flags[i] for i, f in expected.items() if f)  # seen in the earlier run's snapshot -> flagged
    assert sum(expected.values()) > sum(brute_force_flags(new_rows).values())  # cross-run hits happened
    assert ExactDedupState.load(state).snapshots == ["2023-14", "2023-06"]


def test_results_mirror_the_documents_layout():
    assert output_rel_path("is_duplicate_exact", "2023-06/0007/pt_br_middle.json.gz") == (
        "is_duplicate_exact/snapshot=2023-06/language=pt_br/bucket=middle/0007.parquet"
    )
    other = output_rel_path("duplicates_exact", "2023-06/custom-source")
    assert other.startswith("duplicates_exact/snapshot=2023-06/other/") and other.endswith(".parquet")


def test_run_summary_adds_up_per_snapshot_and_per_partition(three_snapshots):
    """The summary rules (pure: no Beam, no files): per-file counts summed per snapshot, partition stats
    summed, memory reported against the configured capacity."""
    _, rows = three_snapshots
    state = ExactDedupState.create(None, num_partitions=8, expected_count=4 * len(rows))
    flags, stats, counts = run_exact_dedup(rows, state)
    by_file: dict[str, list] = {}
    for doc, flag in flags:
        by_file.setdefault(doc.doc_id.rpartition("/")[0], []).append((doc, flag))
    file_counts = []
    for shard_id, items in sorted(by_file.items()):
        dup_table, flag_table = shard_tables(items)
        file_counts.append({"snapshot": shard_id.split("/")[0], "documents": flag_table.num_rows,
                            "duplicates": dup_table.num_rows})
    per_snapshot = merge_counts(reversed(file_counts))  # any order
    assert list(per_snapshot) == ["2023-06", "2023-14", "2023-23"]
    for snapshot, entry in per_snapshot.items():
        mine = [f for d, f in flags if d.snapshot == snapshot]
        assert entry == {"documents": len(mine), "duplicates": sum(mine)}
    summary = summarize([{"partition": s["partition"], "stats": s} for s in reversed(stats)], per_snapshot, state)
    assert summary["documents"] == counts.documents == len(rows)
    assert summary["duplicates"] == counts.duplicates
    assert summary["distinct_keys"] == len({r["digest"] for r in rows})
    assert [p["partition"] for p in summary["partitions"]] == sorted(s["partition"] for s in stats)
    assert summary["max_partition_keys"] <= summary["capacity_per_partition"] == state.capacity_per_partition
    assert summary["overflowed_partitions"] == 0 and summary["max_partition_memory_bytes"] > 0


def test_a_snapshot_the_state_holds_is_refused_in_one_line(tmp_path):
    state = ExactDedupState.create(str(tmp_path / "state"), 2, 100)
    state.commit(1, {}, ["2023-06"])
    refuse_seen_snapshots(state, ["2023-14"], "use a fresh state")  # a new snapshot is fine
    with pytest.raises(SeenSnapshotsError) as refused:
        refuse_seen_snapshots(state, ["2023-14", "2023-06"], "use a fresh state")
    message = str(refused.value)
    assert "already holds snapshot(s) 2023-06" in message and message.endswith("use a fresh state")
    assert "\n" not in message
