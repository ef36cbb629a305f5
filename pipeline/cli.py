"""The `rpv2` command line: a thin dispatcher over pipeline.commands.*.

Every command lives in its own module so that a reader finds it by name; this file only
knows the list of commands and the order `rpv2 --help` shows them in.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# command name -> module implementing it (HELP, add_arguments, main)
COMMANDS: dict[str, str] = {
    "run": "pipeline.commands.run",
    "signals": "pipeline.commands.signals",
    "dedup": "pipeline.commands.dedup",
    "filter": "pipeline.commands.filter",
    "export": "pipeline.commands.export",
    "models": "pipeline.commands.models",
    "artifacts": "pipeline.commands.artifacts",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rpv2",
        description="CommonCrawl to pretraining data with RedPajama-V2 quality signals, on Apache Beam.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a command not built yet must not break the others
            if exc.name != module_name:
                raise
            continue
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_main=module.main)
    return parser


class _DropBeamImportNoise(logging.Filter):
    """Beam's GCP module warns at import time that the optional GCP client libraries are absent; rpv2
    needs them only on Dataflow (`pip install rpv2[gcp]`), so the warning is noise everywhere else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_DropBeamImportNoise())
    # Beam logs every type hint it converts and every bundle at INFO; keep its warnings and errors.
    logging.getLogger("apache_beam").setLevel(logging.DEBUG if verbose else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _configure_logging("-v" in argv or "--verbose" in argv)
    parser = build_parser()
    # `rpv2` alone runs the embedded sample end to end.
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "-v", "--verbose")):
        argv = ["run", *argv]
    args, extra = parser.parse_known_args(argv)
    if not getattr(args, "_main", None):
        parser.print_help()
        return 2
    # Only `run` and `dedup` accept pass-through Beam pipeline options.
    if extra and args.command not in ("run", "dedup"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.beam_args = extra
    return int(args._main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
