"""Bounded fuzzing of the filter recipe parser (issue 9, "Fuzzing"): mutated shipped recipes, random
expressions from the grammar's tokens, and random YAML-shaped data.

The contract under test (pipeline/filter/grammar.py, pipeline/filter/recipe.py): ``load_recipe``,
``parse_recipe`` and ``parse_expression`` either succeed or raise :class:`RecipeError` (a user error with a
message), never another exception, and never hang. What succeeds must also be usable: the parsed tree
re-parses from the rule's text to the same tree, its columns can be listed, and an expression that passes
the type checks evaluates on a row of matching types to true, false or null without an error.

Crashers found by these fuzzers are pinned as named regression tests at the end of this file.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
from conftest import REPO_ROOT
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.filter.grammar import (
    AGGREGATES,
    COMPARISONS,
    MAX_DEPTH,
    Aggregate,
    Arith,
    BoolOp,
    Column,
    Compare,
    InList,
    Negate,
    Not,
    RecipeError,
    check_expression,
    column_refs,
    evaluate,
    parse_expression,
)
from pipeline.filter.recipe import STRUCTURED_OPS, Recipe, load_recipe, parse_recipe, parse_rule

# Examples per target (five targets). RPV2_FUZZ_EXAMPLES=20000 explores further, locally; CI runs the default.
MAX_EXAMPLES = int(os.environ.get("RPV2_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=2000,  # ms per example: parsing is linear, so any example near this is a bug
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

RECIPE_FILES = sorted((REPO_ROOT / "configs" / "recipes").glob("*.yaml"))
RECIPE_TEXTS = {p.name: p.read_text(encoding="utf-8") for p in RECIPE_FILES}

SIGNALS = [
    "rps_doc_word_count",
    "rps_doc_mean_word_length",
    "rps_lines_start_with_bulletpoint",
    "ccnet_nlines",
    "bucket",
    "language",
    "is_duplicate_exact",
    "is_fuzzy_duplicate_sim0.8",
    "a.b",
    "_x1",
]
KEYWORDS = ["and", "or", "not", "in", "true", "false", "not in"]
OPERATORS = [*COMPARISONS, "(", ")", "[", "]", ",", "+", "-", "*", "/"]
NUMBERS = [
    "0",
    "1",
    "3.5",
    ".5",
    "1.",
    "1e3",
    "2E-7",
    "1_000",
    "1__0_",
    "1e999",
    "1" * 400,
    "00",
    "\u0661\u0662",
]
STRINGS = ["'head'", '"middle"', "''", "'it''s'", "'unterminated", '"', "'a\nb'"]
GRAMMAR_TOKENS = SIGNALS + KEYWORDS + OPERATORS + NUMBERS + STRINGS + list(AGGREGATES)
SEPARATORS = [" ", " ", "", "\t", "\n", "\u3000", "\x0b", "  "]


# ---- strategies ---------------------------------------------------------------------------------------

# True one time in twenty. (Not ``integers(0, 19) == 0``: hypothesis favours the bounds of a range.)
RARELY = st.sampled_from([False] * 19 + [True])

token_soup = st.lists(
    st.one_of(
        st.sampled_from(GRAMMAR_TOKENS),
        st.sampled_from(GRAMMAR_TOKENS),
        st.characters(),  # any single character, to reach the tokenizer's error path
    ),
    max_size=40,
).flatmap(
    lambda tokens: st.lists(st.sampled_from(SEPARATORS), min_size=len(tokens), max_size=len(tokens)).map(
        lambda seps: "".join(s + t for s, t in zip(seps, tokens, strict=True))
    )
)


def _grammar_expressions() -> st.SearchStrategy[str]:
    """Expressions the grammar accepts (every sub-expression in parentheses, so precedence cannot break
    them); nested as deep as hypothesis' recursion takes them."""
    leaves = st.one_of(
        st.sampled_from(SIGNALS),
        st.sampled_from(["0", "1.5", "1e3", "'head'", "true", "false", "1_000"]),
        st.builds(lambda f, s: f"{f}({s})", st.sampled_from(list(AGGREGATES)), st.sampled_from(SIGNALS)),
    )

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.builds(
                lambda a, op, b: f"({a}) {op} ({b})", inner, st.sampled_from(["+", "-", "*", "/"]), inner
            ),
            st.builds(
                lambda items, ops: (
                    " ".join(f"({x}) {o}" for x, o in zip(items[:-1], ops, strict=False)) + f" ({items[-1]})"
                ),
                st.lists(inner, min_size=2, max_size=4),
                st.lists(st.sampled_from(list(COMPARISONS)), min_size=3, max_size=3),
            ),
            st.builds(lambda a, op, b: f"({a}) {op} ({b})", inner, st.sampled_from(["and", "or"]), inner),
            st.builds(lambda a: f"not ({a})", inner),
            st.builds(lambda a: f"-({a})", inner),
            st.builds(
                lambda a, neg, vals: f"({a}) {'not in' if neg else 'in'} [{', '.join(vals)}]",
                inner,
                st.booleans(),
                st.lists(st.sampled_from(["1", "'a'", "true", "-2.5"]), max_size=3),
            ),
        )

    return st.recursive(leaves, extend, max_leaves=30)


grammar_expressions = _grammar_expressions()

YAML_PIECES = [
    ": ",
    "- ",
    "-",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "<<: *a",
    "!!binary ",
    "!!python/object:os.system ",
    "!!set ",
    "!!timestamp ",
    "|",
    ">",
    "#",
    "'",
    '"',
    "\t",
    "---\n",
    "...\n",
    "? ",
    "%YAML 1.1\n",
    "~",
    "null",
    ".nan",
    ".inf",
    "-.inf",
    "0x1F",
    "0o17",
    "1_000",
    "2001-12-14",
    "yes",
    "no",
    "on",
    "\n  ",
    "\n",
    "\\",
    "\ufeff",
    "\x00",
    "\x85",
    "\u2028",
]


def alias_bomb(levels: int, width: int = 10) -> str:
    """A flow sequence of ``levels`` anchors, each ``width`` aliases of the previous one: a few hundred bytes
    of YAML that stand for width**levels values (PyYAML shares them; printing or copying expands them)."""
    parts = [f"&l0 [{', '.join(['x'] * width)}]"]
    parts += [f"&l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


# Values written into a recipe in place of a key's value.
YAML_VALUES = [
    "null",
    "~",
    "",
    "[]",
    "{}",
    "[1]",
    "{a: 1}",
    ".nan",
    ".inf",
    "-.inf",
    "1e400",
    "9" * 5000,
    "!!binary aGk=",
    "!!set {a}",
    "2001-12-14",
    "no",
    "&c [*c]",
    "&d {k: *d}",
    alias_bomb(6),
    "[" * 100 + "]" * 100,
    "[" * 1000,  # beyond PyYAML's recursive composer, even with the recursion limit hypothesis raises
]


def _deep_expression(n: int, kind: str) -> str:
    if kind == "parens":
        return "(" * n + "x" + ")" * n
    if kind == "not":
        return "not " * n + "x"
    if kind == "minus":
        return "-" * n + "x > 0"
    return " + ".join(["x"] * (n + 1)) + " > 0"  # n operators


@st.composite
def mutated_recipe_texts(draw) -> tuple[str, bytes, tuple[str, ...]]:
    """(source recipe, damaged file bytes, what was done)."""
    name = draw(st.sampled_from(sorted(RECIPE_TEXTS)))
    text, damage = RECIPE_TEXTS[name], []
    for _ in range(draw(st.integers(1, 4))):
        lines = text.split("\n")
        op = draw(
            st.sampled_from(
                [
                    "value",  # first and twice: a YAML surprise in place of a value reaches the most code
                    "value",
                    "insert",
                    "insert",
                    "delete",
                    "dup_line",
                    "drop_line",
                    "swap_lines",
                    "indent",
                    "char",
                    "expr",
                    "expr",
                    "deep",
                ]
            )
        )
        at = draw(st.integers(0, len(text)))
        if op == "insert":
            piece = draw(st.one_of(st.sampled_from(YAML_PIECES), st.sampled_from(GRAMMAR_TOKENS)))
            text = text[:at] + piece + text[at:]
        elif op == "delete":
            n = draw(st.integers(1, 40))
            text, piece = text[:at] + text[at + n :], n
        elif op in ("dup_line", "drop_line", "indent", "swap_lines"):
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if op == "dup_line":
                lines.insert(j, lines[i])
            elif op == "drop_line":
                del lines[i]
            elif op == "swap_lines":
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines[i] = draw(st.sampled_from(["", " ", "  ", "    ", "\t"])) + lines[i].lstrip()
            text, piece, at = "\n".join(lines), (i, j), None
        elif op == "char":
            piece = draw(st.characters())
            text = text[:at] + piece + text[at + 1 :]
        elif op == "value":  # a key's value replaced by a YAML surprise
            keyed = [k for k, line in enumerate(lines) if ":" in line and not line.lstrip().startswith("#")]
            k, piece = draw(st.sampled_from(keyed)), draw(st.sampled_from(YAML_VALUES))
            lines[k] = lines[k].split(":", 1)[0] + ": " + piece
            text, at = "\n".join(lines), k
        else:  # replace one rule's expression: token soup, a grammar expression, or a deeply nested one
            exprs = [k for k, line in enumerate(lines) if line.strip().startswith("expr:")]
            if not exprs:
                continue
            k = draw(st.sampled_from(exprs))
            if op == "deep":
                piece = _deep_expression(
                    draw(st.sampled_from([MAX_DEPTH, MAX_DEPTH + 1, 200, 2000])),
                    draw(st.sampled_from(["parens", "not", "minus", "sum"])),
                )
            else:
                piece = draw(st.one_of(token_soup, grammar_expressions))
            indent = lines[k][: len(lines[k]) - len(lines[k].lstrip())]
            lines[k] = f"{indent}expr: {_yaml_quoted(piece)}"
            text, at = "\n".join(lines), k
        damage.append(f"{op} at {at}: {piece!r}"[:200])
    data = text.encode("utf-8", "surrogatepass")
    if draw(RARELY):  # not UTF-8 at all
        at = draw(st.integers(0, len(data)))
        junk = draw(st.binary(min_size=1, max_size=8))
        data = data[:at] + junk + data[at:]
        damage.append(f"bytes {junk!r} at {at}")
    return name, data, tuple(damage)


def _yaml_quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(SIGNALS + list(STRUCTURED_OPS) + list(AGGREGATES) + ["head", "it's"]),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(yaml_scalars, inner, max_size=4)),
    max_leaves=12,
)


odd_values = st.one_of(
    yaml_scalars,
    st.lists(yaml_scalars, max_size=3),
    st.dictionaries(yaml_scalars, yaml_scalars, max_size=3),
    yaml_values,
)


def _mostly(plausible: st.SearchStrategy) -> st.SearchStrategy:
    """The plausible value seven times in eight, else any YAML-shaped value (a collection half the time)."""
    return st.sampled_from([True] * 7 + [False]).flatmap(lambda ok: plausible if ok else odd_values)


@st.composite
def rule_specs(draw, index: int) -> Any:
    """A rule mapping whose every field is mostly plausible, sometimes anything; sometimes not a mapping."""
    if draw(RARELY):
        return draw(yaml_values)
    spec: dict[Any, Any] = {}
    if not draw(RARELY):
        spec["name"] = draw(_mostly(st.sampled_from([f"rule{index}", f"r{index}", "dup"])))
    if draw(st.booleans()):
        spec["expr"] = draw(_mostly(st.one_of(grammar_expressions, token_soup)))
    else:
        for key, plausible in (
            ("signal", st.sampled_from(SIGNALS)),
            ("op", st.sampled_from(list(STRUCTURED_OPS))),
            ("value", st.one_of(yaml_scalars, st.lists(yaml_scalars, min_size=1, max_size=4))),
            ("aggregate", st.one_of(st.none(), st.sampled_from(list(AGGREGATES)))),
        ):
            if not draw(RARELY):
                spec[key] = draw(_mostly(plausible))
    if draw(RARELY):
        spec[draw(yaml_scalars)] = draw(yaml_values)
    return spec


@st.composite
def recipe_data(draw) -> Any:
    if draw(RARELY):
        return draw(yaml_values)
    n = 0 if draw(RARELY) else draw(st.integers(1, 4))
    rules = [draw(rule_specs(i)) for i in range(n)]
    data: dict[Any, Any] = {"rules": draw(yaml_values) if draw(RARELY) else rules}
    if draw(st.booleans()):
        data["name"] = draw(_mostly(st.text(max_size=10)))
    if draw(st.booleans()):
        data["description"] = draw(_mostly(st.text(max_size=10)))
    if draw(RARELY):
        data[draw(yaml_scalars)] = draw(yaml_values)
    return data


# ---- invariants of what parses ----------------------------------------------------------------------------


def _walk(node: Any):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, Arith):
            stack += [n.left, n.right]
        elif isinstance(n, (Negate, Not, InList)):
            stack.append(n.operand)
        elif isinstance(n, Compare):
            stack += list(n.operands)
        elif isinstance(n, BoolOp):
            stack += list(n.items)


def _kinds_of(tree: Any) -> dict[str, str] | None:
    """Column kinds under which ``tree`` may type-check: aggregated columns are line-level lists, the
    rest numbers; None when a column is used both ways."""
    kinds: dict[str, str] = {}
    for n in _walk(tree):
        if isinstance(n, (Column, Aggregate)):
            name, kind = (n.name, "num") if isinstance(n, Column) else (n.column, "list")
            if kinds.setdefault(name, kind) != kind:
                return None
    return kinds


ROW_NUMBERS = st.one_of(
    st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**63), 2**63 - 1)
)


def check_usable(tree: Any, text: str, draw_row) -> None:
    """What parses re-parses to the same tree, lists its columns, and, when it type-checks, evaluates
    to true / false / null on a row of matching types."""
    assert parse_expression(text) == tree
    refs = column_refs(tree)
    kinds = _kinds_of(tree)
    if kinds is None:
        return
    assert set(kinds) == refs
    try:
        check_expression(tree, kinds)
    except RecipeError as exc:
        assert str(exc)
        event("parsed, rejected by the type checks")
        return
    row = {
        name: draw_row(st.lists(ROW_NUMBERS, max_size=5) if kind == "list" else ROW_NUMBERS)
        for name, kind in kinds.items()
    }
    assert evaluate(tree, row) in (True, False, None)
    event("parsed, checked and evaluated")


def expect_recipe_error(fn, *args) -> Any:
    """``fn(*args)``'s value, or None after a RecipeError with a message; any other exception fails."""
    try:
        return fn(*args)
    except RecipeError as exc:
        assert str(exc).strip(), "a RecipeError must say what is wrong"
        event("RecipeError")
        return None


# ---- the fuzz targets ---------------------------------------------------------------------------------


deep_expressions = st.builds(
    _deep_expression, st.integers(1, 3000), st.sampled_from(["parens", "not", "minus", "sum"])
)


@FUZZ
@given(text=st.one_of(token_soup, grammar_expressions, deep_expressions), data=st.data())
def test_fuzz_parse_expression_on_token_soup_and_grammar_expressions(text, data):
    tree = expect_recipe_error(parse_expression, text)
    if tree is not None:
        check_usable(tree, text, data.draw)


@FUZZ
@given(text=grammar_expressions, data=st.data())
def test_fuzz_every_grammar_expression_parses_unless_too_deep(text, data):
    try:
        tree = parse_expression(text)
    except RecipeError as exc:
        assert "nested" in str(exc), (text, str(exc))
        event("too deep")
        return
    check_usable(tree, text, data.draw)


@FUZZ
@given(case=mutated_recipe_texts(), data=st.data())
def test_fuzz_load_recipe_with_mutated_shipped_recipes(tmp_path_factory, case, data):
    name, content, _damage = case
    path = tmp_path_factory.getbasetemp() / f"fuzz-{name}"
    path.write_bytes(content)
    try:
        recipe = load_recipe(path)
    except RecipeError as exc:
        assert str(path) in str(exc), f"the error must name the file: {exc}"
        event("RecipeError")
        return
    # no YAML alias expands a few bytes of the file into millions of values
    assert len(repr(recipe)) <= 50 * len(content) + 20_000, "the recipe is far larger than its file"
    _check_recipe(recipe, data.draw)


@FUZZ
@given(spec=recipe_data(), data=st.data())
def test_fuzz_parse_recipe_with_random_yaml_shaped_data(spec, data):
    recipe = expect_recipe_error(parse_recipe, spec, "fuzz.yaml")
    if recipe is not None:
        _check_recipe(recipe, data.draw)
        for rule_spec, rule in zip(spec["rules"], recipe.rules, strict=True):
            if "signal" in rule_spec:  # the structured form reads exactly its signal
                assert column_refs(rule.tree) == {rule_spec["signal"]}, (rule_spec, rule.expr)


@FUZZ
@given(spec=rule_specs(0), data=st.data())
def test_fuzz_parse_rule_with_random_fields(spec, data):
    rule = expect_recipe_error(parse_rule, spec, 0)
    if rule is not None:
        check_usable(rule.tree, rule.expr, data.draw)
        if "signal" in spec:  # the structured form reads exactly its signal
            assert column_refs(rule.tree) == {spec["signal"]}, (spec, rule.expr)


def _check_recipe(recipe: Recipe, draw) -> None:
    event("recipe loaded")
    names = [rule.name for rule in recipe.rules]
    assert names and len(set(names)) == len(names) and all(n.strip() for n in names)
    assert recipe.columns == set().union(*(column_refs(rule.tree) for rule in recipe.rules))
    for rule in recipe.rules:
        check_usable(rule.tree, rule.expr, draw)


# ---- regression tests: crashers the fuzzers found ------------------------------------------------------


@pytest.mark.parametrize("kind", ["parens", "not", "minus", "sum"])
def test_regression_10000_deep_expression_is_a_recipe_error_not_a_recursion_error(kind):
    """Found by the fuzzers: "((((...x" 10,000 deep (and 10,000 x "not", "-", or a 10,000-term sum, whose
    tree is as deep) raised RecursionError from the parser or from column_refs/evaluate."""
    with pytest.raises(RecipeError, match=f"nested more than {MAX_DEPTH} levels"):
        parse_expression(_deep_expression(10_000, kind))


@pytest.mark.parametrize("kind", ["parens", "not", "minus", "sum"])
def test_nesting_up_to_the_bound_parses_and_evaluates(kind):
    depth = MAX_DEPTH - 1 if kind in ("minus", "sum") else MAX_DEPTH  # "x > 0" adds a level
    tree = parse_expression(_deep_expression(depth, kind))
    assert column_refs(tree) == {"x"}
    expected = {"parens": 3.0, "not": bool(depth % 2) is False, "minus": depth % 2 == 0, "sum": True}[kind]
    assert evaluate(tree, {"x": 3.0}) == expected
    with pytest.raises(RecipeError, match="nested"):
        parse_expression(_deep_expression(depth + 1, kind))


def test_regression_deep_expression_in_a_recipe_file_names_the_rule(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text(
        f'name: deep\nrules:\n  - name: deep_rule\n    expr: "{_deep_expression(10_000, "parens")}"\n'
    )
    with pytest.raises(RecipeError, match=r"deep\.yaml: rule 'deep_rule': expression nested more than"):
        load_recipe(path)


def test_regression_aggregate_that_is_not_a_string():
    """Found by the fuzzers: an unhashable ``aggregate:`` (a list or mapping) raised TypeError."""
    spec = {"rules": [{"name": "a", "signal": "x", "op": "<", "value": 1, "aggregate": [1]}]}
    with pytest.raises(RecipeError, match=r"rule 'a': 'aggregate' must be one of mean, sum"):
        parse_recipe(spec)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_regression_non_finite_structured_value_is_an_error_not_a_column(value):
    """Found by the fuzzers: ``value: .nan`` / ``.inf`` rendered as ``x < nan``, which parses ``nan`` as a
    COLUMN name (the rule then read a column nobody meant)."""
    spec = {"rules": [{"name": "a", "signal": "x", "op": "<", "value": value}]}
    with pytest.raises(RecipeError, match="rule 'a': value .* is not a finite number"):
        parse_recipe(spec)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"name: \xff\xfe\nrules: []\n", "not UTF-8"),  # UnicodeDecodeError escaped
        (b"[" * 10_000, "nested too deeply"),  # RecursionError escaped from yaml
        (
            b"name: x\nrules:\n  - {name: a, signal: x, op: '<', value: " + b"1" * 5000 + b"}\n",
            "not valid YAML",
        ),
    ],
    ids=["invalid_utf8", "yaml_nested_10000_deep", "int_of_5000_digits"],
)
def test_regression_unreadable_recipe_files_are_recipe_errors(tmp_path, content, message):
    """Found by the fuzzers: bytes that are not UTF-8, YAML nested 10,000 deep and an integer of 5,000
    digits (beyond Python's int/str conversion limit) escaped load_recipe as UnicodeDecodeError,
    RecursionError and ValueError."""
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(RecipeError, match=f"bad.yaml: {message}"):
        load_recipe(path)


@pytest.mark.parametrize(
    "value, message",
    [
        ("&a [*a]", "a YAML alias refers to a value that contains it"),
        (alias_bomb(9), "YAML aliases expand to more"),
    ],
    ids=["alias_containing_itself", "alias_bomb"],
)
def test_regression_yaml_alias_problems_are_recipe_errors(tmp_path, value, message):
    """An alias bomb as the recipe's ``name:`` (a few hundred bytes standing for 10**9 values) was turned
    into a string by parse_recipe: minutes and gigabytes. Refused with the same check as run configs."""
    path = tmp_path / "bomb.yaml"
    path.write_text(f"name: {value}\nrules:\n  - name: a\n    expr: 'x > 0'\n")
    with pytest.raises(RecipeError, match=f"bomb.yaml: {message}"):
        load_recipe(path)
