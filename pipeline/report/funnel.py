"""A filter recipe's funnel over whole Arrow batches: per rule, the documents it drops first and alone.

``rpv2 filter`` evaluates a recipe row by row (:func:`pipeline.filter.grammar.evaluate`), which is what a
filter that also writes every kept row needs. A report reads whole runs only to count, so it evaluates the
same expression trees over columns: every node gives ``(values, valid)`` numpy arrays, ``valid`` False
where the grammar's value is null. The semantics are the grammar's (its docstring is the specification):
a comparison or arithmetic with a null operand is null, so are ``x / 0``, NaN in a comparison and
mean/min/max over no values; ``and``/``or``/``not`` are Kleene's; a rule whose value is null does not drop.
tests/unit/test_report_funnel.py checks this module against ``evaluate`` row by row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.filter.apply import RuleCounts
from pipeline.filter.grammar import (
    COMPARISONS,
    Aggregate,
    Arith,
    BoolOp,
    Column,
    Compare,
    Const,
    InList,
    Negate,
    Not,
)
from pipeline.filter.recipe import Recipe

Group = tuple[str, str, str]  # (snapshot, language, bucket): the partition a documents file belongs to
Values = tuple[np.ndarray, np.ndarray]  # (values, valid); values where not valid are meaningless
# column name -> a pyarrow Array (or ChunkedArray) of the batch, or a Python scalar constant for all rows
# (the partition values of the file's path), or None when the column is absent (all null)
ColumnSource = Mapping[str, Any]


def _column(value: Any, n: int) -> Values:
    """A column of the batch as numpy values and validity: numbers as float64 (as the grammar turns ints
    into floats), booleans as bool, anything else as an object array."""
    import pyarrow as pa

    if value is None:
        return np.zeros(n, dtype=float), np.zeros(n, dtype=bool)
    if not isinstance(value, (pa.Array, pa.ChunkedArray)):
        dtype = float if isinstance(value, (int, float)) and not isinstance(value, bool) else object
        return np.full(n, value, dtype=dtype), np.ones(n, dtype=bool)
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    valid = np.ones(n, dtype=bool) if value.null_count == 0 else np.asarray(value.is_valid())
    kind = value.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return np.asarray(value.cast(pa.float64(), safe=False).fill_null(0.0)), valid
    if pa.types.is_boolean(kind):
        return np.asarray(value.fill_null(False)), valid
    return np.asarray(value.to_pylist(), dtype=object), valid


def _aggregate(func: str, value: Any, n: int) -> Values:
    """mean/sum/min/max/count over each row's list, null elements skipped (the grammar's AGGREGATES)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if value is None:
        return np.zeros(n, dtype=float), np.zeros(n, dtype=bool)
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    row_valid = np.asarray(value.is_valid())
    parents = np.asarray(pc.list_parent_indices(value))
    flat = pc.list_flatten(value)
    element_valid = np.asarray(flat.is_valid())
    parents = parents[element_valid]
    elements = np.asarray(flat.cast(pa.float64(), safe=False).fill_null(0.0))[element_valid]
    counts = np.bincount(parents, minlength=n).astype(float)
    if func == "count":
        return counts, row_valid
    if func == "sum":
        return _ordered_sums(parents, elements, n), row_valid
    if func == "mean":
        sums = _ordered_sums(parents, elements, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums / np.where(counts > 0, counts, 1.0), row_valid & (counts > 0)
    out = np.full(n, np.inf if func == "min" else -np.inf)
    (np.minimum if func == "min" else np.maximum).at(out, parents, elements)
    return out, row_valid & (counts > 0)


def _ordered_sums(parents: np.ndarray, elements: np.ndarray, n: int) -> np.ndarray:
    """Per-row sums added left to right, as Python's ``sum`` does (so the floats are the same)."""
    sums = np.zeros(n, dtype=float)
    np.add.at(sums, parents, elements)  # unbuffered, in element order
    return sums


def evaluate_columns(node: Any, columns: ColumnSource, n: int) -> Values:
    """The value of expression ``node`` for every row of a batch of ``n`` rows."""
    if isinstance(node, Const):
        if node.value is None:
            return np.zeros(n, dtype=float), np.zeros(n, dtype=bool)
        value = node.value
        dtype = bool if isinstance(value, bool) else float if isinstance(value, (int, float)) else object
        return np.full(n, value, dtype=dtype), np.ones(n, dtype=bool)
    if isinstance(node, Column):
        return _column(columns.get(node.name), n)
    if isinstance(node, Aggregate):
        return _aggregate(node.func, columns.get(node.column), n)
    if isinstance(node, Arith):
        (a, va), (b, vb) = evaluate_columns(node.left, columns, n), evaluate_columns(node.right, columns, n)
        valid = va & vb
        with np.errstate(all="ignore"):
            if node.op == "/":
                valid &= b != 0
                return a / np.where(b != 0, b, 1.0), valid
            return {"+": a + b, "-": a - b, "*": a * b}[node.op], valid
    if isinstance(node, Negate):
        a, va = evaluate_columns(node.operand, columns, n)
        return -a, va
    if isinstance(node, Compare):
        return _compare(node, columns, n)
    if isinstance(node, InList):
        a, va = evaluate_columns(node.operand, columns, n)
        found = np.fromiter((x in node.values for x in a), dtype=bool, count=n) if a.dtype == object else (
            np.isin(a, np.asarray([v for v in node.values if not isinstance(v, str)], dtype=a.dtype)))
        return found != node.negated, va
    if isinstance(node, Not):
        a, va = evaluate_columns(node.operand, columns, n)
        return ~_truth(a), va
    if isinstance(node, BoolOp):
        decisive = node.op == "or"  # True decides an "or", False decides an "and"
        any_decisive = np.zeros(n, dtype=bool)
        any_null = np.zeros(n, dtype=bool)
        for item in node.items:
            a, va = evaluate_columns(item, columns, n)
            any_decisive |= va & (_truth(a) == decisive)
            any_null |= ~va
        return (any_decisive if decisive else ~any_decisive), any_decisive | ~any_null
    raise TypeError(f"not an expression node: {node!r}")


def _truth(values: np.ndarray) -> np.ndarray:
    """Python's truth of each value (a rule's outcome is ``bool(value)``)."""
    if values.dtype == bool:
        return values
    if values.dtype == object:
        return np.fromiter((bool(v) for v in values), dtype=bool, count=len(values))
    return values != 0


def _compare(node: Compare, columns: ColumnSource, n: int) -> Values:
    """A (chained) comparison: False if any pair compares false, else null if any pair has a null or NaN
    operand, else True."""
    operands = [evaluate_columns(o, columns, n) for o in node.operands]
    any_false = np.zeros(n, dtype=bool)
    any_null = np.zeros(n, dtype=bool)
    for op, (a, va), (b, vb) in zip(node.ops, operands, operands[1:], strict=False):
        null = ~(va & vb)
        for x in (a, b):
            if x.dtype.kind == "f":
                null |= np.isnan(x)
        compare: Callable[[Any, Any], Any] = COMPARISONS[op]
        with np.errstate(invalid="ignore"):
            result = np.asarray(compare(a, b), dtype=bool) if a.dtype != object and b.dtype != object else (
                np.fromiter((bool(compare(x, y)) if ok else True for x, y, ok in zip(a, b, ~null, strict=True)),
                            dtype=bool, count=n))
        any_false |= ~null & ~result
        any_null |= null
    return ~any_false, any_false | ~any_null


def rule_outcomes(recipe: Recipe, columns: ColumnSource, n: int) -> list[Values]:
    """Per rule, ``(passes, valid)``: the rule drops a row where it is valid and does not pass."""
    outcomes = []
    for rule in recipe.rules:
        values, valid = evaluate_columns(rule.tree, columns, n)
        outcomes.append((_truth(values), valid))
    return outcomes


@dataclass
class FunnelCounts:
    """A recipe's funnel over some documents: per rule tallies, and read/kept per partition key."""

    rules: dict[str, RuleCounts] = field(default_factory=dict)
    by_group: dict[Group, dict[str, int]] = field(default_factory=dict)

    @property
    def read(self) -> int:
        """Documents the rules saw."""
        return sum(g["read"] for g in self.by_group.values())

    @property
    def kept(self) -> int:
        """Documents no rule dropped."""
        return sum(g["kept"] for g in self.by_group.values())

    def add(self, recipe: Recipe, outcomes: list[Values], group: Group, n: int) -> None:
        """Count one batch's outcomes (from :func:`rule_outcomes`) for the documents of ``group``."""
        alive = np.ones(n, dtype=bool)  # not dropped by an earlier rule
        for rule, (passes, valid) in zip(recipe.rules, outcomes, strict=True):
            tally = self.rules.setdefault(rule.name, RuleCounts())
            drops = valid & ~passes
            tally.null += int(np.count_nonzero(~valid))
            tally.dropped_alone += int(np.count_nonzero(drops))
            tally.dropped_first += int(np.count_nonzero(drops & alive))
            alive &= ~drops
        counts = self.by_group.setdefault(group, {"read": 0, "kept": 0})
        counts["read"] += n
        counts["kept"] += int(np.count_nonzero(alive))
