"""Importance resampling (pipeline/filter/resample.py): the Gumbel key, the distributed top-k, the law of
the draw, and the recipe's ``resample:`` validation. Pure: no Beam.

Specification: Gumbel top-k (Vieira 2014; Kool et al. 2019, "Stochastic Beams and Where to Find Them"):
the k largest ``log w_i + G_i`` (G_i iid standard Gumbel) are a sample of k items without replacement,
drawn successively with probability proportional to w_i among the items not drawn yet. RPv2's FAQ and
DSIR (Xie et al. 2023) resample RPv2's log-importance weights this way.

The statistical tests use a fixed list of seeds, so they are deterministic: they cannot flake, and a
change to the key function that broke the law of the draw fails them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import random
import subprocess
import sys
from collections import Counter

import pytest
from conftest import REPO_ROOT, shared_path
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from pipeline.filter.grammar import RecipeError
from pipeline.filter.recipe import parse_recipe
from pipeline.filter.resample import (
    gumbel,
    gumbel_key,
    is_selected,
    merge_top_k,
    parse_resample,
    push_bounded,
    threshold,
    top_k,
    uniform,
)

WEIGHT = "rps_doc_books_importance - rps_doc_openwebtext_importance"


def _rpv2_weighed_documents() -> list[tuple[str, float]]:
    """(id, books - openwebtext log-importance) of the RPv2 ground-truth documents that have both weights
    (RPv2's reference code computed them; English only)."""
    out = []
    with shared_path("groundtruth", "rpv2", "public", "expected.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            doc = json.loads(line)
            signals = doc["quality_signals"]
            books = signals["rps_doc_books_importance"][0][2]
            owt = signals["rps_doc_openwebtext_importance"][0][2]
            if books is not None and owt is not None:
                out.append((doc["id"], books - owt))
    return out


# ---- the key ------------------------------------------------------------------------------------------


def test_uniform_is_the_documented_keyed_blake2b_of_the_id():
    """u = (top 53 bits of blake2b-64(id; key = seed, 8 bytes little-endian; person 'rpv2-resample') + 0.5)
    / 2**53: the construction the module's docstring states, recomputed here from hashlib."""
    for seed, doc_id in [(0, "2023-06/0000/en_head.json.gz/0"), (17, "x"), (2**64 - 1, "é/ü"), (5, "")]:
        digest = hashlib.blake2b(doc_id.encode(), digest_size=8, key=seed.to_bytes(8, "little"),
                                 person=b"rpv2-resample").digest()
        assert uniform(seed, doc_id) == ((int.from_bytes(digest, "little") >> 11) + 0.5) / 2**53


def test_key_is_weight_plus_gumbel_noise_of_seed_and_id():
    u = uniform(3, "a/0")
    assert 0 < u < 1
    assert gumbel(3, "a/0") == -math.log(-math.log(u))
    assert gumbel_key(2.5, 3, "a/0") == 2.5 + gumbel(3, "a/0")
    assert gumbel(3, "a/0") != gumbel(4, "a/0") and gumbel(3, "a/0") != gumbel(3, "a/1")


def test_key_does_not_depend_on_the_process():
    """Workers are other processes (another PYTHONHASHSEED, another start order): same keys."""
    ids = [doc_id for doc_id, _ in _rpv2_weighed_documents()][:20]
    code = ("import json,sys; from pipeline.filter.resample import gumbel_key; "
            "print(json.dumps([gumbel_key(1.25, 99, i) for i in json.loads(sys.argv[1])]))")
    for hashseed in ("0", "12345"):
        out = subprocess.run([sys.executable, "-c", code, json.dumps(ids)], capture_output=True, text=True,
                             check=True, cwd=REPO_ROOT, env={"PYTHONHASHSEED": hashseed, "PATH": ""})
        assert json.loads(out.stdout) == [gumbel_key(1.25, 99, i) for i in ids]


def test_noise_is_standard_gumbel():
    """Kolmogorov-Smirnov against Gumbel(0, 1) over 20,000 ids for one seed, and over 20,000 seeds for
    one id: the hash is a sound uniform source in both directions."""
    by_id = [gumbel(7, f"2023-06/0000/en_head.json.gz/{row}") for row in range(20_000)]
    by_seed = [gumbel(seed, "2023-06/0000/en_head.json.gz/0") for seed in range(20_000)]
    assert stats.kstest(by_id, stats.gumbel_r.cdf).pvalue > 0.001
    assert stats.kstest(by_seed, stats.gumbel_r.cdf).pvalue > 0.001


# ---- top k, distributed ------------------------------------------------------------------------------


def _candidates(seed: int) -> list[tuple[float, str]]:
    return [(gumbel_key(w, seed, doc_id), doc_id) for doc_id, w in _rpv2_weighed_documents()]


@pytest.mark.parametrize("k", [1, 2, 7, 40, 10_000])
def test_merged_per_file_top_k_equals_top_k_of_the_whole(k):
    """Per file (the RPv2 document files the ids name) and per random partition, merged in any order and
    grouping: the same k candidates as the top k of all of them at once."""
    every = _candidates(seed=11)
    assert len(every) > 40
    whole = top_k(every, k)
    assert whole == sorted(every, reverse=True)[:k]
    by_file: dict[str, list] = {}
    for cand in every:
        by_file.setdefault(cand[1].rsplit("/", 1)[0], []).append(cand)
    assert len(by_file) > 1
    assert merge_top_k([top_k(part, k) for part in by_file.values()], k) == whole
    heap: list = []  # a file streamed through the bounded heap the pipeline keeps per file
    for cand in every:
        push_bounded(heap, cand, k)
    assert len(heap) <= k and sorted(heap, reverse=True) == whole
    rng = random.Random(k)
    for _ in range(20):
        shuffled = rng.sample(every, len(every))
        cuts = sorted(rng.sample(range(1, len(every)), rng.randrange(1, 8)))
        parts = [top_k(shuffled[a:b], k) for a, b in zip([0, *cuts], [*cuts, len(every)], strict=True)]
        rng.shuffle(parts)
        halves = [merge_top_k(parts[: len(parts) // 2], k), merge_top_k(parts[len(parts) // 2 :], k)]
        assert merge_top_k(halves, k) == whole


def test_cutoff_selects_exactly_the_top_k():
    every = _candidates(seed=5)
    for k in (1, 3, len(every) - 1, len(every), len(every) + 5):
        chosen = top_k(every, k)
        cutoff = threshold(chosen)
        assert {c for c in every if is_selected(c, cutoff)} == set(chosen)
    assert threshold([]) is None and not is_selected(every[0], None)


def test_ties_are_broken_by_id():
    tied = [(1.0, "b"), (1.0, "a"), (1.0, "c"), (0.5, "z")]
    assert top_k(tied, 2) == [(1.0, "c"), (1.0, "b")]
    assert merge_top_k([[(1.0, "a")], [(1.0, "c"), (0.5, "z")], [(1.0, "b")]], 2) == top_k(tied, 2)


# ---- the law of the draw ------------------------------------------------------------------------------

ITEMS = [f"2023-06/0000/en_head.json.gz/{row}" for row in range(6)]
LOG_WEIGHTS = [math.log(w) for w in (1.0, 2.0, 3.0, 5.0, 8.0, 13.0)]
SEEDS = range(6000)


def _draws(k: int) -> list[tuple[str, ...]]:
    return [tuple(sorted(c[1] for c in top_k(
        [(gumbel_key(w, seed, i), i) for i, w in zip(ITEMS, LOG_WEIGHTS, strict=True)], k))) for seed in SEEDS]


def _successive_sampling(k: int) -> dict[tuple[str, ...], float]:
    """P(set of k items) for sampling without replacement, each next item with probability w_i / (sum of
    the weights not drawn yet): enumerated over every ordered sequence."""
    weights = dict(zip(ITEMS, (math.exp(w) for w in LOG_WEIGHTS), strict=True))
    probs: dict[tuple[str, ...], float] = {}
    for order in itertools.permutations(ITEMS, k):
        p, left = 1.0, sum(weights.values())
        for item in order:
            p *= weights[item] / left
            left -= weights[item]
        key = tuple(sorted(order))
        probs[key] = probs.get(key, 0.0) + p
    return probs


def test_k1_inclusion_frequency_is_proportional_to_exp_weight():
    counts = Counter(d[0] for d in _draws(1))
    total = sum(math.exp(w) for w in LOG_WEIGHTS)
    expected = [len(SEEDS) * math.exp(w) / total for w in LOG_WEIGHTS]
    observed = [counts[i] for i in ITEMS]
    assert stats.chisquare(observed, expected).pvalue > 0.001


def test_k2_pairs_and_inclusion_follow_successive_sampling_without_replacement():
    draws = _draws(2)
    probs = _successive_sampling(2)
    assert math.isclose(sum(probs.values()), 1.0)
    pairs = Counter(draws)
    assert set(pairs) <= set(probs)
    order = sorted(probs)
    assert stats.chisquare([pairs[p] for p in order], [len(SEEDS) * probs[p] for p in order]).pvalue > 0.001
    # each item's inclusion probability: the sum over the pairs that hold it
    inclusion = {i: sum(p for pair, p in probs.items() if i in pair) for i in ITEMS}
    assert math.isclose(sum(inclusion.values()), 2.0)
    included = Counter(i for d in draws for i in d)
    observed = [included[i] for i in ITEMS]
    expected = [len(SEEDS) * inclusion[i] for i in ITEMS]
    assert stats.chisquare(observed, expected).pvalue > 0.001
    # and not the with-replacement law (k times the k=1 probability), which differs measurably here
    naive = [2 * len(SEEDS) * math.exp(w) / sum(math.exp(v) for v in LOG_WEIGHTS) for w in LOG_WEIGHTS]
    assert stats.chisquare(observed, naive).pvalue < 0.001


# ---- the recipe's resample: validation, one-line errors -------------------------------------------------


def _recipe(resample, rules=None):
    return parse_recipe({"name": "r", "rules": rules or [{"name": "words", "expr": "x >= 1"}],
                         "resample": resample}, "r.yaml")


def test_resample_parses_with_k_or_fraction():
    k = _recipe({"weight": WEIGHT, "k": 10, "seed": 0}).resample
    assert (k.k, k.fraction, k.seed, k.weight) == (10, None, 0, WEIGHT)
    assert k.columns == {"rps_doc_books_importance", "rps_doc_openwebtext_importance"}
    f = _recipe({"weight": WEIGHT, "fraction": 0.25, "seed": 9}).resample
    assert (f.k, f.fraction) == (None, 0.25)
    assert f.target(10) == 3 and f.target(2) == 1 and f.target(0) == 0  # 2.5 -> 3, 0.5 -> 1: half up
    assert _recipe({"weight": WEIGHT, "fraction": 1, "seed": 9}).resample.target(7) == 7
    assert k.target(3) == 10  # more than there are: the draw keeps all of them
    recipe = _recipe({"weight": WEIGHT, "k": 10, "seed": 0})
    assert recipe.columns == {"x"}  # the rules' columns; the weight's are read too:
    assert recipe.read_columns == {"x", "rps_doc_books_importance", "rps_doc_openwebtext_importance"}


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"weight": WEIGHT, "k": 5, "fraction": 0.5, "seed": 1}, "either 'k'"),
        ({"weight": WEIGHT, "seed": 1}, "either 'k'"),
        ({"weight": WEIGHT, "k": 0, "seed": 1}, "'k' must be between 1"),
        ({"weight": WEIGHT, "k": -3, "seed": 1}, "'k' must be between 1"),
        ({"weight": WEIGHT, "k": 2.5, "seed": 1}, "'k' must be an integer"),
        ({"weight": WEIGHT, "k": True, "seed": 1}, "'k' must be an integer"),
        ({"weight": WEIGHT, "fraction": 0, "seed": 1}, "'fraction' must be a number in (0, 1]"),
        ({"weight": WEIGHT, "fraction": 1.5, "seed": 1}, "'fraction' must be a number in (0, 1]"),
        ({"weight": WEIGHT, "fraction": math.nan, "seed": 1}, "'fraction' must be a number in (0, 1]"),
        ({"weight": WEIGHT, "fraction": "half", "seed": 1}, "'fraction' must be a number in (0, 1]"),
        ({"weight": WEIGHT, "k": 5}, "'seed' is missing"),
        ({"weight": WEIGHT, "k": 5, "seed": -1}, "'seed' must be between 0"),
        ({"weight": WEIGHT, "k": 5, "seed": 2**64}, "'seed' must be between 0"),
        ({"weight": WEIGHT, "k": 5, "seed": "7"}, "'seed' must be an integer"),
        ({"k": 5, "seed": 1}, "'weight' must be an expression"),
        ({"weight": "a -", "k": 5, "seed": 1}, "weight: unexpected end"),
        ({"weight": WEIGHT, "k": 5, "seed": 1, "temperature": 2}, "unknown key(s) temperature"),
        ([1, 2], "must be a mapping"),
    ],
)
def test_bad_resample_is_one_line_naming_the_file_and_key(spec, message):
    with pytest.raises(RecipeError) as err:
        _recipe(spec)
    text = str(err.value)
    assert text.startswith("r.yaml: resample: ") and message in text and "\n" not in text


KINDS = {"x": "num", "rps_doc_books_importance": "num", "rps_doc_openwebtext_importance": "num",
         "bucket": "str", "lines": "list", "flag": "bool"}


@pytest.mark.parametrize(
    "weight, message",
    [
        ("rps_doc_books_importance - rps_doc_wikipedia_importance", "unknown column 'rps_doc_wikipedia_importance'"),
        ("bucket", "must be a number"),
        ("x > 1", "must be a number"),
        ("flag", "must be a number"),
        ("lines", "line-level signal"),
    ],
)
def test_weight_must_be_a_number_over_known_columns(weight, message):
    recipe = _recipe({"weight": weight, "k": 5, "seed": 1})
    with pytest.raises(RecipeError) as err:
        recipe.check(KINDS)
    assert str(err.value).startswith("r.yaml: resample: weight: ") and message in str(err.value)
    _recipe({"weight": f"({WEIGHT}) / 10 + mean(lines)", "k": 5, "seed": 1}).check(KINDS)


def test_rule_may_not_take_a_resample_drop_reason_as_its_name():
    with pytest.raises(RecipeError, match="rule 'resample_not_selected': this name is the resample's drop reason"):
        _recipe({"weight": WEIGHT, "k": 5, "seed": 1}, rules=[{"name": "resample_not_selected", "expr": "x > 1"}])
    assert parse_resample({"weight": WEIGHT, "k": 5, "seed": 1}).k == 5


def test_null_and_nan_weights_are_not_candidates():
    resample = parse_resample({"weight": WEIGHT, "k": 5, "seed": 1})
    row = {"id": "a/0", "rps_doc_books_importance": 3.0, "rps_doc_openwebtext_importance": 1.0}
    assert resample.candidate(row) == (gumbel_key(2.0, 1, "a/0"), "a/0")
    assert resample.candidate({**row, "rps_doc_books_importance": None}) is None
    assert resample.candidate({**row, "rps_doc_books_importance": math.nan}) is None
    assert resample.candidate({**row, "rps_doc_books_importance": math.inf})[0] == math.inf


_ANY = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
              st.sampled_from([WEIGHT, "x / 0", "-x", "x > 1", "k", "fraction", "seed"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8,
)


@settings(max_examples=int(os.environ.get("RPV2_FUZZ_EXAMPLES", "500")), derandomize=True, database=None, deadline=2000)
@given(spec=st.one_of(_ANY, st.dictionaries(st.sampled_from(["weight", "k", "fraction", "seed", "other"]), _ANY)))
def test_fuzz_resample_spec_parses_or_is_a_one_line_recipe_error(spec):
    """Whatever YAML gives as ``resample:``: a Resample whose k, fraction and seed are in range, or a
    RecipeError of one line; never another exception."""
    try:
        resample = parse_resample(spec)
    except RecipeError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert 0 <= resample.seed < 2**64
    assert (resample.k is None) != (resample.fraction is None)
    assert resample.k is None or resample.k >= 1
    assert resample.fraction is None or 0 < resample.fraction <= 1
