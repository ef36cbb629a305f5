"""`rpv2 export --format rpv2 IN --output DIR`: our Parquet output in RedPajama-V2's release layout.

    rpv2 export --format rpv2 IN --output DIR

``IN`` is the output of ``rpv2 run`` or ``rpv2 filter`` (or its ``documents/`` directory). Writes, per
source file, ``documents/<snapshot>/<shard>/<lang>_<bucket>.json.gz``,
``quality_signals/.../<lang>_<bucket>.signals.json.gz``, ``minhash/.../<lang>_<bucket>.minhash.parquet``
and, where ``IN/duplicates_exact`` holds a result for the file, ``duplicates/.../<lang>_<bucket>.duplicates
.parquet`` (see pipeline/export/rpv2.py for the mapping).
"""

from __future__ import annotations

import argparse

HELP = "export Parquet output to RedPajama-V2's release layout (documents, quality_signals, minhash, duplicates)"

FORMATS = ("rpv2",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="output dir of `rpv2 run` / `rpv2 filter` (or its documents/)")
    parser.add_argument("--format", required=True, choices=FORMATS, help="the layout to write (rpv2)")
    parser.add_argument("--output", required=True, help="directory (local path or URI) to write the layout under")


def main(args: argparse.Namespace) -> int:
    from pipeline.export.rpv2 import export_rpv2

    try:
        stats = export_rpv2(args.input, args.output)
    except FileNotFoundError as exc:
        print(f"rpv2 export: {exc}")
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
