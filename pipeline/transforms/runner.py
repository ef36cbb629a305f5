"""Which Beam runner object a pipeline of rpv2 is built with, and running it to completion.

Shared by every rpv2 pipeline (``rpv2 run``, ``rpv2 dedup exact``, ``rpv2 dedup fuzzy``) so that they
all behave the same on a machine without network access.
"""

from __future__ import annotations

from typing import Any

_DIRECT_RUNNER_NAMES = ("directrunner", "direct", "switchingdirectrunner")


def offline_direct_runner(options: Any) -> Any | None:
    """The runner to use for ``--runner=DirectRunner`` (the default): Beam's FnApiRunner, or None for
    any other runner.

    Beam 2.77's DirectRunner first tries the Prism runner, which downloads a Go binary from GitHub at run
    time and, offline, logs the failure and falls back to the FnApiRunner. We go to the FnApiRunner
    directly (as the DirectRunner does, with the pipeline options in its provision info) so that a run is
    offline and behaves the same on every machine; it honours --direct_num_workers and
    --direct_running_mode. ``--runner=PrismRunner`` still selects Prism explicitly.
    """
    from apache_beam.options.pipeline_options import StandardOptions

    runner = options.view_as(StandardOptions).runner
    if runner is not None and runner.lower() not in _DIRECT_RUNNER_NAMES:
        return None
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision_info = fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
    )
    return fn_runner.FnApiRunner(provision_info=provision_info)


def new_pipeline(options: Any) -> Any:
    """A Beam pipeline for ``options`` (PipelineOptions) on :func:`offline_direct_runner`'s runner."""
    import apache_beam as beam

    return beam.Pipeline(runner=offline_direct_runner(options), options=options)


def run_and_wait(pipeline: Any) -> Any:
    """Run ``pipeline``, wait until it finishes (raising if it failed) and return its result."""
    result = pipeline.run()
    result.wait_until_finish()
    return result
