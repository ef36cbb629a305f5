"""One module per `rpv2` command.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``main(args) -> int``.
Modules must stay cheap to import (heavy imports go inside ``main``) because ``rpv2 --help``
imports all of them to build the parser.
"""
