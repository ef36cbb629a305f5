"""The run summary's time split: seconds inside the model libraries (fastText LID, SentencePiece, KenLM,
the fastText quality classifiers, DSIR) versus rpv2's own code, per stage and per model, on the real
models and artifacts in ../shared."""

from __future__ import annotations

import shutil
import time

import pytest
from conftest import shared_path
from pipeline_corpus import sentences

from pipeline.ccnet.language_id import LanguageIdentifier
from pipeline.ccnet.model_time import MODELS, ModelTime
from pipeline.ccnet.perplexity import LanguageModels, PerplexityScorer
from pipeline.ccnet.steps import IdentifyLanguage, Perplexity
from pipeline.shard.stats import ShardStats, build_summary, format_table, merge_stats, time_split

SP_MODEL = shared_path("realdata", "models", "sentencepiece", "botchan_en_unigram_1000.model")
TEST_ARPA = shared_path("realdata", "models", "kenlm", "test.arpa")
ARTIFACTS = shared_path("groundtruth", "rpv2", "artifacts")


def documents(language: str, count: int = 12) -> list[str]:
    pool = sentences(language)
    return ["\n".join(pool[i * 5:(i + 1) * 5]) for i in range(count)]


def test_a_timed_call_adds_its_seconds_even_when_it_raises_and_drain_starts_again():
    clock = ModelTime()

    def slow(seconds: float) -> float:
        time.sleep(seconds)
        if seconds > 0.015:
            raise ValueError("too slow")
        return seconds

    timed = clock.timed("kenlm", slow)
    assert timed(0.01) == 0.01
    with pytest.raises(ValueError):
        timed(0.02)
    drained = clock.drain()
    assert set(drained) == {"kenlm"}
    assert drained["kenlm"] >= 0.03
    assert clock.drain() == {}


def test_lid_step_times_its_fasttext_calls_within_the_step_time():
    step = IdentifyLanguage(LanguageIdentifier(), threshold=0.5)
    step.load()
    started = time.perf_counter()
    results = [step({"raw_content": text}) for text in documents("en")]
    elapsed = time.perf_counter() - started
    assert all(doc["language"] == "en" for doc in results)
    seconds = step.model_time.drain()
    assert set(seconds) == {"fasttext_lid"}
    assert 0 < seconds["fasttext_lid"] <= elapsed


def test_perplexity_times_sentencepiece_and_kenlm_apart_and_keeps_the_value(tmp_path):
    shutil.copy(SP_MODEL, tmp_path / "en.sp.model")
    shutil.copy(TEST_ARPA, tmp_path / "en.arpa")
    step = Perplexity(LanguageModels(tmp_path), ["en"])
    step.load()
    texts = documents("en")
    started = time.perf_counter()
    values = [step({"raw_content": text, "language": "en"})["perplexity"] for text in texts]
    elapsed = time.perf_counter() - started
    untimed = PerplexityScorer(tmp_path / "en.sp.model", tmp_path / "en.arpa")
    assert values == [untimed.perplexity(text) for text in texts]  # timing changes no value
    seconds = step.model_time.drain()
    assert set(seconds) == {"sentencepiece", "kenlm"}
    assert all(s > 0 for s in seconds.values())
    assert sum(seconds.values()) <= elapsed


def test_signals_time_the_classifiers_and_dsir_inside_the_step():
    from pipeline.shard.annotators import SignalsAnnotator

    annotator = SignalsAnnotator(str(ARTIFACTS), ("en",))
    started = time.perf_counter()
    for index, text in enumerate(documents("en", 6)):
        annotator({"raw_content": text, "language": "en", "url": f"https://en.example/{index}",
                   "source_domain": "en.example", "nlines": text.count("\n") + 1})
    elapsed = time.perf_counter() - started
    seconds = annotator.model_time.drain()
    assert set(seconds) == {"classifiers", "dsir"}
    assert all(s > 0 for s in seconds.values())
    assert sum(seconds.values()) <= elapsed


def _stats(lid: float, perplexity: float, read: float) -> ShardStats:
    stats = ShardStats(shards=1, documents_read=10, documents_kept=0, dropped={"too_short": 10})
    stats.time_stage("read", 10, read)
    stats.time_stage("lid", 8, lid)
    stats.time_stage("perplexity", 6, perplexity)
    stats.time_model("lid", "fasttext_lid", lid * 0.9)
    stats.time_model("perplexity", "sentencepiece", perplexity * 0.3)
    stats.time_model("perplexity", "kenlm", perplexity * 0.5)
    return stats


def test_the_split_is_stage_time_minus_model_time_summed_over_shards():
    parts = [_stats(2.0, 1.0, 0.5), _stats(3.0, 2.0, 0.25)]
    merged = ShardStats.from_dict(merge_stats(parts).to_dict())  # as the pipeline combines them
    split = time_split(merged)
    stage_total = sum(sum(p.stage_seconds.values()) for p in parts)
    model_total = sum(sum(p.model_seconds.values()) for p in parts)
    assert split["stage_seconds"] == pytest.approx(stage_total, abs=1e-3)
    assert split["model_seconds"] == pytest.approx(model_total, abs=1e-3)
    assert split["own_code_seconds"] == pytest.approx(stage_total - model_total, abs=1e-3)
    assert split["own_code_share"] == pytest.approx((stage_total - model_total) / stage_total, abs=1e-3)
    assert list(split["by_model"]) == [m for m in MODELS if m in merged.model_seconds]  # declared order
    assert split["by_model"]["kenlm"] == pytest.approx(sum(p.model_seconds["kenlm"] for p in parts), abs=1e-3)
    summary = build_summary(merged, wall_seconds=1.0)
    assert summary["time_split"] == split
    stages = summary["stages"]
    assert stages["lid"]["model_seconds"] == pytest.approx(sum(p.stage_model_seconds["lid"] for p in parts), abs=1e-3)
    assert stages["read"]["model_seconds"] == 0.0
    table = format_table(summary)
    assert "time split" in table
    models_line = next(line for line in table.splitlines() if line.startswith("  models"))
    own_line = next(line for line in table.splitlines() if line.startswith("  own code"))
    assert f"{split['model_seconds']:.2f}s" in models_line
    assert f"{split['own_code_seconds']:.2f}s {split['own_code_share']:.0%}" in own_line


def test_stats_from_before_the_split_still_load_and_summarize():
    old = _stats(1.0, 1.0, 1.0).to_dict()
    del old["model_seconds"], old["stage_model_seconds"]  # a shard record written by an earlier version
    summary = build_summary(ShardStats.from_dict(old), wall_seconds=1.0)
    assert summary["time_split"]["model_seconds"] == 0.0
    assert summary["time_split"]["own_code_share"] == 1.0
