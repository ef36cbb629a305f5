"""The pure part of `rpv2 export --format hf` (pipeline/export/hf.py): which columns an HF file holds,
where it goes, and the dataset card's configs. The files themselves, read by `datasets`, are checked in
tests/integration/test_readers.py."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest
import yaml

from pipeline.dataset.layout import ShardFile
from pipeline.export.hf import HFExportStats, dataset_card, hf_columns, hf_rel_path, hf_table, sum_hf_stats

NAMES = ["url", "raw_content", "id", "signature_sim1.0", "signature_sim0.7"]


def test_signature_columns_are_renamed_and_the_partition_columns_come_last():
    assert hf_columns(NAMES) == [("url", "url"), ("raw_content", "raw_content"), ("id", "id"),
                                 ("signature_sim1_0", "signature_sim1.0"), ("signature_sim0_7", "signature_sim0.7"),
                                 ("snapshot", ""), ("language", ""), ("bucket", "")]


def test_both_keeps_the_dotted_column_beside_its_alias():
    columns = hf_columns(NAMES, "both")
    assert ("signature_sim0.7", "signature_sim0.7") in columns and ("signature_sim0_7", "signature_sim0.7") in columns


def test_a_partition_column_stored_in_the_file_is_kept_where_it_is():
    columns = hf_columns(["id", "language", "signature_sim0.8"])
    assert [out for out, _ in columns] == ["id", "language", "signature_sim0_8", "snapshot", "bucket"]


def test_an_unknown_signature_naming_is_refused():
    with pytest.raises(ValueError, match="dotted"):
        hf_columns(NAMES, "dotted")


def test_hf_table_fills_the_partition_columns_from_the_path_values():
    table = pa.table({"id": ["a", "b"], "signature_sim0.7": [[b"x"], [b"y"]]})
    out = hf_table(table, hf_columns(table.column_names), {"snapshot": "2023-06", "language": "en", "bucket": "head"})
    assert out.to_pylist() == [
        {"id": "a", "signature_sim0_7": [b"x"], "snapshot": "2023-06", "language": "en", "bucket": "head"},
        {"id": "b", "signature_sim0_7": [b"y"], "snapshot": "2023-06", "language": "en", "bucket": "head"},
    ]


def test_the_layout_path_has_no_hive_segments():
    assert hf_rel_path(ShardFile("2023-06", 3, "en", "head")) == "data/2023-06/en/head/0003.parquet"


def test_the_card_has_a_default_config_and_one_per_language_bucket():
    one = HFExportStats(files=1, documents=3, configs=Counter({"en_head": 3}), signatures=["signature_sim0.7"])
    two = HFExportStats(files=2, documents=5, configs=Counter({"eng_Latn_all": 5}), signatures=["signature_sim0.8"])
    total = sum_hf_stats([two, one])
    assert total.as_dict() == sum_hf_stats([one, two]).as_dict()  # order of files does not matter
    card = dataset_card(total)
    front = yaml.safe_load(card.split("---\n")[1])
    assert [(c["config_name"], c["data_files"][0]["path"]) for c in front["configs"]] == [
        ("default", "data/*/*/*/*.parquet"),
        ("en_head", "data/*/en/head/*.parquet"),
        ("eng_Latn_all", "data/*/eng_Latn/all/*.parquet"),
    ]
    assert front["configs"][0]["default"] is True
    assert "`signature_sim0_7` (RPv2's `signature_sim0.7`)" in card and "| eng_Latn_all | 5 |" in card
