"""`rpv2 filter --recipe`: YAML rules over signals, CCNet fields and dedup flags; the per-rule report.

Specification: pipeline/filter/grammar.py's docstring (expression language, null semantics) and RPv2's
README filter examples (gopher_rules_pass, c4_rules_pass), which configs/recipes/ restate as data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO_ROOT

from pipeline.dataset.files import read_documents_file
from pipeline.filter.grammar import (
    Aggregate,
    BoolOp,
    Column,
    Compare,
    Const,
    InList,
    Not,
    RecipeError,
    evaluate,
    parse_expression,
)
from pipeline.filter.recipe import load_recipe, parse_recipe
from pipeline.transforms.filter import run_filter

RECIPES = REPO_ROOT / "configs" / "recipes"
SHIPPED = sorted(RECIPES.glob("*.yaml"))


def _recipe(*rules: dict, name: str = "t"):
    return parse_recipe({"name": name, "rules": list(rules)}, f"{name}.yaml")


# ---- parsing ------------------------------------------------------------------------------------------


def test_chained_comparison_parses_to_one_compare():
    assert parse_expression("50 <= rps_doc_word_count <= 100_000") == Compare(
        ("<=", "<="), (Const(50.0), Column("rps_doc_word_count"), Const(100000.0))
    )


def test_boolean_operators_bind_not_then_and_then_or():
    tree = parse_expression("a > 1 or not b and c == 'x'")
    assert isinstance(tree, BoolOp) and tree.op == "or"
    right = tree.items[1]
    assert isinstance(right, BoolOp) and right.op == "and" and isinstance(right.items[0], Not)


def test_in_and_not_in_lists_and_aggregates():
    assert parse_expression("bucket not in ['head', \"middle\"]") == InList(Column("bucket"), ("head", "middle"), True)
    tree = parse_expression("mean(rps_lines_num_words) >= 1e-3")
    assert tree == Compare((">=",), (Aggregate("mean", "rps_lines_num_words"), Const(0.001)))


def test_structured_rule_equals_its_expression_form():
    a = _recipe({"name": "r", "signal": "rps_lines_num_words", "aggregate": "sum", "op": ">", "value": 3})
    b = _recipe({"name": "r", "expr": "sum(rps_lines_num_words) > 3"})
    assert a.rules[0].tree == b.rules[0].tree
    c = _recipe({"name": "r", "signal": "bucket", "op": "in", "value": ["head", "middle"]})
    assert c.rules[0].tree == InList(Column("bucket"), ("head", "middle"), False)


@pytest.mark.parametrize(
    "expr, message",
    [
        ("rps_doc_word_count >", "unexpected end"),
        ("rps_doc_word_count >> 3", "unexpected '>'"),
        ("__import__('os').system('x')", "unexpected character '.'"),
        ("eval(x) > 1", "unknown function 'eval'"),
        ("a; b", "unexpected character ';'"),
        ("(a > 1", "expected ')'"),
        ("a in [b]", "only constants"),
    ],
)
def test_syntax_errors_name_the_rule(expr, message):
    with pytest.raises(RecipeError) as err:
        _recipe({"name": "my_rule", "expr": expr})
    assert "rule 'my_rule'" in str(err.value) and message in str(err.value)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"name": "r", "expr": "x > 1", "signal": "x"}, "either 'expr' or"),
        ({"name": "r"}, "either 'expr' or"),
        ({"name": "r", "expr": "x > 1", "threshold": 2}, "unknown key(s) threshold"),
        ({"name": "r", "signal": "x", "op": "=~", "value": 1}, "'op' must be one of"),
        ({"name": "r", "signal": "x", "op": ">"}, "'value' is missing"),
        ({"name": "r", "signal": "x", "op": "in", "value": 3}, "non-empty list"),
        ({"name": "r", "expr": 3}, "must be a string"),
        ({"expr": "x > 1"}, "rule #1: 'name' is missing"),
    ],
)
def test_malformed_rules_are_reported_with_their_name(spec, message):
    with pytest.raises(RecipeError, match="t.yaml") as err:
        _recipe(spec)
    assert message in str(err.value)


def test_recipe_level_errors():
    with pytest.raises(RecipeError, match="'rules' must be a non-empty list"):
        parse_recipe({"name": "x", "rules": []}, "x.yaml")
    with pytest.raises(RecipeError, match="rule 'a': duplicate rule name"):
        _recipe({"name": "a", "expr": "x > 1"}, {"name": "a", "expr": "x < 3"})
    with pytest.raises(RecipeError, match="unknown key"):
        parse_recipe({"name": "x", "rulez": []}, "x.yaml")


def test_load_recipe_reports_bad_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nrules: [ {name: a, expr: 'x > 1'\n", encoding="utf-8")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(path)


KINDS = {"x": "num", "bucket": "str", "lines": "list", "flag": "bool"}


@pytest.mark.parametrize(
    "expr, message",
    [
        ("nope > 1", "unknown column 'nope'"),
        ("lines > 1", "line-level signal: use an aggregate"),
        ("mean(x) > 1", "needs a line-level signal"),
        ("bucket > 1", "cannot compare"),
        ("bucket < 'tail'", "only == and != compare"),
        ("x + 1", "must be a condition"),
        ("not x", "'not' needs a condition"),
    ],
)
def test_type_checks_against_the_dataset_columns(expr, message):
    recipe = _recipe({"name": "typed", "expr": expr})
    with pytest.raises(RecipeError) as err:
        recipe.check(KINDS)
    assert "rule 'typed'" in str(err.value) and message in str(err.value)


# ---- semantics ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr, row, expected",
    [
        ("3 <= x <= 10", {"x": 3}, True),
        ("3 <= x <= 10", {"x": 10.5}, False),
        ("x > 1", {"x": None}, None),
        ("x > 1 and y > 1", {"x": 0, "y": None}, False),  # Kleene: false and null = false
        ("x > 1 or y > 1", {"x": 5, "y": None}, True),  # true or null = true
        ("x > 1 or y > 1", {"x": 0, "y": None}, None),
        ("not x > 1", {"x": None}, None),
        ("sum(lines) / n <= 0.9", {"lines": [1.0, 1.0, 0.0], "n": 3}, True),
        ("sum(lines) / n <= 0.9", {"lines": [1.0, 1.0, 1.0], "n": 3}, False),
        ("sum(lines) / n <= 0.9", {"lines": [], "n": 0}, None),  # division by zero is null
        ("mean(lines) >= 0.5", {"lines": [1.0, None, 0.0]}, True),  # null elements skipped
        ("mean(lines) >= 0.5", {"lines": []}, None),
        ("count(lines) == 0", {"lines": []}, True),
        ("bucket in ['head', 'middle']", {"bucket": "tail"}, False),
        ("not flag", {"flag": True}, False),
        ("-x < -2", {"x": 3}, True),
    ],
)
def test_evaluation(expr, row, expected):
    assert evaluate(parse_expression(expr), row) is expected


def _read_all(documents: Path, columns: list[str] | None = None) -> list[dict]:
    """Every row of a documents dataset, file by file, partition columns restored from the paths."""
    return [row for path in sorted(documents.rglob("*.parquet"))
            for row in read_documents_file(path, columns=columns).to_pylist()]


def _small_dataset(root: Path) -> None:
    """Two files of a documents dataset plus an is_duplicate_exact sibling for one of them."""
    schema = pa.schema([
        ("id", pa.string()), ("id_int", pa.uint64()), ("bucket", pa.string()), ("language", pa.string()),
        ("rps_doc_word_count", pa.float64()), ("rps_doc_ut1_blacklist", pa.float64()),
        ("rps_lines_ending_with_terminal_punctution_mark", pa.list_(pa.float64())),
    ])
    files = {
        "snapshot=2023-06/language=en/bucket=head/0000.parquet": [
            ("2023-06/0000/en_head.json.gz/0", 10, "head", "en", 120.0, None, [1.0, 1.0]),
            ("2023-06/0000/en_head.json.gz/1", 11, "head", "en", 20.0, None, [1.0, 0.0]),
            ("2023-06/0000/en_head.json.gz/2", 12, "head", "en", 80.0, 3.0, [0.0, 0.0, 1.0]),
            ("2023-06/0000/en_head.json.gz/3", 13, "head", "en", None, None, []),
        ],
        "snapshot=2023-06/language=en/bucket=tail/0000.parquet": [
            ("2023-06/0000/en_tail.json.gz/0", 20, "tail", "en", 500.0, None, [1.0]),
        ],
    }
    for rel, rows in files.items():
        path = root / "documents" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema=schema), path)
    flags = pa.table({"id": ["2023-06/0000/en_head.json.gz/0", "2023-06/0000/en_head.json.gz/2"],
                      "id_int": pa.array([10, 12], pa.uint64()), "is_duplicate_exact": [False, True]})
    path = root / "is_duplicate_exact" / "snapshot=2023-06/language=en/bucket=head/0000.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(flags, path)


SMALL_RECIPE = {
    "name": "small",
    "rules": [
        {"name": "words", "expr": "rps_doc_word_count >= 50"},
        {"name": "punct", "expr": "mean(rps_lines_ending_with_terminal_punctution_mark) >= 0.5"},
        {"name": "ut1", "expr": "rps_doc_ut1_blacklist == 0"},
        {"name": "not_tail", "signal": "bucket", "op": "!=", "value": "tail"},
        {"name": "not_dup", "expr": "not is_duplicate_exact"},
    ],
}


def test_filter_keeps_rows_counts_first_and_alone_and_nulls(tmp_path):
    _small_dataset(tmp_path / "in")
    report, _ = run_filter(tmp_path / "in", tmp_path / "out", parse_recipe(SMALL_RECIPE, "small.yaml"))
    kept = pq.read_table(tmp_path / "out/documents/snapshot=2023-06/language=en/bucket=head/0000.parquet")
    # /0 passes all; /1 too few words; /2 punct 1/3 and dup; /3 null everywhere -> kept; tail dropped
    assert kept.column("id").to_pylist() == ["2023-06/0000/en_head.json.gz/0", "2023-06/0000/en_head.json.gz/3"]
    assert kept.schema == pq.read_schema(tmp_path / "in/documents/snapshot=2023-06/language=en/bucket=head/0000.parquet")
    assert not (tmp_path / "out/documents/snapshot=2023-06/language=en/bucket=tail").exists()
    counts = {name: vars(c) for name, c in report.rule_counts.items()}
    assert counts["words"] == {"dropped_first": 1, "dropped_alone": 1, "null": 1}
    assert counts["punct"] == {"dropped_first": 1, "dropped_alone": 1, "null": 1}
    # null for all but /2, which punct dropped first
    assert counts["ut1"] == {"dropped_first": 0, "dropped_alone": 1, "null": 4}
    assert counts["not_tail"] == {"dropped_first": 1, "dropped_alone": 1, "null": 0}
    # /1, /3 and the tail file have no flag: null (kept); /2 is a duplicate
    assert counts["not_dup"] == {"dropped_first": 0, "dropped_alone": 1, "null": 3}
    assert (report.read, report.kept) == (5, 2)
    assert report.identity_holds
    assert report.counts == {"files_without_is_duplicate_exact": 1}


def test_dedup_flag_without_dedup_output_is_a_clear_error(tmp_path):
    _small_dataset(tmp_path / "in")
    recipe = parse_recipe({"name": "f", "rules": [{"name": "fz", "expr": "not is_fuzzy_duplicate_sim0.8"}]}, "f.yaml")
    with pytest.raises(RecipeError, match=r"rpv2 dedup fuzzy --threshold 0.8"):
        run_filter(tmp_path / "in", tmp_path / "out", recipe)


def test_unknown_signal_fails_before_writing_and_names_the_rule(tmp_path):
    _small_dataset(tmp_path / "in")
    recipe = parse_recipe({"name": "u", "rules": [{"name": "typo", "expr": "rps_doc_wordcount > 3"}]}, "u.yaml")
    with pytest.raises(RecipeError, match="rule 'typo': unknown column 'rps_doc_wordcount'"):
        run_filter(tmp_path / "in", tmp_path / "out", recipe)
    assert not (tmp_path / "out").exists()


def test_corrupt_file_is_counted_not_fatal(tmp_path):
    _small_dataset(tmp_path / "in")
    (tmp_path / "in/documents/snapshot=2023-06/language=en/bucket=tail/0000.parquet").write_bytes(b"junk")
    report, _ = run_filter(tmp_path / "in", tmp_path / "out", parse_recipe(SMALL_RECIPE, "small.yaml"))
    assert report.counts["unreadable_files"] == 1 and report.read == 4 and report.identity_holds
    assert "bucket=tail/0000.parquet: skipped" in report.errors[0]


# ---- shipped recipes on the embedded sample run ---------------------------------------------------------


def test_shipped_recipes_load():
    names = {path.stem: load_recipe(path) for path in SHIPPED}
    assert {"gopher", "c4", "rpv2_head_middle_dedup"} <= set(names)
    gopher = names["gopher"]
    assert {"rps_doc_word_count", "rps_doc_mean_word_length", "rps_doc_symbol_to_word_ratio",
            "rps_doc_frac_lines_end_with_ellipsis", "rps_doc_frac_no_alph_words",
            "rps_lines_start_with_bulletpoint", "ccnet_nlines"} <= gopher.columns
    assert {f"rps_doc_frac_chars_top_{n}gram" for n in (2, 3, 4)} <= gopher.columns
    assert {f"rps_doc_frac_chars_dupe_{n}grams" for n in range(5, 11)} <= gopher.columns


@pytest.mark.parametrize("recipe", SHIPPED, ids=lambda p: p.stem)
def test_shipped_recipe_runs_on_the_sample(sample_run, tmp_path, recipe, capsys):
    from pipeline.cli import main

    assert main(["filter", "--recipe", str(recipe), str(sample_run), "--output", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "read == kept + sum(dropped first): ok" in printed
    report = json.loads((tmp_path / "_filter_report.json").read_text(encoding="utf-8"))
    assert report["read"] == report["kept"] + sum(r["dropped_first"] for r in report["rules"])
    assert report["read"] == len(_read_all(sample_run / "documents", ["id"]))
    kept_files = sorted((tmp_path / "documents").rglob("*.parquet"))
    kept = sum(pq.read_metadata(p).num_rows for p in kept_files)
    assert kept == report["kept"] and 0 < kept < report["read"]
    assert sum(p["kept"] for p in report["by_partition"].values()) == kept


def test_kept_documents_satisfy_the_gopher_rules(sample_run, tmp_path):
    recipe = load_recipe(RECIPES / "gopher.yaml")
    run_filter(sample_run, tmp_path, recipe)
    rows = _read_all(tmp_path / "documents")
    assert rows
    for row in rows:
        assert row["rps_doc_word_count"] is None or 50 <= row["rps_doc_word_count"] <= 100_000
        assert row["rps_doc_frac_no_alph_words"] is None or row["rps_doc_frac_no_alph_words"] <= 0.2


def test_head_middle_dedup_drops_tail_and_the_exact_duplicate(sample_run, tmp_path):
    report, _ = run_filter(sample_run, tmp_path, load_recipe(RECIPES / "rpv2_head_middle_dedup.yaml"))
    rows = _read_all(tmp_path / "documents", ["id", "bucket"])
    assert {r["bucket"] for r in rows} <= {"head", "middle"}
    flags = _read_all(sample_run / "is_duplicate_exact")
    duplicates = {f["id"] for f in flags if f["is_duplicate_exact"]}
    assert duplicates and not duplicates & {r["id"] for r in rows}
    assert report.rule_counts["not_exact_duplicate"].null == 0


def test_cli_bad_recipe_exits_2_naming_the_rule(sample_run, tmp_path, capsys):
    from pipeline.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nrules:\n  - name: oops\n    expr: 'rps_doc_word_count >< 3'\n", encoding="utf-8")
    assert main(["filter", "--recipe", str(bad), str(sample_run), "--output", str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    assert "rule 'oops'" in captured.err and captured.out == ""


def test_near_duplicates_are_dropped_by_their_cluster_flags(sample_run, tmp_path):
    rule = {"name": "not_near_dup", "expr": "not is_fuzzy_duplicate_sim0.8"}
    recipe = parse_recipe({"name": "fz", "rules": [rule]}, "fz.yaml")
    report, _ = run_filter(sample_run, tmp_path, recipe)
    flags = _read_all(sample_run / "clusters_sim0.8" / "documents", ["id", "is_representative"])
    near = {f["id"] for f in flags if f["is_representative"] is False}
    every = [r["id"] for r in _read_all(sample_run / "documents", ["id"])]
    kept = [r["id"] for r in _read_all(tmp_path / "documents", ["id"])]
    assert near and kept == [i for i in every if i not in near]  # joined file by file, rows in order
    assert report.rule_counts["not_near_dup"].dropped_first == len(near)


# ---- the Beam pipeline: any worker count, counters, outputs never overwrite inputs -------------------

TWO_PROCESSES = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
FLAGS_RECIPE = {
    "name": "flags",
    "rules": [
        {"name": "not_near_dup", "expr": "not is_fuzzy_duplicate_sim0.8"},
        {"name": "not_exact_dup", "expr": "not is_duplicate_exact"},
        {"name": "words", "expr": "rps_doc_word_count >= 60"},
    ],
}


def _sha256s(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_worker_processes_write_the_same_bytes_and_the_counters_equal_the_report(sample_run, tmp_path):
    recipe = parse_recipe(FLAGS_RECIPE, "flags.yaml")
    one, one_counters = run_filter(sample_run, tmp_path / "one", recipe, ["--direct_num_workers=1"])
    two, two_counters = run_filter(sample_run, tmp_path / "two", recipe, TWO_PROCESSES)
    written = _sha256s(tmp_path / "one")
    assert "_filter_report.json" in written and len(written) > 2
    assert _sha256s(tmp_path / "two") == written
    read = len(_read_all(sample_run / "documents", ["id"]))
    kept = len(_read_all(tmp_path / "one" / "documents", ["id"]))
    assert 0 < kept < read
    for report, counters in ((one, one_counters), (two, two_counters)):
        assert counters == report.counters()
        assert (counters["documents_read"], counters["documents_kept"]) == (read, kept)
        assert read == kept + sum(counters[f"dropped_{rule['name']}"] for rule in FLAGS_RECIPE["rules"])


def _recipe_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL_RECIPE), encoding="utf-8")
    return path


@pytest.mark.parametrize("spelling", ["same", "same-with-slash", "inside", "file-url", "through-symlink",
                                      "documents-dir-given"])
def test_filter_refuses_an_output_inside_its_input_before_any_work(tmp_path, capsys, spelling):
    run = tmp_path / "in"
    _small_dataset(run)
    (tmp_path / "link").symlink_to(run)
    given, output = {
        "same": (run, str(run)),
        "same-with-slash": (run, f"{run}/"),
        "inside": (run, str(run / "filtered")),
        "file-url": (run, f"file://{run}/filtered"),
        "through-symlink": (tmp_path / "link", str(run / "filtered")),
        "documents-dir-given": (run / "documents", str(run / "filtered")),
    }[spelling]
    recipe = _recipe_file(tmp_path)
    before = _sha256s(run)
    from pipeline.cli import main

    assert main(["filter", "--recipe", str(recipe), str(given), "--output", output]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "outputs never overwrite inputs" in captured.err and not captured.out
    assert _sha256s(run) == before and not (run / "filtered").exists()


def test_filter_writes_beside_or_above_its_input(tmp_path):
    _small_dataset(tmp_path / "runs" / "in")
    runs = tmp_path / "runs"
    report, _ = run_filter(runs / "in", runs, parse_recipe(SMALL_RECIPE, "small.yaml"))
    assert report.kept == len(_read_all(runs / "documents")) == 2


@pytest.mark.parametrize("argv", [
    ["dedup", "exact", "{run}/documents", "--state", "{tmp}/state"],  # default output: the documents dir
    ["dedup", "exact", "{run}", "--output", "{run}/documents/snapshot=2023-06", "--state", "{tmp}/state"],
    ["dedup", "fuzzy", "{run}/documents/"],
    ["dedup", "fuzzy", "{run}", "--output", "file://{run}/documents"],
], ids=["exact-default-output", "exact-inside", "fuzzy-default-output", "fuzzy-file-url"])
def test_dedup_refuses_to_write_into_the_documents_it_reads(tmp_path, capsys, argv):
    from pipeline.cli import main

    run = tmp_path / "run"
    _small_dataset(run)
    before = _sha256s(tmp_path)
    assert main([arg.format(run=run, tmp=tmp_path) for arg in argv]) == 2
    captured = capsys.readouterr()
    assert "outputs never overwrite inputs" in captured.err and "error" not in captured.out
    assert _sha256s(tmp_path) == before and not (tmp_path / "state").exists()
