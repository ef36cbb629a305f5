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

A recipe may end with an importance resample of the documents its rules keep (``resample: {weight,
k | fraction, seed}``, pipeline/filter/resample.py). The expression language and its null semantics are
pipeline/filter/grammar.py's; applying a recipe to a dataset is pipeline/filter/apply.py. The dedup flags' names live here because a recipe decides which
sibling datasets (``is_duplicate_exact/``, ``clusters_sim<t>/documents/``) it needs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.filter.grammar import (
    AGGREGATES,
    COMPARISONS,
    ColumnKinds,
    RecipeError,
    check_expression,
    column_kinds,
    column_refs,
    evaluate,
    parse_expression,
)
from pipeline.filter.resample import DROP_REASONS, Resample, parse_resample
from pipeline.io.yaml_checks import yaml_alias_problem

DEDUP_EXACT_FLAG = "is_duplicate_exact"
_FUZZY_FLAG_RE = re.compile(r"^is_fuzzy_duplicate_sim(\d+(?:\.\d+)?)$")
STRUCTURED_OPS = (*COMPARISONS, "in", "not in")
_RULE_KEYS = {"name", "expr", "signal", "op", "value", "aggregate", "description"}


def is_dedup_flag(name: str) -> bool:
    """Whether a column is a dedup flag, which is joined from a sibling dataset, not read from documents."""
    return name == DEDUP_EXACT_FLAG or bool(_FUZZY_FLAG_RE.match(name))


def fuzzy_threshold(name: str) -> str | None:
    """``is_fuzzy_duplicate_sim0.8`` -> ``"0.8"`` (the ``clusters_sim0.8`` dataset); else None."""
    match = _FUZZY_FLAG_RE.match(name)
    return match.group(1) if match else None


def fuzzy_flag(threshold: str) -> str:
    """``"0.8"`` -> ``is_fuzzy_duplicate_sim0.8``, the flag a recipe reads from ``clusters_sim0.8``."""
    return f"is_fuzzy_duplicate_sim{threshold}"


@dataclass(frozen=True)
class FlagSource:
    """Where a dedup flag is read from: the sibling dataset of the run's ``documents/`` (same relative
    paths), its column there and whether the flag is that column's negation, and the command that writes
    the dataset (for the error when it is missing)."""

    dataset: str
    column: str
    negated: bool
    command: str


def flag_source(name: str) -> FlagSource:
    """The :class:`FlagSource` of a dedup flag: ``is_duplicate_exact`` is the column of the same name in
    ``is_duplicate_exact/``; ``is_fuzzy_duplicate_sim<t>`` is *not* ``is_representative`` in
    ``clusters_sim<t>/documents/`` (a cluster's representative is the copy a filter keeps)."""
    threshold = fuzzy_threshold(name)
    if threshold is not None:
        return FlagSource(f"clusters_sim{threshold}/documents", "is_representative", True,
                          f"rpv2 dedup fuzzy --threshold {threshold}")
    if name != DEDUP_EXACT_FLAG:
        raise ValueError(f"not a dedup flag: {name!r}")
    return FlagSource(DEDUP_EXACT_FLAG, DEDUP_EXACT_FLAG, False, "rpv2 dedup exact")


def check_flags_computed(recipe: Recipe, root: str, has_files: Callable[[str], bool]) -> None:
    """Before any work: every dedup flag the recipe reads has its sibling dataset under ``root``
    (``has_files(dataset)``, the caller's filesystem); a :class:`RecipeError` naming the command to run
    otherwise."""
    for name in sorted(n for n in recipe.columns if is_dedup_flag(n)):
        source = flag_source(name)
        if not has_files(source.dataset):
            raise RecipeError(f"{recipe.source}: reads {name} but {root.rstrip('/')}/{source.dataset} does not "
                              f"exist: run `{source.command}`")


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
    resample: Resample | None = None

    @property
    def columns(self) -> set[str]:
        """The columns the rules read."""
        return set().union(*(column_refs(rule.tree) for rule in self.rules)) if self.rules else set()

    @property
    def read_columns(self) -> set[str]:
        """The columns the rules and the resample weight read."""
        return self.columns | (self.resample.columns if self.resample else set())

    def check_schema(self, schema: Any) -> None:
        """:meth:`check` against a documents file's Arrow ``schema`` plus the partition columns (snapshot,
        language, bucket) that live in its path, which a rule may read too."""
        import pyarrow as pa

        from pipeline.dataset.schema import PARTITION_COLUMNS

        for name in PARTITION_COLUMNS:
            if name not in schema.names:
                schema = schema.append(pa.field(name, pa.string()))
        self.check(column_kinds(schema))

    def check(self, kinds: ColumnKinds) -> None:
        """Validate every rule, and the resample weight, against the dataset's columns (dedup flags count
        as known booleans)."""
        known = dict(kinds)
        known.update({name: "bool" for name in self.columns if is_dedup_flag(name)})
        for rule in self.rules:
            try:
                check_expression(rule.tree, known)
            except RecipeError as exc:
                raise RecipeError(f"{self.source or self.name}: rule {rule.name!r}: {exc}") from None
        if self.resample is not None:
            try:
                self.resample.check(kinds)
            except RecipeError as exc:
                raise RecipeError(f"{self.source or self.name}: resample: {exc}") from None


def _render_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if "'" in value:
            raise RecipeError("string values may not contain a quote (')")
        return f"'{value}'"
    if isinstance(value, float) and not math.isfinite(value):
        # repr gives nan / inf, which the grammar reads as COLUMN names
        raise RecipeError(f"value {value!r} is not a finite number")
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
        if not isinstance(spec["aggregate"], str) or spec["aggregate"] not in AGGREGATES:
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
    """A recipe from its parsed YAML: ``{name, description?, rules: [...], resample?: {...}}``."""
    where = source or "recipe"
    if not isinstance(data, Mapping):
        raise RecipeError(f"{where}: must be a mapping with 'name' and 'rules'")
    unknown = set(data) - {"name", "description", "rules", "resample"}
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
    resample = None
    if "resample" in data:
        try:
            resample = parse_resample(data["resample"])
        except RecipeError as exc:
            raise RecipeError(f"{where}: resample: {exc}") from None
        for rule in rules:  # the report and the counters name the resample's drops like rules
            if rule.name in DROP_REASONS:
                raise RecipeError(f"{where}: rule {rule.name!r}: this name is the resample's drop reason")
    name = data.get("name") or (Path(source).stem if source else "recipe")
    return Recipe(name=str(name), description=str(data.get("description") or ""), rules=rules, source=where,
                  resample=resample)


def load_recipe(path: str | Path) -> Recipe:
    """Read and parse a recipe YAML file; every problem is a :class:`RecipeError` naming the file."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read: {exc}") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise RecipeError(f"{path}: nested too deeply to be read as YAML") from None
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: e.g. an integer beyond int()'s 4300 digits
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    problem = yaml_alias_problem(data)
    if problem:
        raise RecipeError(f"{path}: {problem}")
    return parse_recipe(data, str(path))


