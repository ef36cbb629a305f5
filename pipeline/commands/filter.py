"""`rpv2 filter --recipe FILE IN --output DIR`: keep the documents that pass a YAML filter recipe.

    rpv2 filter --recipe configs/recipes/gopher.yaml OUT --output FILTERED

``IN`` is the output of ``rpv2 run`` (its ``documents/`` and, for recipes that read dedup flags, its
``is_duplicate_exact/`` and ``clusters_sim<t>/documents/`` from ``rpv2 dedup``). Writes the kept documents,
every column, to ``DIR/documents/`` in the same hive layout, ``DIR/_filter_report.json``, and prints
per rule the documents it dropped first, the documents it fails alone, and the null outcomes (which do
not drop): read = kept + sum(dropped first). Recipe syntax: pipeline/filter/recipe.py (rules) and
pipeline/filter/grammar.py (expressions).
"""

from __future__ import annotations

import argparse

HELP = "filter documents with a YAML recipe of rules over signals, CCNet fields and dedup flags"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="output dir of `rpv2 run` (or its documents/)")
    parser.add_argument("--recipe", required=True, help="recipe YAML (e.g. configs/recipes/gopher.yaml)")
    parser.add_argument("--output", required=True, help="directory for the kept documents and the report")


def main(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from pipeline.filter.apply import filter_dataset
    from pipeline.filter.grammar import RecipeError
    from pipeline.filter.recipe import load_recipe

    try:
        recipe = load_recipe(args.recipe)
        report = filter_dataset(args.input, args.output, recipe)
    except (RecipeError, FileNotFoundError) as exc:
        print(f"rpv2 filter: {exc}")
        return 2
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    report_path = out / "_filter_report.json"
    report_path.write_text(json.dumps(report.as_dict(), indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(report.table())
    for message in report.errors[:20]:
        print(f"  error: {message}")
    print(f"output: {out / 'documents'}  report: {report_path}")
    return 1 if report.counts.get("unreadable_files") else 0
