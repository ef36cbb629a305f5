"""`rpv2 dedup fuzzy`: MinHash LSH near-duplicate clusters of the pipeline's Parquet output."""

from __future__ import annotations

import argparse
import json
import logging

from pipeline.commands import beam_epilog, command_error

HELP = "near-duplicate clusters (MinHash LSH + connected components) of a run's Parquet output"
BEAM_OPTIONS = True  # Beam's own pipeline options pass through (engine beam), as for `rpv2 run`

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipeline.transforms.runner import add_runner_profile_argument

    parser.add_argument("input", metavar="IN", help="output dir of `rpv2 run` (holding documents/) or that documents/ dir")
    parser.add_argument(
        "--threshold", default="0.8", help="Jaccard threshold: 0.7, 0.8, 0.9 or 1.0 (RPv2's band layouts; default 0.8)"
    )
    parser.add_argument("--output", metavar="DIR", help="where clusters_sim<t>/ is written (default: IN)")
    parser.add_argument(
        "--engine",
        choices=("beam", "local"),
        default="beam",
        help="beam: distributed large-star/small-star on any Beam runner; local: numpy + scipy in memory",
    )
    # defaults: pipeline.transforms.fuzzy_dedup's (not imported here: `rpv2 --help` must not load Beam)
    parser.add_argument("--rounds-per-pass", type=int, default=None,
                        help="beam: star rounds per pipeline (default 4, as rpv2 run)")
    parser.add_argument("--max-rounds", type=int, default=None,
                        help="beam: give up after this many rounds (default 64)")
    add_runner_profile_argument(parser)
    parser.epilog = beam_epilog("beam")


def main(args: argparse.Namespace) -> int:
    from dedup.lsh import parse_threshold
    from pipeline.dataset.layout import refuse_output_inside_documents
    from pipeline.progress import watch_document_files
    from pipeline.transforms.fuzzy_dedup import output_root, run_beam, run_local
    from pipeline.transforms.runner import command_beam_args

    try:
        threshold = parse_threshold(args.threshold)
    except ValueError as exc:
        return command_error("dedup fuzzy", exc)
    out_dir = args.output or args.input
    try:
        refuse_output_inside_documents([args.input], out_dir)
    except ValueError as exc:
        return command_error("dedup fuzzy", exc)
    try:
        beam_args = command_beam_args(args)  # --runner-profile's options, then the command line's
    except ValueError as exc:
        return command_error("dedup fuzzy", exc)
    if beam_args and args.engine == "local":
        return command_error("dedup fuzzy", f"Beam pipeline options ({' '.join(beam_args)}) apply to --engine beam, "
                                              "not local")
    try:
        with watch_document_files(args.input, output_root(out_dir, threshold), "documents/**/*.parquet",
                                  desc="dedup fuzzy"):
            if args.engine == "local":
                counters = run_local(args.input, out_dir, threshold)
            else:
                rounds = {"rounds_per_pass": args.rounds_per_pass, "max_rounds": args.max_rounds}
                counters = run_beam(args.input, out_dir, threshold, beam_args,
                                    **{name: value for name, value in rounds.items() if value is not None})
    except (FileNotFoundError, RuntimeError) as exc:
        log.error("fuzzy dedup failed: %s", exc)
        return 1
    print(json.dumps({"output": output_root(out_dir, threshold), "threshold": threshold, **counters}, indent=2,
                     sort_keys=True))
    return 0
