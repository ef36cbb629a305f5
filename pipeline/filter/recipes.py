"""Filter recipes: named rules over quality signals, CCNet fields and dedup flags, read from YAML.

RPv2 ships signals, not a filtered corpus; its README shows filters as Python functions over the signals
(``gopher_rules_pass``, ``c4_rules_pass``). A recipe states the same rules as data, so they can be
reviewed, versioned in configs/recipes/ and counted rule by rule::

    name: gopher
    rules:
      - name: word_count
        expr: "50 <= rps_doc_word_count <= 100000"      # the condition a KEPT document satisfies
      - name: symbol_to_word_ratio
        signal: rps_doc_symbol_to_word_ratio            # structured form: signal op value
        op: "<="
        value: 0.1

Expression language (parsed here, never ``eval``'d): numbers, 'strings', ``true``/``false``, column
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEDUP_EXACT_FLAG = "is_duplicate_exact"
_FUZZY_FLAG_RE = re.compile(r"^is_fuzzy_duplicate_sim(\d+(?:\.\d+)?)$")
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
STRUCTURED_OPS = (*COMPARISONS, "in", "not in")
_RULE_KEYS = {"name", "expr", "signal", "op", "value", "aggregate", "description"}


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the rule and what is wrong."""


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
            return Not(self.not_expr())
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
            operand = self.unary()
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
            node = self.or_expr()
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


def parse_expression(text: str) -> Any:
    """The expression tree of ``text``; raises :class:`RecipeError` with what is wrong and where."""
    if not isinstance(text, str) or not text.strip():
        raise RecipeError("empty expression")
    return _Parser(text).parse()


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


def is_dedup_flag(name: str) -> bool:
    return name == DEDUP_EXACT_FLAG or bool(_FUZZY_FLAG_RE.match(name))


def fuzzy_threshold(name: str) -> str | None:
    """``is_fuzzy_duplicate_sim0.8`` -> ``"0.8"`` (the ``clusters_sim0.8`` dataset); else None."""
    match = _FUZZY_FLAG_RE.match(name)
    return match.group(1) if match else None


# ---------------------------------------------------------------------------------------------------
# recipes


@dataclass(frozen=True)
class Rule:
    """One named keep-condition."""

    name: str
    expr: str  # as written (or rendered from the structured form), for the report
    tree: Any

    def keeps(self, row: Mapping[str, Any]) -> bool | None:
        """True: passes; False: drops the document; None: null (does not drop)."""
        value = evaluate(self.tree, row)
        return None if value is None else bool(value)


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    rules: tuple[Rule, ...]
    source: str = ""

    @property
    def columns(self) -> set[str]:
        return set().union(*(column_refs(rule.tree) for rule in self.rules)) if self.rules else set()

    def check(self, kinds: ColumnKinds) -> None:
        """Validate every rule against the dataset's columns (dedup flags count as known booleans)."""
        known = dict(kinds)
        known.update({name: "bool" for name in self.columns if is_dedup_flag(name)})
        for rule in self.rules:
            try:
                check_expression(rule.tree, known)
            except RecipeError as exc:
                raise RecipeError(f"{self.source or self.name}: rule {rule.name!r}: {exc}") from None


def _render_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if "'" in value:
            raise RecipeError("string values may not contain a quote (')")
        return f"'{value}'"
    if isinstance(value, (int, float)):
        return repr(value)
    raise RecipeError(f"value {value!r} is not a number, string or boolean")


def _structured_expression(spec: Mapping[str, Any]) -> str:
    """``{signal, op, value[, aggregate]}`` as an expression string (then parsed like any other)."""
    signal, op = spec.get("signal"), spec.get("op")
    if not isinstance(signal, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", signal):
        raise RecipeError(f"'signal' must be a column name, got {signal!r}")
    if op not in STRUCTURED_OPS:
        raise RecipeError(f"'op' must be one of {', '.join(STRUCTURED_OPS)}, got {op!r}")
    if "value" not in spec:
        raise RecipeError("'value' is missing")
    target = signal
    if spec.get("aggregate") is not None:
        if spec["aggregate"] not in AGGREGATES:
            raise RecipeError(f"'aggregate' must be one of {', '.join(AGGREGATES)}, got {spec['aggregate']!r}")
        target = f"{spec['aggregate']}({signal})"
    value = spec["value"]
    if op in ("in", "not in"):
        if not isinstance(value, list) or not value:
            raise RecipeError(f"'{op}' needs a non-empty list value")
        return f"{target} {op} [{', '.join(_render_value(v) for v in value)}]"
    return f"{target} {op} {_render_value(value)}"


def parse_rule(spec: Any, index: int) -> Rule:
    """One rule from its YAML mapping; errors name the rule (or its position when it has no name)."""
    if not isinstance(spec, Mapping):
        raise RecipeError(f"rule #{index + 1}: must be a mapping with 'name' and 'expr' (or signal/op/value)")
    name = spec.get("name")
    label = f"rule {name!r}" if isinstance(name, str) and name else f"rule #{index + 1}"
    try:
        if not isinstance(name, str) or not name.strip():
            raise RecipeError("'name' is missing")
        unknown = set(spec) - _RULE_KEYS
        if unknown:
            raise RecipeError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        has_expr = "expr" in spec
        has_structured = any(k in spec for k in ("signal", "op", "value", "aggregate"))
        if has_expr == has_structured:
            raise RecipeError("give either 'expr' or 'signal'/'op'/'value', not both or neither")
        expr = spec["expr"] if has_expr else _structured_expression(spec)
        if not isinstance(expr, str):
            raise RecipeError(f"'expr' must be a string, got {type(expr).__name__}")
        return Rule(name=name, expr=expr.strip(), tree=parse_expression(expr))
    except RecipeError as exc:
        raise RecipeError(f"{label}: {exc}") from None


def parse_recipe(data: Any, source: str = "") -> Recipe:
    """A recipe from its parsed YAML: ``{name, description?, rules: [...]}``."""
    where = source or "recipe"
    if not isinstance(data, Mapping):
        raise RecipeError(f"{where}: must be a mapping with 'name' and 'rules'")
    unknown = set(data) - {"name", "description", "rules"}
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    rules_spec = data.get("rules")
    if not isinstance(rules_spec, list) or not rules_spec:
        raise RecipeError(f"{where}: 'rules' must be a non-empty list")
    try:
        rules = tuple(parse_rule(spec, i) for i, spec in enumerate(rules_spec))
    except RecipeError as exc:
        raise RecipeError(f"{where}: {exc}") from None
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise RecipeError(f"{where}: rule {rule.name!r}: duplicate rule name")
        seen.add(rule.name)
    name = data.get("name") or (Path(source).stem if source else "recipe")
    return Recipe(name=str(name), description=str(data.get("description") or ""), rules=rules, source=where)


def load_recipe(path: str | Path) -> Recipe:
    """Read and parse a recipe YAML file; every problem is a :class:`RecipeError` naming the file."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    return parse_recipe(data, str(path))


def rule_outcomes(rules: Sequence[Rule], row: Mapping[str, Any]) -> list[bool | None]:
    """Every rule's outcome for one document; it is kept when none is False."""
    return [rule.keeps(row) for rule in rules]


# ---------------------------------------------------------------------------------------------------
# applying a recipe to a documents dataset


@dataclass
class RuleCounts:
    """Per rule: documents it dropped as their first failing rule, documents it fails at all (the rule
    alone), and documents where it was null (kept)."""

    dropped_first: int = 0
    dropped_alone: int = 0
    null: int = 0


@dataclass
class FilterReport:
    recipe: Recipe
    read: int = 0
    kept: int = 0
    files_read: int = 0
    files_written: int = 0
    rule_counts: dict[str, RuleCounts] | None = None
    by_partition: dict[str, dict[str, int]] | None = None
    counts: dict[str, int] | None = None
    errors: list[str] | None = None

    def __post_init__(self) -> None:
        self.rule_counts = self.rule_counts or {rule.name: RuleCounts() for rule in self.recipe.rules}
        self.by_partition = self.by_partition or {}
        self.counts = self.counts or {}
        self.errors = self.errors or []

    def add(self, outcomes: Sequence[bool | None], partition: str) -> bool:
        """Count one document's rule outcomes; returns whether it is kept."""
        self.read += 1
        first_failed = True
        for rule, outcome in zip(self.recipe.rules, outcomes, strict=True):
            counts = self.rule_counts[rule.name]
            if outcome is None:
                counts.null += 1
            elif outcome is False:
                counts.dropped_alone += 1
                if first_failed:
                    counts.dropped_first += 1
                    first_failed = False
        kept = first_failed
        part = self.by_partition.setdefault(partition, {"read": 0, "kept": 0})
        part["read"] += 1
        if kept:
            self.kept += 1
            part["kept"] += 1
        return kept

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    @property
    def identity_holds(self) -> bool:
        return self.read == self.kept + sum(c.dropped_first for c in self.rule_counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "recipe": {"name": self.recipe.name, "description": self.recipe.description, "source": self.recipe.source},
            "read": self.read,
            "kept": self.kept,
            "dropped": self.read - self.kept,
            "read_equals_kept_plus_dropped_first": self.identity_holds,
            "null_semantics": "a rule whose value is null does not drop the document (counted as null)",
            "rules": [
                {"name": rule.name, "expr": rule.expr, **vars(self.rule_counts[rule.name])}
                for rule in self.recipe.rules
            ],
            "files_read": self.files_read,
            "files_written": self.files_written,
            "by_partition": dict(sorted(self.by_partition.items())),
            "counts": dict(sorted(self.counts.items())),
            "errors": self.errors,
        }

    def table(self) -> str:
        """The printed per-rule table: read = kept + Σ dropped (first failing rule)."""
        width = max([len("kept"), *(len(rule.name) for rule in self.recipe.rules)]) + 2
        lines = [
            f"filter recipe {self.recipe.name}: {self.read} documents read from {self.files_read} files",
            f"  {'rule':<{width}}{'dropped (first)':>16}{'fails (alone)':>15}{'null (kept)':>13}",
        ]
        for rule in self.recipe.rules:
            c = self.rule_counts[rule.name]
            lines.append(f"  {rule.name:<{width}}{c.dropped_first:>16}{c.dropped_alone:>15}{c.null:>13}")
        lines.append(f"  {'kept':<{width}}{self.kept:>16}")
        lines.append(f"  {'read':<{width}}{self.read:>16}")
        verdict = "ok" if self.identity_holds else "MISMATCH"
        lines.append(f"read == kept + sum(dropped first): {verdict}")
        for key, value in sorted(self.counts.items()):
            lines.append(f"  {key}: {value}")
        return "\n".join(lines)


def _flag_table(root: Path, rel_path: str, dataset: str, column: str) -> dict[str, bool | None] | None:
    """id -> flag from a sibling dataset file laid out like documents/ (None when the file is absent)."""
    import pyarrow.parquet as pq

    path = root / dataset / rel_path
    if not path.is_file():
        return None
    table = pq.read_table(path, columns=["id", column])
    return dict(zip(table.column("id").to_pylist(), table.column(column).to_pylist(), strict=True))


def _sibling_flags(
    root: Path, rel_path: str, flags: Sequence[str], report: FilterReport
) -> dict[str, dict[str, bool | None] | None]:
    """For each dedup flag the recipe reads: id -> flag for this file."""
    out: dict[str, dict[str, bool | None] | None] = {}
    for name in flags:
        if name == DEDUP_EXACT_FLAG:
            table = _flag_table(root, rel_path, DEDUP_EXACT_FLAG, DEDUP_EXACT_FLAG)
        else:
            rep = _flag_table(root, rel_path, f"clusters_sim{fuzzy_threshold(name)}/documents", "is_representative")
            table = None if rep is None else {k: (None if v is None else not v) for k, v in rep.items()}
        if table is None:
            report.count(f"files_without_{name}")
        out[name] = table
    return out


def check_sibling_datasets(root: Path, recipe: Recipe) -> None:
    """Fail early, with the command to run, when the recipe reads a dedup flag nobody computed."""
    for name in sorted(recipe.columns):
        if name == DEDUP_EXACT_FLAG and not (root / DEDUP_EXACT_FLAG).is_dir():
            raise RecipeError(
                f"{recipe.source}: reads {name} but {root / DEDUP_EXACT_FLAG} does not exist: run `rpv2 dedup exact`"
            )
        threshold = fuzzy_threshold(name)
        if threshold and not (root / f"clusters_sim{threshold}" / "documents").is_dir():
            raise RecipeError(
                f"{recipe.source}: reads {name} but {root}/clusters_sim{threshold}/documents does not exist: "
                f"run `rpv2 dedup fuzzy --threshold {threshold}`"
            )


def _with_partition_columns(schema: Any) -> Any:
    """The file schema plus the partition columns (snapshot, language, bucket) that live in its path."""
    import pyarrow as pa

    from pipeline.dataset.schema import PARTITION_COLUMNS

    for name in PARTITION_COLUMNS:
        if name not in schema.names:
            schema = schema.append(pa.field(name, pa.string()))
    return schema


def filter_dataset(input_path: str | Path, output: str | Path, recipe: Recipe) -> FilterReport:
    """Apply ``recipe`` to every documents file below ``input_path`` (a run output) and write the kept
    rows, all columns, to ``<output>/documents/`` in the same layout and order (a file with no kept row
    is not written). Unreadable files are counted and reported, never fatal; a recipe that does not fit
    the dataset's columns raises :class:`RecipeError` before anything is written."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.dataset.layout import partition_values
    from pipeline.export.rpv2 import resolve_documents_root, source_files
    from pipeline.io.publish import publish_file

    root, documents_dir = resolve_documents_root(input_path)
    files, strays = source_files(documents_dir)
    report = FilterReport(recipe)
    for rel in strays:
        report.count("files_outside_layout")
        report.errors.append(f"{rel}: skipped: not snapshot=<s>/language=<l>/bucket=<b>/<shard>.parquet")
    if files:
        recipe.check(column_kinds(_with_partition_columns(pq.read_schema(files[0].path))))
    check_sibling_datasets(root, recipe)
    flags = sorted(name for name in recipe.columns if is_dedup_flag(name))
    out_docs = Path(output) / "documents"
    for source in files:
        partition = f"{source.snapshot}/{source.language}/{source.bucket}"
        writer = None
        try:
            schema = pq.read_schema(source.path)
            recipe.check(column_kinds(_with_partition_columns(schema)))
            from_path = {k: v for k, v in partition_values(str(source.path)).items() if k not in schema.names}
            needed = sorted((recipe.columns - set(flags) - set(from_path)) | {"id"})
            sibling = _sibling_flags(root, source.rel_path, flags, report)
            destination = out_docs / source.rel_path
            # written locally, then published atomically (pipeline.io.publish)
            temporary = Path(output) / "_work" / f"{os.getpid()}-{destination.name}"
            with pq.ParquetFile(source.path) as reader:
                for batch in reader.iter_batches(batch_size=2000):
                    rows = batch.select(needed).to_pylist()
                    mask = []
                    for row in rows:
                        row.update(from_path)
                        for name in flags:
                            table = sibling[name]
                            row[name] = None if table is None else table.get(row["id"])
                        mask.append(report.add(rule_outcomes(recipe.rules, row), partition))
                    kept = batch.filter(pa.array(mask, type=pa.bool_()))
                    if kept.num_rows:
                        if writer is None:
                            temporary.parent.mkdir(parents=True, exist_ok=True)
                            writer = pq.ParquetWriter(temporary, schema, compression="zstd")
                        writer.write_batch(kept)
            report.files_read += 1
            if writer is not None:
                writer.close()
                publish_file(str(temporary), str(destination))
                temporary.unlink()
                report.files_written += 1
        except (OSError, ValueError, KeyError, TypeError) as exc:  # corrupt file, odd column types
            if isinstance(exc, RecipeError):
                raise
            if writer is not None:  # a file that broke midway publishes nothing
                writer.close()
                temporary.unlink(missing_ok=True)
            report.count("unreadable_files")
            report.errors.append(f"{source.rel_path}: skipped: {type(exc).__name__}: {exc}")
    return report
