"""What an rpv2 command prints to the console through logging: one policy for the launcher and for the
SDK workers forked from the fork server (pipeline/transforms/worker_pool.py).

rpv2's own records at INFO (DEBUG with ``-v``); Beam's at WARNING (DEBUG with ``-v``); and none of the
messages Beam prints on every run whatever the user does (:data:`BEAM_NOISE`). A DirectRunner worker
process's log records reach the console twice, on the worker's stderr and relayed by the launcher
(``local_job_service: Worker: ...``); without ``-v`` the relayed copy is left out below ERROR. With
``-v`` everything is shown, noise included, as Beam prints it.
"""

from __future__ import annotations

import logging
import os

# set by the launcher for its worker processes (Beam hands them its environment): the command's -v
VERBOSE_ENV = "RPV2_VERBOSE"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Beam's messages that say nothing about the user's run: the optional GCP client libraries absent (rpv2
# needs them on Dataflow only: `pip install rpv2[gcp]`), a worker without a semi-persistent directory
# (the DirectRunner never gives one), its runner's own options a worker does not know
BEAM_NOISE = (
    "apitools not found",
    "No semi_persistent_directory found",
    "Discarding unparseable args",
)
_RELAY_LOGGER = "apache_beam.runners.portability.local_job_service"
_OURS = "_rpv2_console"  # marks the handler configure() added


class DropBeamNoise(logging.Filter):
    """Drops the records whose message holds one of :data:`BEAM_NOISE`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in BEAM_NOISE)


def verbose_from_environment() -> bool:
    return os.environ.get(VERBOSE_ENV) == "1"


def configure(verbose: bool) -> None:
    """The console policy (module docstring) on this process's root logger: a stderr handler of ours
    unless the root logger has handlers already (a test runner's capture), the noise filter on them; the
    environment's :data:`VERBOSE_ENV` is set for the worker processes this process starts. Called again (a
    worker forked from a server that called it), it replaces its own handler."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(handler)
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        setattr(handler, _OURS, True)
        root.addHandler(handler)
    if not verbose:
        for handler in root.handlers:
            if not any(isinstance(f, DropBeamNoise) for f in handler.filters):
                handler.addFilter(DropBeamNoise())
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("apache_beam").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger(_RELAY_LOGGER).setLevel(logging.DEBUG if verbose else logging.ERROR)
    os.environ[VERBOSE_ENV] = "1" if verbose else "0"
