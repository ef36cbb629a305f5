"""The filter expression language: tokenizer, expression tree, parser, three-valued evaluation and the
static type checks of an expression against a dataset's column kinds.

A rule's condition is text parsed here into a small tree and evaluated by walking it, never ``eval``'d, so a
recipe cannot run code and every mistake is reported with what is wrong and where. The recipe model that
names these expressions is pipeline/filter/recipe.py.

Expression language: numbers, 'strings', ``true``/``false``, column
names (any column of the documents Parquet: signals, ``bucket``, ``language``, ``perplexity`` ...),
the dedup flags ``is_duplicate_exact`` and ``is_fuzzy_duplicate_sim<t>`` (a member of a fuzzy cluster
that is not its representative, from ``clusters_sim<t>/documents``), aggregates over a line-level signal
``mean(x) sum(x) min(x) max(x) count(x)`` (e.g. the fraction of lines ending with terminal punctuation is
``mean(rps_lines_ending_with_terminal_punctution_mark)``), arithmetic ``+ - * /``, comparisons
``< <= > >= == !=`` (chainable: ``3 <= x <= 10``), ``x in [..]`` / ``x not in [..]``, and ``and``,
``or``, ``not``, parentheses.

Nulls: RPv2 gives null signals (no UT1 entry, no classifier for a language, no words ...). A comparison
or an arithmetic operation with a null operand is null (there is no null literal: ``x == null`` is null
too), so are ``x / 0`` and mean/min/max over no values, and ``and``/``or``/``not`` follow Kleene's
three-valued logic (``false and null`` is false). **A rule whose
value is null does not drop the document**; it is counted in the report as ``null``. Null elements inside
a line-level list are skipped by the aggregates.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

AGGREGATES: dict[str, Callable[[list[float]], float | None]] = {
    "mean": lambda xs: sum(xs) / len(xs) if xs else None,
    "sum": lambda xs: float(sum(xs)),
    "min": lambda xs: min(xs) if xs else None,
    "max": lambda xs: max(xs) if xs else None,
    "count": lambda xs: float(len(xs)),
}
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


# How deep an expression may nest: each pair of parentheses, ``not``, unary minus and operator level (a
# chain ``a + b + c`` is two levels, as the tree is) counts one. Real rules nest a few levels; the bound keeps
# the parser, the type checks and evaluation (all recursive) far below Python's recursion limit, so a
# pathological expression is a RecipeError instead of a RecursionError.
MAX_DEPTH = 50


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the rule and what is wrong.

    Defined with the grammar, the lowest layer of the filter room, because the parser and the type checks
    raise it too; pipeline/filter/recipe.py and pipeline/filter/apply.py raise the same class."""


# ---------------------------------------------------------------------------------------------------
# expression tree


@dataclass(frozen=True)
class Const:
    value: Any


@dataclass(frozen=True)
class Column:
    name: str


@dataclass(frozen=True)
class Aggregate:
    func: str
    column: str


@dataclass(frozen=True)
class Arith:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Negate:
    operand: Any


@dataclass(frozen=True)
class Compare:
    ops: tuple[str, ...]
    operands: tuple[Any, ...]


@dataclass(frozen=True)
class InList:
    operand: Any
    values: tuple[Any, ...]
    negated: bool


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    operand: Any


_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<number>(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
      | (?P<string>'[^']*'|"[^"]*")
      | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<op><=|>=|==|!=|<|>|\(|\)|\[|\]|,|\+|-|\*|/)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false"}


def tokenize(text: str) -> list[tuple[str, str]]:
    """``[(kind, text), ...]``; kinds: number, string, name, keyword, op. Raises on anything else."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match or match.end() == pos:
            raise RecipeError(f"unexpected character {text[pos:].lstrip()[:1]!r} at position {pos}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "name" and value in _KEYWORDS:
            kind = "keyword"
        tokens.append((kind, value))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent over: or > and > not > comparison > sum > product > unary > atom."""

    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0

    def nested(self, parse: Callable[[], Any]) -> Any:
        """``parse()`` one nesting level down; a RecipeError beyond MAX_DEPTH levels."""
        if self.depth >= MAX_DEPTH:
            raise _too_deep()
        self.depth += 1
        try:
            return parse()
        finally:
            self.depth -= 1

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise RecipeError("unexpected end of expression" + (f", expected {value!r}" if value else ""))
        if value is not None and token[1] != value:
            raise RecipeError(f"expected {value!r}, found {token[1]!r}")
        self.pos += 1
        return token

    def at(self, *values: str) -> bool:
        token = self.peek()
        return token is not None and token[0] in ("op", "keyword") and token[1] in values

    def parse(self) -> Any:
        node = self.or_expr()
        if self.peek() is not None:
            raise RecipeError(f"unexpected {self.peek()[1]!r} after a complete expression")
        return node

    def or_expr(self) -> Any:
        items = [self.and_expr()]
        while self.at("or"):
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_expr(self) -> Any:
        items = [self.not_expr()]
        while self.at("and"):
            self.take()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def not_expr(self) -> Any:
        if self.at("not"):
            self.take()
            return Not(self.nested(self.not_expr))
        return self.comparison()

    def comparison(self) -> Any:
        left = self.sum_expr()
        if self.at("in") or (self.at("not") and self._next_is("in")):
            negated = self.at("not")
            if negated:
                self.take()
            self.take("in")
            return InList(left, self.list_literal(), negated)
        ops: list[str] = []
        operands = [left]
        while self.at(*COMPARISONS):
            ops.append(self.take()[1])
            operands.append(self.sum_expr())
        return Compare(tuple(ops), tuple(operands)) if ops else left

    def _next_is(self, value: str) -> bool:
        nxt = self.tokens[self.pos + 1] if self.pos + 1 < len(self.tokens) else None
        return nxt is not None and nxt[1] == value

    def list_literal(self) -> tuple[Any, ...]:
        self.take("[")
        values: list[Any] = []
        while not self.at("]"):
            atom = self.unary()
            if not isinstance(atom, Const):
                raise RecipeError("the list after 'in' may hold only constants")
            values.append(atom.value)
            if not self.at("]"):
                self.take(",")
        self.take("]")
        return tuple(values)

    def sum_expr(self) -> Any:
        node = self.product()
        while self.at("+", "-"):
            op = self.take()[1]
            node = Arith(op, node, self.product())
        return node

    def product(self) -> Any:
        node = self.unary()
        while self.at("*", "/"):
            op = self.take()[1]
            node = Arith(op, node, self.unary())
        return node

    def unary(self) -> Any:
        if self.at("-"):
            self.take()
            operand = self.nested(self.unary)
            if isinstance(operand, Const) and isinstance(operand.value, float):
                return Const(-operand.value)
            return Negate(operand)
        return self.atom()

    def atom(self) -> Any:
        kind, text = self.take()
        if kind == "number":
            return Const(float(text.replace("_", "")))
        if kind == "string":
            return Const(text[1:-1])
        if kind == "keyword" and text in ("true", "false"):
            return Const(text == "true")
        if kind == "op" and text == "(":
            node = self.nested(self.or_expr)
            self.take(")")
            return node
        if kind == "name":
            if self.at("("):
                if text not in AGGREGATES:
                    raise RecipeError(f"unknown function {text!r} (known: {', '.join(AGGREGATES)})")
                self.take("(")
                arg_kind, arg = self.take()
                if arg_kind != "name":
                    raise RecipeError(f"{text}() takes a line-level signal name, found {arg!r}")
                self.take(")")
                return Aggregate(text, arg)
            return Column(text)
        raise RecipeError(f"unexpected {text!r}")


def _too_deep() -> RecipeError:
    return RecipeError(
        f"expression nested more than {MAX_DEPTH} levels deep (parentheses, not, unary minus and each "
        "operator of a chain such as a + b + c count one)"
    )


def _children(node: Any) -> tuple[Any, ...]:
    if isinstance(node, Arith):
        return (node.left, node.right)
    if isinstance(node, (Negate, Not, InList)):
        return (node.operand,)
    if isinstance(node, Compare):
        return node.operands
    if isinstance(node, BoolOp):
        return node.items
    return ()


def _depth(node: Any) -> int:
    """Operator levels of a tree (a leaf is 0), without recursion."""
    deepest, stack = 0, [(node, 0)]
    while stack:
        n, level = stack.pop()
        children = _children(n)
        if children:
            deepest = max(deepest, level + 1)
            stack.extend((child, level + 1) for child in children)
    return deepest


def parse_expression(text: str) -> Any:
    """The expression tree of ``text``; raises :class:`RecipeError` with what is wrong and where, also
    for an expression nested more than :data:`MAX_DEPTH` levels deep."""
    if not isinstance(text, str) or not text.strip():
        raise RecipeError("empty expression")
    tree = _Parser(text).parse()
    if _depth(tree) > MAX_DEPTH:  # a long chain of + - * / nests without parentheses
        raise _too_deep()
    return tree


def column_refs(node: Any) -> set[str]:
    """Every column an expression reads (bare or aggregated)."""
    if isinstance(node, Column):
        return {node.name}
    if isinstance(node, Aggregate):
        return {node.column}
    if isinstance(node, (Arith,)):
        return column_refs(node.left) | column_refs(node.right)
    if isinstance(node, (Negate, Not)):
        return column_refs(node.operand)
    if isinstance(node, InList):
        return column_refs(node.operand)
    if isinstance(node, Compare):
        return set().union(*(column_refs(o) for o in node.operands))
    if isinstance(node, BoolOp):
        return set().union(*(column_refs(o) for o in node.items))
    return set()


# ---------------------------------------------------------------------------------------------------
# evaluation (three-valued: True, False, None)


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def evaluate(node: Any, row: Mapping[str, Any]) -> Any:
    """The value of ``node`` for one document ``row`` (column name -> value); None is null."""
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Column):
        return _number(row.get(node.name))
    if isinstance(node, Aggregate):
        values = row.get(node.column)
        if values is None:
            return None
        return AGGREGATES[node.func]([float(v) for v in values if v is not None])
    if isinstance(node, Arith):
        left, right = evaluate(node.left, row), evaluate(node.right, row)
        if left is None or right is None:
            return None
        if node.op == "/":
            return None if right == 0 else left / right
        return {"+": left + right, "-": left - right, "*": left * right}[node.op]
    if isinstance(node, Negate):
        value = evaluate(node.operand, row)
        return None if value is None else -value
    if isinstance(node, Compare):
        values = [evaluate(o, row) for o in node.operands]
        result: bool | None = True
        for op, a, b in zip(node.ops, values, values[1:], strict=False):
            if a is None or b is None or (isinstance(a, float) and math.isnan(a)) or (
                isinstance(b, float) and math.isnan(b)
            ):
                if result is not False:
                    result = None
                continue
            if not COMPARISONS[op](a, b):
                result = False
        return result
    if isinstance(node, InList):
        value = evaluate(node.operand, row)
        if value is None:
            return None
        return (value in node.values) != node.negated
    if isinstance(node, Not):
        value = evaluate(node.operand, row)
        return None if value is None else not value
    if isinstance(node, BoolOp):
        values = [evaluate(item, row) for item in node.items]
        decisive = node.op == "or"  # True decides an "or", False decides an "and"
        if any(v is decisive for v in values):
            return decisive
        return None if any(v is None for v in values) else (not decisive)
    raise TypeError(f"not an expression node: {node!r}")


# ---------------------------------------------------------------------------------------------------
# static checks against the dataset's columns

# kind of a column: "num", "str", "bool", "list"
ColumnKinds = Mapping[str, str]


def _kind(node: Any, kinds: ColumnKinds) -> str:
    if isinstance(node, Const):
        v = node.value
        return "null" if v is None else "bool" if isinstance(v, bool) else "str" if isinstance(v, str) else "num"
    if isinstance(node, Column):
        if node.name not in kinds:
            raise RecipeError(f"unknown column {node.name!r}")
        if kinds[node.name] == "list":
            raise RecipeError(
                f"{node.name!r} is a line-level signal: use an aggregate, e.g. mean({node.name})"
            )
        return kinds[node.name]
    if isinstance(node, Aggregate):
        if node.column not in kinds:
            raise RecipeError(f"unknown column {node.column!r}")
        if kinds[node.column] != "list":
            raise RecipeError(f"{node.func}() needs a line-level signal, {node.column!r} is not one")
        return "num"
    if isinstance(node, (Arith, Negate)):
        operands = (node.left, node.right) if isinstance(node, Arith) else (node.operand,)
        for operand in operands:
            if _kind(operand, kinds) not in ("num", "null"):
                raise RecipeError("arithmetic needs numbers")
        return "num"
    if isinstance(node, Compare):
        operand_kinds = [_kind(o, kinds) for o in node.operands]
        concrete = {k for k in operand_kinds if k != "null"}
        if len(concrete) > 1:
            raise RecipeError(f"cannot compare {' with '.join(sorted(concrete))}")
        if concrete - {"num"} and set(node.ops) - {"==", "!="}:
            raise RecipeError("only == and != compare strings or booleans")
        return "bool"
    if isinstance(node, InList):
        _kind(node.operand, kinds)
        return "bool"
    if isinstance(node, Not):
        if _kind(node.operand, kinds) not in ("bool", "null"):
            raise RecipeError("'not' needs a condition")
        return "bool"
    if isinstance(node, BoolOp):
        for item in node.items:
            if _kind(item, kinds) not in ("bool", "null"):
                raise RecipeError(f"'{node.op}' needs conditions on both sides")
        return "bool"
    raise RecipeError(f"not an expression: {node!r}")


def check_expression(node: Any, kinds: ColumnKinds) -> None:
    """Raise :class:`RecipeError` unless ``node`` is a condition over known columns of fitting types."""
    if _kind(node, kinds) != "bool":
        raise RecipeError("a rule must be a condition (a comparison, 'in', a flag, and/or/not)")


def check_number(node: Any, kinds: ColumnKinds) -> None:
    """Raise :class:`RecipeError` unless ``node`` is a number over known numeric columns (a resample
    weight: pipeline/filter/resample.py)."""
    if _kind(node, kinds) != "num":
        raise RecipeError("must be a number (a numeric column or arithmetic over them), not a condition or a string")


def column_kinds(schema) -> dict[str, str]:
    """The kinds of a documents Parquet schema's columns, plus the dedup flags (always booleans)."""
    import pyarrow as pa

    kinds: dict[str, str] = {}
    for fld in schema:
        t = fld.type
        if pa.types.is_boolean(t):
            kinds[fld.name] = "bool"
        elif pa.types.is_integer(t) or pa.types.is_floating(t):
            kinds[fld.name] = "num"
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            kinds[fld.name] = "str"
        elif pa.types.is_list(t) and (pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type)):
            kinds[fld.name] = "list"
    return kinds
