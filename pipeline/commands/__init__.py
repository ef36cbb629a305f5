"""One module per `rpv2` command.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``main(args) -> int``.
Modules must stay cheap to import (heavy imports go inside ``main``) because ``rpv2 --help``
imports all of them to build the parser.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def add_command_parsers(subparsers: Any, modules: Mapping[str, str], main_dest: str) -> None:
    """One parser per command module in ``modules`` (name -> module path), in order, under ``subparsers``;
    each module's ``main`` is stored as ``main_dest`` on the parsed arguments. A module not built yet is
    left out, so it cannot break the others. Used for the commands (pipeline.cli) and for a command's own
    modes (``rpv2 dedup exact|fuzzy``)."""
    import importlib

    for name, module_name in modules.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        parser = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        # a command that runs a Beam pipeline takes Beam's options too (pipeline.cli.CommandParser)
        parser.accepts_beam_options = bool(getattr(module, "BEAM_OPTIONS", False))
        module.add_arguments(parser)
        parser.set_defaults(**{main_dest: module.main})


def beam_epilog(engine: str | None = None) -> str:
    """The ``--help`` epilog of a command that runs a Beam pipeline (``BEAM_OPTIONS``): Beam's own options
    pass through (pipeline.cli.CommandParser); ``engine`` names the --engine value that uses them."""
    which = f" (engine {engine})" if engine else ""
    return (f"Beam pipeline options pass through{which}, e.g. --runner=DataflowRunner, --direct_num_workers=2, "
            "--direct_running_mode=multi_processing.")


def command_error(command: str, message: object) -> int:
    """Report a user's mistake that stops ``rpv2 COMMAND`` before (or instead of) its work: one line on
    stderr, ``rpv2 COMMAND: error: MESSAGE`` (the form the CLI's own parser errors take). Returns 2, the
    exit code of a usage error (a command whose work had started returns 1 instead). Stdout stays for what
    a command produces (its summary, its report), so a script can parse it."""
    import sys

    print(f"rpv2 {command}: error: {message}", file=sys.stderr)
    return 2
