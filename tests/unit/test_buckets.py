"""CCNet's perplexity buckets (pipeline/ccnet/buckets.py)."""

from __future__ import annotations

import pytest
from conftest import shared_path

from pipeline.ccnet.buckets import (
    DEFAULT_CUTOFFS,
    DEFAULT_CUTOFFS_PATH,
    compute_cutoffs,
    load_cutoffs,
    perplexity_bucket,
    read_cutoff_csv,
    write_cutoffs,
)

CUTOFF_CSV = shared_path("realdata", "models", "ccnet", "cutoff.csv")


@pytest.mark.parametrize(
    ("pp", "bucket"),
    [(0.0, "head"), (339.9, "head"), (340.0, "middle"), (519.9, "middle"), (520.0, "tail"), (1e6, "tail")],
)
def test_english_boundaries_head_below_p30_middle_below_p60(pp, bucket):
    assert perplexity_bucket(pp, "en", load_cutoffs()) == bucket


def test_every_default_language_has_its_own_boundaries():
    cutoffs = load_cutoffs()
    for lang, (p30, p60) in DEFAULT_CUTOFFS.items():
        assert perplexity_bucket(p30 - 0.1, lang, cutoffs) == "head"
        assert perplexity_bucket(p30, lang, cutoffs) == "middle"
        assert perplexity_bucket(p60, lang, cutoffs) == "tail"


def test_no_cutoffs_or_no_perplexity_gives_all():
    cutoffs = load_cutoffs()
    assert perplexity_bucket(100.0, "ru", cutoffs) == "all"
    assert perplexity_bucket(None, "en", cutoffs) == "all"
    assert perplexity_bucket(-1.0, "en", cutoffs) == "all"  # cc_net's "missing perplexity"
    assert perplexity_bucket(float("nan"), "en", cutoffs) == "all"


def test_config_defaults_are_rows_30_and_60_of_cc_nets_cutoff_csv():
    from_csv = read_cutoff_csv(CUTOFF_CSV)
    assert load_cutoffs(DEFAULT_CUTOFFS_PATH) == DEFAULT_CUTOFFS
    assert {lang: from_csv[lang] for lang in DEFAULT_CUTOFFS} == DEFAULT_CUTOFFS


def test_cc_net_csv_loads_every_language():
    cutoffs = load_cutoffs(CUTOFF_CSV)
    assert len(cutoffs) == 48
    assert all(p30 <= p60 for p30, p60 in cutoffs.values())


def test_write_cutoffs_updates_one_language_and_keeps_the_others(tmp_path):
    path = tmp_path / "cutoffs.yaml"
    path.write_text(DEFAULT_CUTOFFS_PATH.read_text())
    write_cutoffs(path, {"xx": (12.5, 30.0), "en": (300.0, 500.0)})
    cutoffs = load_cutoffs(path)
    assert cutoffs["xx"] == (12.5, 30.0) and cutoffs["en"] == (300.0, 500.0)
    assert cutoffs["de"] == DEFAULT_CUTOFFS["de"]


def test_bad_cutoffs_file_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("cutoffs:\n  en: {p30: 600, p60: 100}\n")
    with pytest.raises(ValueError, match="p30 <= p60"):
        load_cutoffs(path)


def test_computed_cutoffs_split_a_sample_30_30_40():
    values = [float(v) for v in range(1, 1001)]
    p30, p60 = compute_cutoffs(values + [-1.0, float("nan")])  # documents without a perplexity are ignored
    buckets = [perplexity_bucket(v, "xx", {"xx": (p30, p60)}) for v in values]
    assert buckets.count("head") == 300 and buckets.count("middle") == 300 and buckets.count("tail") == 400


def test_computing_cutoffs_needs_values():
    with pytest.raises(ValueError):
        compute_cutoffs([-1.0])


def test_published_ccnet_documents_get_their_published_bucket():
    """Real CCNet output (RedPajama-1T, CC-MAIN-2020-16): bucket from perplexity with the defaults."""
    import json

    cutoffs = load_cutoffs()
    checked = 0
    for path in sorted(shared_path("realdata", "groundtruth", "ccnet_rpv1").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            meta = json.loads(line)["metadata"]
            assert perplexity_bucket(meta["perplexity"], meta["language"], cutoffs) == meta["bucket"]
            checked += 1
    assert checked == 20
