"""`rpv2 dedup exact|fuzzy`: cross-snapshot exact dedup and MinHash-LSH fuzzy dedup."""

from __future__ import annotations

import argparse
import importlib

HELP = "exact (sha1 Bloom filter, across snapshots) and fuzzy (MinHash LSH + connected components) dedup"

SUBCOMMANDS = {
    "exact": "pipeline.commands.dedup_exact",
    "fuzzy": "pipeline.commands.dedup_fuzzy",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dedup_command", metavar="MODE", required=True)
    for name, module_name in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        # both modes run a Beam pipeline: Beam's options pass through (pipeline.cli.CommandParser)
        cmd.accepts_beam_options = bool(getattr(module, "BEAM_OPTIONS", False))
        module.add_arguments(cmd)
        cmd.set_defaults(_dedup_main=module.main)


def main(args: argparse.Namespace) -> int:
    return int(args._dedup_main(args) or 0)
