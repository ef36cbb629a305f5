"""`rpv2 dedup exact|fuzzy`: cross-snapshot exact dedup and MinHash-LSH fuzzy dedup."""

from __future__ import annotations

import argparse

from pipeline.commands import add_command_parsers

HELP = "exact (sha1 Bloom filter, across snapshots) and fuzzy (MinHash LSH + connected components) dedup"

SUBCOMMANDS = {
    "exact": "pipeline.commands.dedup_exact",
    "fuzzy": "pipeline.commands.dedup_fuzzy",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dedup_command", metavar="MODE", required=True)
    add_command_parsers(sub, SUBCOMMANDS, "_dedup_main")


def main(args: argparse.Namespace) -> int:
    return int(args._dedup_main(args) or 0)
