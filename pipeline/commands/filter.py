"""`rpv2 filter --recipe FILE IN --output DIR`: keep the documents that pass a YAML filter recipe.

    rpv2 filter --recipe configs/recipes/gopher.yaml OUT --output FILTERED

``IN`` is the output of ``rpv2 run`` (its ``documents/`` and, for recipes that read dedup flags, its
``is_duplicate_exact/`` and ``clusters_sim<t>/documents/`` from ``rpv2 dedup``). Writes the kept documents,
every column, to ``DIR/documents/`` in the same hive layout, ``DIR/_filter_report.json``, and prints
per rule the documents it dropped first, the documents it fails alone, and the null outcomes (which do
not drop): read = kept + sum(dropped first). Recipe syntax: pipeline/filter/recipe.py (rules) and
pipeline/filter/grammar.py (expressions). A recipe may end with ``resample: {weight, k | fraction, seed}``
(pipeline/filter/resample.py): a draw without replacement, in proportion to exp(weight), of the documents
the rules keep; its drops are the report's rows ``resample_null_weight`` and ``resample_not_selected``.

A Beam pipeline (pipeline/transforms/filter.py), one source file per unit of work: Beam's own options
pass through (``args.beam_args``, e.g. ``--runner=DataflowRunner``, ``--direct_num_workers=2``). IN and
DIR may be any Beam filesystem URI; DIR may not be the input run or lie inside it.
"""

from __future__ import annotations

import argparse

from pipeline.commands import beam_epilog, command_error

BEAM_OPTIONS = True  # Beam's own pipeline options pass through (args.beam_args), as for `rpv2 run`
HELP = "filter documents with a YAML recipe of rules over signals, CCNet fields and dedup flags"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipeline.transforms.runner import add_runner_profile_argument

    parser.add_argument("input", metavar="IN", help="output dir of `rpv2 run` (or its documents/)")
    parser.add_argument("--recipe", required=True,
                        help="recipe YAML: rules, then optionally resample: {weight, k | fraction, seed} "
                             "(e.g. configs/recipes/gopher.yaml, configs/recipes/rpv2_importance_resample.yaml)")
    parser.add_argument("--output", required=True,
                        help="directory (local path or URI, outside IN) for the kept documents and report")
    add_runner_profile_argument(parser)
    parser.epilog = beam_epilog()


def main(args: argparse.Namespace) -> int:
    from pipeline.config import ConfigError
    from pipeline.filter.grammar import RecipeError
    from pipeline.filter.recipe import load_recipe
    from pipeline.io.uris import OutputInsideInputError
    from pipeline.progress import watch_document_files
    from pipeline.transforms.filter import report_uri, run_filter
    from pipeline.transforms.runner import command_beam_args

    try:
        recipe = load_recipe(args.recipe)
        with watch_document_files(args.input, args.output, "documents/**/*.parquet", desc="filter"):
            report, _ = run_filter(args.input, args.output, recipe, command_beam_args(args))
    except (RecipeError, FileNotFoundError, OutputInsideInputError, ConfigError) as exc:
        return command_error("filter", exc)
    print(report.table())
    for message in report.errors[:20]:
        print(f"  error: {message}")
    print(f"output: {args.output.rstrip('/')}/documents  report: {report_uri(args.output)}")
    return 1 if report.counts.get("unreadable_files") or report.counts.get("files_not_fitting_recipe") else 0
