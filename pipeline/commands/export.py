"""`rpv2 export --format rpv2|hf IN --output DIR`: our Parquet output in RedPajama-V2's release layout, or
in a layout HuggingFace ``datasets`` loads with every column.

    rpv2 export --format rpv2 IN --output DIR
    rpv2 export --format hf IN --output DIR [--signature-names undotted|both]

``IN`` is the output of ``rpv2 run`` or ``rpv2 filter`` (or its ``documents/`` directory). Writes, per
source file, ``documents/<snapshot>/<shard>/<lang>_<bucket>.json.gz``,
``quality_signals/.../<lang>_<bucket>.signals.json.gz``, ``minhash/.../<lang>_<bucket>.minhash.parquet``
and, where ``IN/duplicates_exact`` holds a result for the file, ``duplicates/.../<lang>_<bucket>.duplicates
.parquet`` (see pipeline/export/rpv2.py for the mapping), and ``DIR/_export_report.json``. ``--format hf``
writes ``DIR/data/<snapshot>/<language>/<bucket>/<shard>.parquet`` with snapshot/language/bucket as real
columns and ``signature_sim0_7``-style MinHash column names, a dataset card ``DIR/README.md`` with one
config per language and bucket, and the report (pipeline/export/hf.py).

A Beam pipeline (pipeline/transforms/export.py), one source file per unit of work: Beam's own options
pass through (``args.beam_args``, e.g. ``--runner=DataflowRunner``, ``--direct_num_workers=2``), after
those of ``--runner-profile NAME`` as for every Beam command. IN and DIR may be any Beam filesystem URI;
DIR may not be the input run or lie inside it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pipeline.commands import beam_epilog, command_error

if TYPE_CHECKING:
    from pipeline.export.hf import HFExportStats

BEAM_OPTIONS = True  # Beam's own pipeline options pass through (args.beam_args), as for `rpv2 run`
HELP = ("export Parquet output to RedPajama-V2's release layout (documents, quality_signals, minhash, "
        "duplicates) or to a HuggingFace datasets layout (hf)")

FORMATS = ("rpv2", "hf")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipeline.transforms.runner import add_runner_profile_argument

    parser.add_argument("input", metavar="IN", help="output dir of `rpv2 run` / `rpv2 filter` (or its documents/)")
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="the layout to write: rpv2 (RPv2's release files) or hf (Parquet for HF datasets)")
    parser.add_argument("--output", required=True,
                        help="directory (local path or URI, outside IN) to write the layout under")
    # pipeline.export.hf.SIGNATURE_NAMES, spelled out: `rpv2 --help` must not import pyarrow
    parser.add_argument("--signature-names", choices=("undotted", "both"), default="undotted",
                        help="hf: MinHash columns as signature_sim0_7 ... (default), or both that and RPv2's "
                             "signature_sim0.7 (the bands stored twice)")
    add_runner_profile_argument(parser)
    parser.epilog = beam_epilog()


def main(args: argparse.Namespace) -> int:
    from pipeline.config import ConfigError
    from pipeline.io.uris import OutputInsideInputError
    from pipeline.progress import watch_document_files
    from pipeline.transforms.export import run_export, run_export_hf
    from pipeline.transforms.runner import command_beam_args

    try:
        beam_args = command_beam_args(args)
        published = "data/**/*.parquet" if args.format == "hf" else "documents/**/*.json.gz"  # one per file
        with watch_document_files(args.input, args.output, published, desc="export"):
            if args.format == "hf":
                hf_stats = run_export_hf(args.input, args.output, beam_args, signature_names=args.signature_names)[0]
            else:
                stats, _ = run_export(args.input, args.output, beam_args)
    except (FileNotFoundError, OutputInsideInputError, ConfigError) as exc:
        return command_error("export", exc)
    if args.format == "hf":
        return _report_hf(hf_stats, args.output)
    print(
        f"rpv2 export: {stats.documents} documents from {stats.files} files -> {args.output} "
        f"(documents, quality_signals; minhash {stats.minhash_files} files; duplicates {stats.duplicates_files} files)"
    )
    for line in stats.problem_lines():
        print(line)
    return 1 if stats.counts["unreadable_files"] else 0


def _report_hf(stats: HFExportStats, output: str) -> int:
    """Print what ``--format hf`` wrote; exit code 1 when a file could not be read."""
    print(f"rpv2 export: {stats.documents} documents from {stats.files} files -> {output.rstrip('/')}/data "
          f"(HuggingFace datasets layout; dataset card {output.rstrip('/')}/README.md, "
          f"{len(stats.configs)} language_bucket configs)")
    if stats.flags:
        from pipeline.export.hf import undotted

        print(f"  dedup flags joined by id: {', '.join(undotted(name) for name in stats.flags)}")
    for line in stats.problem_lines():
        print(line)
    return 1 if stats.counts["unreadable_files"] else 0
