"""The `rpv2` command line: a thin dispatcher over pipeline.commands.*.

Every command lives in its own module so that a reader finds it by name; this file only
knows the list of commands and the order `rpv2 --help` shows them in.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
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


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)  # SystemExit("message"), as the interpreter would print it
    return 1


def console_main() -> None:
    """Entry point of the `rpv2` console script and of `python -m pipeline.cli`.

    Once the command has finished and its output is flushed, the process ends with ``os._exit``
    instead of the interpreter's teardown: native libraries that a run loads (Beam's gRPC and Arrow
    thread pools among them) were seen to abort that teardown under load ("terminate called without
    an active exception", exit 134) after every file had been written, turning a finished run into a
    failure. At that point nothing is left to do: outputs are published atomically before this.
    """
    try:
        code = main()
    except SystemExit as exc:
        code = _exit_code(exc)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 - print it as the interpreter would, then exit
        import traceback

        traceback.print_exc()
        code = 1
    exit_without_teardown(code)


def exit_without_teardown(code: int) -> None:
    """Flush logging and the standard streams, then end the process with ``code`` at once
    (``os._exit``), skipping the interpreter's teardown (see :func:`console_main`)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    console_main()
