"""The report's column-wise recipe evaluation gives, row for row, what `rpv2 filter`'s row-wise grammar gives.

The reference is pipeline.filter.grammar.evaluate (the specification of the expression language and of its
null semantics) and pipeline.filter.apply.FilterReport (the funnel arithmetic of `rpv2 filter`); neither
imports the code checked here.
"""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO_ROOT

from pipeline.filter.apply import FilterReport
from pipeline.filter.apply import rule_outcomes as row_outcomes
from pipeline.filter.grammar import evaluate, parse_expression
from pipeline.filter.recipe import load_recipe, parse_recipe
from pipeline.report.funnel import FunnelCounts, evaluate_columns, rule_outcomes

NAN = float("nan")


@pytest.fixture()
def batch(tmp_path):
    """A Parquet file with the awkward values: nulls, NaN, zero divisors, empty and null line lists."""
    table = pa.table({
        "x": pa.array([1.0, None, NAN, 0.0, 5.5, -2.0, 100.0, 3.0], pa.float64()),
        "k": pa.array([3, 0, None, 7, 1, 0, 2, 3], pa.int64()),
        "big": pa.array([2**64 - 1, 2**53 + 1, None, 0, 1, 2**63, 12345678901234567, 3], pa.uint64()),
        "s": pa.array(["head", "tail", None, "middle", "head", "all", "tail", "middle"]),
        "b": pa.array([True, False, None, True, False, True, None, False]),
        "lines": pa.array([[1.0, 0.0], [], None, [None, 2.0], [0.5, 0.5, 0.25], [None], [3.0], [1e-3, 1e16, -1e16]],
                          pa.list_(pa.float64())),
    })
    path = tmp_path / "batch.parquet"
    pq.write_table(table, path)
    return pq.read_table(path)


EXPRESSIONS = [
    "x > 1", "1 <= x <= 10", "x == 0", "x != 3", "k / x > 0.5", "x / k >= 1", "-x < 1", "x * 2 + k > 3",
    "s in ['head', 'middle']", "s not in ['tail']", "s == 'head'", "s != 'all'",
    "b", "not b", "b == true", "b and x > 1", "b or x > 1", "not (x > 1 or k < 2)", "x > 1 and k > 1 and s == 'head'",
    "mean(lines) > 0.5", "sum(lines) >= 1", "min(lines) < 0.5", "max(lines) > 1", "count(lines) >= 2",
    "sum(lines) / k <= 0.9", "k in [0, 3]", "x not in [1, 3]", "big > 1e18", "big / 2 > k",
]


def _rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()


def _columns(table: pa.Table) -> dict:
    return {name: table.column(name) for name in table.column_names}


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_columns_evaluate_as_the_grammar_row_by_row(batch, text):
    tree = parse_expression(text)
    values, valid = evaluate_columns(tree, _columns(batch), batch.num_rows)
    for i, row in enumerate(_rows(batch)):
        expected = evaluate(tree, row)
        if expected is None:
            assert not valid[i], (text, i, row)
            continue
        assert valid[i], (text, i, row, expected)
        got = values[i]
        if isinstance(expected, float) and math.isnan(expected):
            assert math.isnan(got), (text, i)
        else:
            assert got == expected, (text, i, row, got, expected)


def test_partition_values_and_absent_columns(batch):
    columns = {**_columns(batch), "language": "en", "bucket": "head", "missing": None}
    for text in ("bucket in ['head', 'middle']", "language == 'de'", "missing > 3", "not missing", "missing or x > 1"):
        tree = parse_expression(text)
        values, valid = evaluate_columns(tree, columns, batch.num_rows)
        for i, row in enumerate(_rows(batch)):
            expected = evaluate(tree, {**row, "language": "en", "bucket": "head"})
            assert (None if not valid[i] else bool(values[i])) == (None if expected is None else bool(expected))


@pytest.mark.parametrize("source", sorted((REPO_ROOT / "configs" / "recipes").glob("*.yaml")) + [None])
def test_funnel_counts_equal_rpv2_filters_report(batch, source):
    """The shipped recipes (their columns absent here: all null) and one over this batch's columns give the
    counts `rpv2 filter`'s FilterReport gives for the same rows."""
    recipe = load_recipe(source) if source else parse_recipe({"name": "t", "rules": [
        {"name": "a", "expr": "x > 0"}, {"name": "b", "expr": "mean(lines) <= 1"},
        {"name": "c", "expr": "s != 'tail' or b"}, {"name": "d", "expr": "k >= 1"}]})
    columns = {name: batch.column(name) if name in batch.column_names else None for name in recipe.columns}
    counts = FunnelCounts()
    counts.add(recipe, rule_outcomes(recipe, columns, batch.num_rows), ("s", "en", "head"), batch.num_rows)
    reference = FilterReport(recipe)
    for row in _rows(batch):
        full = {name: row.get(name) for name in recipe.columns}
        reference.add(row_outcomes(recipe.rules, full), "s/en/head")
    assert counts.read == reference.read and counts.kept == reference.kept
    for name, tally in counts.rules.items():
        assert vars(tally) == vars(reference.rule_counts[name]), name
