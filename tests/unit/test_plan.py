"""The declared step list's checks: a step order that cannot run is refused, naming the rule, before
any work starts (pipeline/shard/plan.py)."""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.shard.plan import PlanError, check_plan

DEFAULT_ORDER = ["read", "line_dedup", "lid", "keep_language", "perplexity", "bucket", "signals", "minhash"]

# -- the plan's checks, before any work -------------------------------------------------------------


def test_the_default_config_declares_ccnet_then_rpv2_steps_in_order():
    assert list(load_config().pipeline) == DEFAULT_ORDER


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (["read", "lid", "tokenize"], "unknown step(s) 'tokenize'"),
        (["read", "lid", "lid"], "listed twice: lid"),
        (["lid", "read"], "first step must be 'read'"),
        (["read", "line_dedup"], "step 'lid' is required"),
        (["read", "lid", "bucket", "perplexity"], "step 'bucket' needs 'perplexity' before it"),
        (["read", "keep_language", "lid"], "step 'keep_language' needs 'lid' before it"),
    ],
)
def test_an_impossible_order_is_refused_with_the_rule_it_breaks(steps, message):
    with pytest.raises(PlanError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_plan(steps)


def test_the_config_error_names_the_pipeline_key():
    with pytest.raises(ConfigError, match=r"^pipeline: .*step 'bucket' needs 'perplexity' before it"):
        load_config(None, {"pipeline": "read,lid,bucket"})
