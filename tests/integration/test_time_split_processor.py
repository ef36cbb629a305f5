"""The time split through the shard processor: with LMs and the RPv2 artifacts, every model's seconds
land in the stage that called it, inside that stage's time, and the summary's split adds up."""

from __future__ import annotations

import pytest
from conftest import shared_path
from pipeline_corpus import SNAPSHOT, build_corpus_mirror, build_corpus_models

from pipeline.io.uris import resolve
from pipeline.shard.processor import ShardProcessor, ShardTask, StageSettings
from pipeline.shard.stats import build_summary, format_table
from pipeline.sources.listing import read_listing
from pipeline.transforms.run import load_stage_cutoffs

MODEL_STAGES = {"fasttext_lid": "lid", "sentencepiece": "perplexity", "kenlm": "perplexity",
                "classifiers": "signals", "dsir": "signals"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("time-split")
    relpaths = build_corpus_mirror(root / "mirror", files=2, docs_per_file=36, seed=5)
    models_dir, cutoffs = build_corpus_models(root / "models", root / "mirror", relpaths)
    settings = StageSettings.create(
        output=str(root / "out"), models_dir=models_dir, artifacts=str(shared_path("groundtruth", "rpv2", "artifacts")),
        languages=("en", "de", "fr"), cutoffs=load_stage_cutoffs(cutoffs),
    )
    files = tuple(resolve(str(root / "mirror"), p) for p in read_listing(str(root / "mirror"), SNAPSHOT))
    processor = ShardProcessor(settings)
    processor.load()
    first = processor.process(ShardTask(SNAPSHOT, 0, files[:1]))
    second = processor.process(ShardTask(SNAPSHOT, 1, files[1:]))
    return first, second


def test_each_model_is_timed_inside_the_stage_that_calls_it(run):
    for stats in run:
        assert set(stats.model_seconds) == set(MODEL_STAGES)
        assert all(seconds > 0 for seconds in stats.model_seconds.values())
        assert set(stats.stage_model_seconds) == set(MODEL_STAGES.values())
        for stage in stats.stage_model_seconds:
            in_stage = sum(s for model, s in stats.model_seconds.items() if MODEL_STAGES[model] == stage)
            assert stats.stage_model_seconds[stage] == pytest.approx(in_stage)
            assert stats.stage_model_seconds[stage] <= stats.stage_seconds[stage]


def test_model_time_is_drained_per_shard_not_carried_over(run):
    first, second = run
    # the second shard's LID seconds are its own: at most its LID stage time, whatever the first took
    assert second.model_seconds["fasttext_lid"] <= second.stage_seconds["lid"]
    assert first.model_seconds["fasttext_lid"] <= first.stage_seconds["lid"]


def test_the_summary_splits_the_stage_time_into_models_and_own_code(run):
    from pipeline.shard.stats import merge_stats

    stats = merge_stats(run)
    summary = build_summary(stats, wall_seconds=1.0)
    split = summary["time_split"]
    assert split["stage_seconds"] == pytest.approx(sum(stats.stage_seconds.values()), abs=1e-3)
    assert split["model_seconds"] == pytest.approx(sum(stats.model_seconds.values()), abs=1e-3)
    assert split["own_code_seconds"] == pytest.approx(split["stage_seconds"] - split["model_seconds"], abs=2e-3)
    assert 0 < split["own_code_share"] < 1
    for name, stage in summary["stages"].items():
        assert stage["model_seconds"] == pytest.approx(stats.stage_model_seconds.get(name, 0.0), abs=1e-3)
    table = format_table(summary)
    for model in MODEL_STAGES:
        assert f"    {model}" in table
