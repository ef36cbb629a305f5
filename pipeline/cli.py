"""The `rpv2` command line: a thin dispatcher over pipeline.commands.*.

Every command lives in its own module so that a reader finds it by name; this file only knows the list
of commands, the order `rpv2 --help` shows them in, and the rules every command line follows:

- strict: an option that is neither the command's own nor (for the commands that run a Beam pipeline:
  ``run``, ``dedup exact``, ``dedup fuzzy``) one of Beam's pipeline options is an error naming it, so a
  typo (``--output-dir``) cannot silently fall back to a default; prefixes of options are not accepted;
- Beam's own options pass through as Beam spells them (``--runner=FlinkRunner --parallelism=8``), are
  checked against Beam's option parser (:mod:`pipeline.preflight`) and reach the command as
  ``args.beam_args``; a command module declares ``BEAM_OPTIONS = True`` to accept them;
- every error is one line, ``rpv2 CMD: error: ...``, exit code 2, before any work starts.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from pipeline import console_logging
from pipeline.commands import add_command_parsers

# command name -> module implementing it (HELP, add_arguments, main; BEAM_OPTIONS if it runs Beam)
COMMANDS: dict[str, str] = {
    "run": "pipeline.commands.run",
    "signals": "pipeline.commands.signals",
    "dedup": "pipeline.commands.dedup",
    "filter": "pipeline.commands.filter",
    "export": "pipeline.commands.export",
    "models": "pipeline.commands.models",
    "artifacts": "pipeline.commands.artifacts",
    "report": "pipeline.commands.report",
    "contamination": "pipeline.commands.contamination",
}

START_HERE = """\
to start:
  rpv2 run                                                  the embedded sample, offline, end to end
  rpv2 run --snapshot 2023-06 --shards 0 --output out/      shard 0 (of 5000) of a real CommonCrawl snapshot
"""

VERBOSE_FLAGS = ("-v", "--verbose")  # accepted anywhere on the line, before or after the command
_NEGATIVE_NUMBER = re.compile(r"-\d+$|-\d*\.\d+$")


def version() -> str:
    """The installed distribution's version; from a checkout that is not installed, pyproject.toml's."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("rpv2")
    except PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        text = pyproject.read_text(encoding="utf-8") if pyproject.is_file() else ""
        match = re.search(r'^\[project\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.MULTILINE | re.DOTALL)
        return match.group(1) if match else "unknown"


class CommandParser(argparse.ArgumentParser):
    """The parser of rpv2 and of each of its commands: prefixes of options are not options
    (``allow_abbrev=False``), errors are one line, and a command's arguments are sorted before argparse
    sees them (:meth:`split_arguments`) so that Beam options never reach a positional argument and
    unknown options are named."""

    accepts_beam_options = False  # set on the parser of a command whose module has BEAM_OPTIONS = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None):  # type: ignore[override]
        if args is not None and not self._subcommands():
            kept, beam_args = self.split_arguments(list(args))
            if namespace is None:
                namespace = argparse.Namespace()
            namespace.beam_args = beam_args
            return super().parse_known_args(kept, namespace)
        return super().parse_known_args(args, namespace)

    def _subcommands(self) -> argparse._SubParsersAction | None:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action
        return None

    def split_arguments(self, args: list[str]) -> tuple[list[str], list[str]]:
        """(this command's arguments, Beam's options) of a command's argument list, in order.

        An option of the command keeps its values; a Beam option (for a command that accepts them) goes
        with its values to the second list, which is checked against Beam's parser and runners here;
        anything else that looks like an option is an error naming it. Everything after ``--`` is the
        command's."""
        kept: list[str] = []
        beam: list[str] = []
        i = 0
        while i < len(args):
            token = args[i]
            if token == "--":
                kept += args[i:]
                break
            if not token.startswith("-") or token == "-" or _NEGATIVE_NUMBER.match(token):
                kept.append(token)
                i += 1
                continue
            flag, inline = token.split("=", 1)[0], "=" in token
            action = self._option_string_actions.get(flag)
            if action is not None:
                n = 0 if inline else _values_taken(action.nargs, args, i)
                kept += args[i:i + 1 + n]
                i += 1 + n
                continue
            n = self._beam_option(flag)
            n = 0 if inline else n
            beam += args[i:i + 1 + n]
            i += 1 + n
        if beam:
            from pipeline.preflight import PreflightError, check_beam_args

            try:
                check_beam_args(beam)
            except PreflightError as exc:
                self.error(str(exc))
        return kept, beam

    def _beam_option(self, flag: str) -> int:
        """The number of values Beam's option ``flag`` takes; an error naming ``flag`` if it is not an
        option this command accepts."""
        from pipeline.preflight import beam_option_arity, beam_option_names, suggest

        own = [f for f in self._option_string_actions if f.startswith("--")]
        arity = beam_option_arity(flag)
        if arity is None and self.accepts_beam_options:
            hint = suggest(flag, own + sorted(beam_option_names()))
            self.error(f"unknown option {flag}: neither an option of {self.prog} nor a Beam pipeline option{hint}")
        if arity is None:
            self.error(f"unknown option {flag}: not an option of {self.prog}{suggest(flag, own)}")
        if not self.accepts_beam_options:
            self.error(f"{flag} is a Beam pipeline option, and {self.prog} runs no Beam pipeline")
        return arity


def _values_taken(nargs: Any, args: Sequence[str], i: int) -> int:
    """How many of the arguments after ``args[i]`` an option with ``nargs`` takes (as argparse would)."""
    if nargs == 0:
        return 0
    if nargs is None:
        return 1
    if isinstance(nargs, int):
        return nargs
    if nargs == argparse.REMAINDER:
        return len(args) - i - 1
    following = 0
    for token in args[i + 1:]:
        if token.startswith("-") and not _NEGATIVE_NUMBER.match(token):
            break
        following += 1
    return min(following, 1) if nargs == argparse.OPTIONAL else following


class _VersionAction(argparse.Action):
    """``--version``: the version is looked up only when asked (importlib.metadata costs start-up)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option_string: Any = None):
        print(f"rpv2 {version()}")  # on stdout, as argparse's own version action
        parser.exit(0)


def build_parser(command: str | None = None) -> CommandParser:
    """rpv2's parser; with ``command`` (the command a line names), only that command's module is
    imported and its parser built, so a command's start-up does not pay for every other command's
    imports (``rpv2 --help`` and a bare ``rpv2`` still list them all)."""
    parser = CommandParser(
        prog="rpv2",
        description="CommonCrawl to pretraining data with RedPajama-V2 quality signals, on Apache Beam.",
        epilog=START_HERE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action=_VersionAction, help="print rpv2's version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_command_parsers(sub, {command: COMMANDS[command]} if command in COMMANDS else COMMANDS, "_main")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    end = argv.index("--") if "--" in argv else len(argv)
    verbose = any(arg in VERBOSE_FLAGS for arg in argv[:end])
    argv = [arg for arg in argv[:end] if arg not in VERBOSE_FLAGS] + argv[end:]
    console_logging.configure(verbose)
    parser = build_parser(argv[0] if argv else None)
    if argv and argv[0].startswith("-") and argv[0].split("=", 1)[0] not in parser._option_string_actions:
        parser.error(f"unknown option {argv[0]}: options go after the command, e.g. rpv2 run {argv[0]} ...")
    _start_fork_server(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "_main", None):  # `rpv2` alone: what it does and how to start
        parser.print_help()
        return 0
    try:
        return int(args._main(args) or 0)
    finally:
        _stop_fork_server()


def _start_fork_server(argv: Sequence[str]) -> None:
    """For a Beam command whose command line asks for DirectRunner worker processes: their fork server
    (pipeline/transforms/worker_pool.py) starts before the command line is checked, which imports Beam,
    so that the server imports Beam and the command's ``WORKER_IMPORTS`` at the same time. (Options from
    a config file or a runner profile start it later, in the command.)"""
    module = sys.modules.get(COMMANDS.get(argv[0], "")) if argv else None
    if module is None or not getattr(module, "BEAM_OPTIONS", False):
        return
    from pipeline.transforms import worker_pool

    worker_pool.start_for(argv, imports=getattr(module, "WORKER_IMPORTS", ()))


def _stop_fork_server() -> None:
    """The fork server of the command's SDK workers (pipeline/transforms/worker_pool.py) lives as long
    as the command, also when main() is called in-process."""
    worker_pool = sys.modules.get("pipeline.transforms.worker_pool")
    if worker_pool is not None:
        worker_pool.stop()


def console_main() -> None:
    """Entry point of the `rpv2` console script and of `python -m pipeline.cli`. A command that returns
    ends with :func:`exit_without_teardown`; one that raises, with Python's ordinary exit."""
    exit_without_teardown(main())


def exit_without_teardown(code: int) -> None:
    """Exit with ``code`` once the command is done, without the interpreter's teardown.

    Why: the teardown of the ~2,500 modules Beam, pyarrow, pandas and gRPC bring, and of the models a
    command loaded, takes 0.3-0.4 s of every command, after its outputs are published and its summary
    printed. Everything an exit must do is still done: the atexit handlers run (job servers and fork
    servers stopped, temporary directories removed), logging is shut down, stdout and stderr are
    flushed. With a non-daemon thread still running, or anything failing here, Python's ordinary exit
    runs instead. (An abort at teardown, exit 134, once seen here came from pyarrow reads through
    Python file objects; pipeline.dataset.files.read_parquet explains and avoids it, and the tests'
    in-process runs still tear down normally.)"""
    import atexit
    import threading

    if any(t is not threading.main_thread() and not t.daemon and t.is_alive() for t in threading.enumerate()):
        sys.exit(code)
    try:
        atexit._run_exitfuncs()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - whatever went wrong, the ordinary exit reports it
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":
    console_main()
