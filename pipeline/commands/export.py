"""`rpv2 export --format rpv2 IN --output DIR`: our Parquet output in RedPajama-V2's release layout.

    rpv2 export --format rpv2 IN --output DIR

``IN`` is the output of ``rpv2 run`` or ``rpv2 filter`` (or its ``documents/`` directory). Writes, per
source file, ``documents/<snapshot>/<shard>/<lang>_<bucket>.json.gz``,
``quality_signals/.../<lang>_<bucket>.signals.json.gz``, ``minhash/.../<lang>_<bucket>.minhash.parquet``
and, where ``IN/duplicates_exact`` holds a result for the file, ``duplicates/.../<lang>_<bucket>.duplicates
.parquet`` (see pipeline/export/rpv2.py for the mapping), and ``DIR/_export_report.json``.

A Beam pipeline (pipeline/transforms/export.py), one source file per unit of work: Beam's own options
pass through (``args.beam_args``, e.g. ``--runner=DataflowRunner``, ``--direct_num_workers=2``). IN and
DIR may be any Beam filesystem URI; DIR may not be the input run or lie inside it.
"""

from __future__ import annotations

import argparse

BEAM_OPTIONS = True  # Beam's own pipeline options pass through (args.beam_args), as for `rpv2 run`
HELP = "export Parquet output to RedPajama-V2's release layout (documents, quality_signals, minhash, duplicates)"

FORMATS = ("rpv2",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="output dir of `rpv2 run` / `rpv2 filter` (or its documents/)")
    parser.add_argument("--format", required=True, choices=FORMATS, help="the layout to write (rpv2)")
    parser.add_argument("--output", required=True,
                        help="directory (local path or URI, outside IN) to write the layout under")
    parser.epilog = (
        "Beam pipeline options pass through, e.g. --runner=DataflowRunner, --direct_num_workers=2, "
        "--direct_running_mode=multi_processing."
    )


def main(args: argparse.Namespace) -> int:
    from pipeline.io.uris import OutputInsideInputError
    from pipeline.transforms.export import run_export

    try:
        stats, _ = run_export(args.input, args.output, list(getattr(args, "beam_args", None) or []))
    except (FileNotFoundError, OutputInsideInputError) as exc:
        print(f"rpv2 export: error: {exc}")
        return 2
    print(
        f"rpv2 export: {stats.documents} documents from {stats.files} files -> {args.output} "
        f"(documents, quality_signals; minhash {stats.minhash_files} files; duplicates {stats.duplicates_files} files)"
    )
    for key, value in sorted(stats.counts.items()):
        print(f"  {key}: {value}")
    for message in stats.errors[:20]:
        print(f"  error: {message}")
    if len(stats.errors) > 20:
        print(f"  ... {len(stats.errors) - 20} more errors")
    return 1 if stats.counts["unreadable_files"] else 0
