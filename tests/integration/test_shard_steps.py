"""The declared step list: its checks, per-step counts and times, a user's order, and shard groups
(cc_net's hash_in_mem), on a CommonCrawl-layout mirror of real sentences."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pipeline_corpus import BOILERPLATE, SNAPSHOT, build_corpus_mirror, sentences

from pipeline.io.uris import resolve
from pipeline.sample.mirror import build_mirror, segment_relpath
from pipeline.shard.processor import ShardProcessor, ShardTask, StageSettings
from pipeline.sources.listing import read_listing, shard_paths

DEFAULT_ORDER = ["read", "line_dedup", "lid", "keep_language", "perplexity", "bucket", "signals", "minhash"]

# -- per-step accounting on a real-sentence mirror --------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mirror")
    build_corpus_mirror(root, files=2, docs_per_file=24, seed=3)
    return root


def _task(mirror: Path, shard: int = 0, num_shards: int = 1) -> ShardTask:
    paths = read_listing(str(mirror), SNAPSHOT)
    return ShardTask(SNAPSHOT, shard, tuple(resolve(str(mirror), p) for p in shard_paths(paths, num_shards, shard)))


def test_each_step_is_counted_and_timed_and_the_counts_chain(mirror, tmp_path):
    settings = StageSettings.create(output=str(tmp_path), languages=("en", "de", "fr"))
    stats = ShardProcessor(settings).process(_task(mirror))
    assert list(stats.stage_documents) == [*DEFAULT_ORDER, "write"]
    assert all(seconds >= 0 for seconds in stats.stage_seconds.values())
    entered = stats.stage_documents
    # read hands on what it did not drop; each later step hands on what it did not drop
    assert entered["line_dedup"] == stats.documents_read - stats.dropped["too_short"]
    assert entered["lid"] == entered["line_dedup"] - stats.dropped["empty_after_line_dedup"]
    assert entered["keep_language"] == entered["lid"] - stats.dropped.get("language_score_below_threshold", 0)
    assert entered["perplexity"] == entered["keep_language"] - stats.dropped["language_not_kept"]
    assert entered["perplexity"] == entered["bucket"] == entered["signals"] == entered["minhash"]
    assert entered["write"] == stats.documents_kept == entered["minhash"]


def test_the_summary_shows_per_stage_time_and_rate(mirror, tmp_path):
    from pipeline.shard.stats import build_summary, format_table

    stats = ShardProcessor(StageSettings.create(output=str(tmp_path))).process(_task(mirror))
    summary = build_summary(stats, wall_seconds=1.0)
    assert list(summary["stages"]) == [*DEFAULT_ORDER, "write"]
    lid = summary["stages"]["lid"]
    assert lid["documents"] == stats.stage_documents["lid"]
    assert lid["docs_per_second"] == pytest.approx(lid["documents"] / stats.stage_seconds["lid"], abs=0.06)
    assert lid["seconds"] == pytest.approx(stats.stage_seconds["lid"], abs=0.0006)
    assert abs(sum(s["share"] for s in summary["stages"].values()) - 1.0) < 0.01
    table = format_table(summary)
    assert "stage (worker-seconds, documents in, docs/s)" in table and "  perplexity" in table


def test_a_user_order_without_line_dedup_keeps_the_boilerplate(mirror, tmp_path):
    steps = ["read", "lid", "keep_language", "perplexity", "bucket"]
    settings = StageSettings.create(output=str(tmp_path), languages=("en", "de", "fr"), pipeline=steps)
    stats = ShardProcessor(settings).process(_task(mirror))
    assert "empty_after_line_dedup" not in stats.dropped
    assert list(stats.stage_documents) == [*steps, "write"]
    rows = [r for f in sorted(tmp_path.rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert any(set(row["raw_content"].split("\n")) & set(BOILERPLATE) for row in rows)
    assert "rps_doc_word_count" not in rows[0] and "signature_sim0.7" not in rows[0]


# -- shard groups: cc_net's hash_in_mem -------------------------------------------------------------


@pytest.fixture(scope="module")
def two_shard_mirror(tmp_path_factory) -> tuple[Path, str]:
    """Two one-file shards of real English sentences whose pages share one line across the shards only."""
    root = tmp_path_factory.mktemp("groups")
    pool = sentences("en")
    shared = pool[0] + " " + pool[1]

    def page(shard: int, n: int) -> dict:
        body = [" ".join(pool[10 + 40 * shard + 8 * n + k : 12 + 40 * shard + 8 * n + k]) for k in range(6)]
        return {"url": f"https://en.example/{shard}/{n}", "title": f"page {n}",
                "raw_content": "\n".join([*body[:3], shared, *body[3:]]) if n == 0 else "\n".join(body)}

    layout = {segment_relpath(SNAPSHOT, shard): [page(shard, n) for n in range(3)] for shard in range(2)}
    build_mirror(root, SNAPSHOT, layout)
    return root, shared


def _run(mirror: Path, out: Path, hash_in_mem: int, selected=None) -> dict[str, list[str]]:
    settings = StageSettings.create(output=str(out), languages=("en",), signals=False, minhash=False,
                                    hash_in_mem=hash_in_mem)
    tasks = [_task(mirror, shard, 2) for shard in range(2)]
    processor = ShardProcessor(settings)
    if hash_in_mem == 1:
        stats = [processor.process(task) for task in tasks if selected is None or task.shard in selected]
    else:
        stats = processor.process_group(tasks, selected)
    for shard_stats in stats:
        shard_stats.check_accounting()
    return {r["url"]: r["raw_content"].split("\n")
            for f in sorted(out.rglob("*.parquet")) for r in pq.read_table(f).to_pylist()}


def test_a_line_shared_only_across_shards_survives_per_shard_dedup(two_shard_mirror, tmp_path):
    mirror, shared = two_shard_mirror
    lines = _run(mirror, tmp_path, hash_in_mem=1)
    assert shared in lines["https://en.example/0/0"] and shared in lines["https://en.example/1/0"]


def test_a_group_of_shards_pools_its_line_hashes(two_shard_mirror, tmp_path):
    mirror, shared = two_shard_mirror
    lines = _run(mirror, tmp_path, hash_in_mem=2)
    assert len(lines) == 6
    assert all(shared not in page for page in lines.values())


def test_a_selected_shard_of_a_group_gives_the_same_output_alone(two_shard_mirror, tmp_path):
    mirror, _ = two_shard_mirror
    both = _run(mirror, tmp_path / "both", hash_in_mem=2)
    alone = _run(mirror, tmp_path / "alone", hash_in_mem=2, selected={1})
    assert alone == {url: page for url, page in both.items() if "/1/" in url}
    assert not list((tmp_path / "alone").rglob("0000.parquet"))
