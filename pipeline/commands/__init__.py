"""One module per `rpv2` command.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``main(args) -> int``.
Modules must stay cheap to import (heavy imports go inside ``main``) because ``rpv2 --help``
imports all of them to build the parser.
"""


def beam_epilog(engine: str | None = None) -> str:
    """The ``--help`` epilog of a command that runs a Beam pipeline (``BEAM_OPTIONS``): Beam's own options
    pass through (pipeline.cli.CommandParser); ``engine`` names the --engine value that uses them."""
    which = f" (engine {engine})" if engine else ""
    return (f"Beam pipeline options pass through{which}, e.g. --runner=DataflowRunner, --direct_num_workers=2, "
            "--direct_running_mode=multi_processing.")
