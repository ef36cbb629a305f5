"""Which Beam runner object a pipeline of rpv2 is built with, and running it to completion.

Shared by every rpv2 pipeline (``rpv2 run``, ``rpv2 dedup exact``, ``rpv2 dedup fuzzy``, ``rpv2 filter``,
``rpv2 export``) so that they all behave the same on a machine without network access, and take the same
``--runner-profile NAME`` (:func:`add_runner_profile_argument`, :func:`command_beam_args`).

- ``--runner=DirectRunner`` (the default): Beam's FnApiRunner in this process (:func:`offline_direct_runner`).
- Any other runner: Beam's own runner for ``--runner`` (FlinkRunner, SparkRunner, DataflowRunner, ...),
  never a silent fallback to the DirectRunner.
- FlinkRunner and SparkRunner start a Java job server (``java -jar`` the job-server jar from Beam's jar
  cache, see scripts/install_flink.sh and scripts/install_spark.sh) unless ``--job_endpoint`` names one.
  Beam would leave that JVM running until the Python process exits (one more per pipeline) and let it
  write its Flink/Spark scratch files into /tmp; :func:`run_and_wait` gives it a temporary directory of
  its own (``-Djava.io.tmpdir``, unless the options set one), reads the job's metrics from it when the
  job is done, then stops it and removes the directory. Every line the JVM prints goes to the
  ``pipeline.transforms.runner.job_server`` logger at DEBUG (``rpv2 -v`` shows them); when the job
  fails, the last lines are logged as an error.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

logger = logging.getLogger(__name__)
job_server_logger = logging.getLogger(__name__ + ".job_server")

# --runner values (lower-cased) that mean the DirectRunner
DIRECT_RUNNER_NAMES = ("directrunner", "direct", "switchingdirectrunner")
# the job server's scratch directories: <tempdir>/rpv2-job-server-<pid>-<random>
_SCRATCH_PREFIX = "rpv2-job-server-"
_SCRATCH_NAME = re.compile(re.escape(_SCRATCH_PREFIX) + r"(\d+)-")
_TAIL_LINES = 80  # job-server lines logged when a job fails


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
    if runner is not None and runner.lower() not in DIRECT_RUNNER_NAMES:
        return None
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    from pipeline.transforms import worker_pool

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision_info = fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
    )
    server = worker_pool.running()
    if server is not None:
        return _forked_workers_runner(fn_runner.FnApiRunner)(server.worker_command(), provision_info=provision_info)
    return fn_runner.FnApiRunner(provision_info=provision_info)


@functools.cache
def _forked_workers_runner(base: type) -> type:
    """Beam's FnApiRunner, with the SDK workers of ``--direct_running_mode=multi_processing`` forked
    from rpv2's fork server (pipeline/transforms/worker_pool.py) instead of started as fresh
    interpreters: the same runner, bundles and bytes, only the worker command differs."""
    from apache_beam.portability import python_urns

    class ForkedWorkersFnApiRunner(base):  # type: ignore[misc, valid-type]
        def __init__(self, worker_command: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.worker_command = worker_command

        def run_via_runner_api(self, pipeline_proto: Any, options: Any) -> Any:
            # Beam has just set its default environment, `python -m ...sdk_worker_main` run by a shell
            # (a SUBPROCESS_SDK environment whose payload is that command): ours runs instead
            for environment in pipeline_proto.components.environments.values():
                if environment.urn == python_urns.SUBPROCESS_SDK and b"sdk_worker_main" in environment.payload:
                    environment.payload = self.worker_command.encode("utf-8")
            return super().run_via_runner_api(pipeline_proto, options)

    return ForkedWorkersFnApiRunner


def _skip_ipython_import() -> None:
    """Beam asks, for every transform applied, whether it runs inside IPython, by importing IPython
    (0.3 s where IPython is installed). A process that has not imported IPython is not inside it, so
    the answer is known without the import; inside IPython (imported), Beam's own check runs."""
    import apache_beam.pipeline
    from apache_beam.utils import interactive_utils

    check = interactive_utils.is_in_ipython
    if getattr(check, "rpv2_skips_import", False):
        return

    def is_in_ipython() -> bool:
        return "IPython" in sys.modules and check()

    is_in_ipython.rpv2_skips_import = True  # type: ignore[attr-defined]
    # the module's own callers (alter_label_if_ipython) and Pipeline.run, which imported it by name
    interactive_utils.is_in_ipython = is_in_ipython
    apache_beam.pipeline.is_in_ipython = is_in_ipython


def add_runner_profile_argument(parser: Any) -> None:
    """``--runner-profile NAME`` on a command that runs a Beam pipeline: the one definition every such
    command uses (with :func:`command_beam_args`), so that a profile means the same thing everywhere."""
    parser.add_argument(
        "--runner-profile", metavar="NAME", default=None,
        help="Beam runner profile: configs/runners/NAME.yaml (direct, dataflow, flink, flink-local, spark, "
             "spark-local) or a YAML file; its beam: options, then the Beam options on the command line (they win)",
    )


def profile_beam_args(profile: str | None, beam_args: Sequence[str] = ()) -> list[str]:
    """The Beam arguments of a pipeline: the runner profile's ``beam:`` options as flags (``${VAR}`` and ``~``
    expanded, as ``rpv2 run`` reads them: pipeline.config), then ``beam_args`` (the command line), which
    win. A profile's other keys are ``rpv2 run`` settings and do not apply here.

    Raises pipeline.config.ConfigError (a ValueError: unknown profile, unreadable YAML, unset variable,
    an option Beam does not know), before any work."""
    if not profile:
        return list(beam_args)
    from pipeline.config import beam_options_to_args, expand_profile, read_yaml, runner_profile_path
    from pipeline.preflight import check_beam_args

    options = expand_profile(read_yaml(runner_profile_path(profile)), profile).get("beam") or {}
    args = beam_options_to_args(options) + list(beam_args)
    check_beam_args(args)
    return args


def command_beam_args(args: Any) -> list[str]:
    """:func:`profile_beam_args` for a parsed command line (``args.runner_profile``, ``args.beam_args``).
    When they ask for DirectRunner worker processes, the process's fork server starts now, so that it
    imports Beam while the command prepares its pipeline (pipeline/transforms/worker_pool.py)."""
    from pipeline.transforms import worker_pool

    beam_args = profile_beam_args(getattr(args, "runner_profile", None), getattr(args, "beam_args", None) or ())
    worker_pool.start_for(beam_args)
    return beam_args


def new_pipeline(options: Any) -> Any:
    """A Beam pipeline for ``options`` (PipelineOptions): on :func:`offline_direct_runner`'s runner for the
    DirectRunner, otherwise on the runner ``--runner`` names, created by Beam (``beam.Pipeline`` copies
    ``options``: what a runner changes in them does not leak into the next pipeline built from them)."""
    import apache_beam as beam

    _skip_ipython_import()
    return beam.Pipeline(runner=offline_direct_runner(options), options=options)


def run_and_wait(pipeline: Any) -> Any:
    """Run ``pipeline``, wait until it finishes (raising if it failed) and return its result. The local
    Flink or Spark job server Beam starts for it lives for this pipeline only (see the module docstring)."""
    with _local_job_server(pipeline) as tail:
        try:
            result = pipeline.run()
            result.wait_until_finish()
            if tail is not None:
                # a portable runner's result asks its job server for the metrics (once, then keeps them):
                # ask now, before the job server is stopped
                result.metrics()
        except BaseException:
            if tail:
                logger.error("the job server's last lines:\n%s", "\n".join(tail))
            raise
    return result


# --------------------------------------------------------------------------------------------------
# Flink / Spark job servers
# --------------------------------------------------------------------------------------------------


def _starts_local_job_server(runner: Any, options: Any) -> bool:
    """FlinkRunner / SparkRunner without ``--job_endpoint`` and without the uber-jar submission (which
    starts no job server): Beam would start ``java -jar <job server>`` for the job."""
    from apache_beam.options.pipeline_options import FlinkRunnerOptions, PortableOptions, SparkRunnerOptions
    from apache_beam.runners.portability.flink_runner import FlinkRunner
    from apache_beam.runners.portability.spark_runner import SparkRunner

    if options.view_as(PortableOptions).job_endpoint:
        return False
    if isinstance(runner, FlinkRunner):
        return not options.view_as(FlinkRunnerOptions).flink_submit_uber_jar
    if isinstance(runner, SparkRunner):
        return not options.view_as(SparkRunnerOptions).spark_submit_uber_jar
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _scratch_dir() -> str:
    """A new ``<tempdir>/rpv2-job-server-<pid>-XXXX``; those of processes that no longer exist (a killed
    run) are removed first, so they do not pile up."""
    base = tempfile.gettempdir()
    with contextlib.suppress(OSError):
        for name in os.listdir(base):
            match = _SCRATCH_NAME.match(name)
            if match and not _pid_alive(int(match.group(1))):
                shutil.rmtree(os.path.join(base, name), ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-", dir=base)


class _JobServerOutput(logging.Filter):
    """On Beam's job-server logger (one INFO record per line the JVM prints): re-logs each line to
    :data:`job_server_logger` at DEBUG, keeps the last lines, and drops the INFO record (thousands of
    Flink lines per job would drown rpv2's own output)."""

    def __init__(self, tail: collections.deque[str]) -> None:
        super().__init__()
        self.tail = tail

    def filter(self, record: logging.LogRecord) -> bool:
        line = record.getMessage()
        self.tail.append(line)
        job_server_logger.debug("%s", line)
        return False


@contextlib.contextmanager
def _local_job_server(pipeline: Any) -> Iterator[collections.deque[str] | None]:
    """For a FlinkRunner / SparkRunner pipeline that starts a local job server: give the job server a
    scratch directory, keep a handle on the job server Beam's runner creates for the run
    (``runner.default_job_server``, wrapped on this pipeline's runner object only), yield the last lines
    it printed, then stop it and remove the directory. Any other pipeline: nothing."""
    from apache_beam.options.pipeline_options import JobServerOptions

    runner, options = pipeline.runner, pipeline.options  # the pipeline's own copy of the options
    if not _starts_local_job_server(runner, options):
        yield None
        return
    scratch = _scratch_dir()
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    job_server_options = options.view_as(JobServerOptions)
    jvm_properties = list(job_server_options.job_server_jvm_properties or [])
    if not any(prop.startswith("-Djava.io.tmpdir=") for prop in jvm_properties):
        # the embedded Flink mini-cluster's blob store, spill and upload dirs, Spark's scratch, ...
        job_server_options.job_server_jvm_properties = [*jvm_properties, f"-Djava.io.tmpdir={scratch}"]
    if not job_server_options.artifacts_dir:
        job_server_options.artifacts_dir = os.path.join(scratch, "artifacts")
    servers: list[Any] = []
    filtered: list[tuple[logging.Logger, logging.Filter, int]] = []
    default_job_server = runner.default_job_server

    def job_server_for_this_run(job_options: Any) -> Any:
        server = default_job_server(job_options)  # StopOnExitJobServer(FlinkJarJobServer(...)), not started
        servers.append(server)
        inner = getattr(server, "_job_server", server)
        beam_logger = logging.getLogger(type(inner).__name__)  # the logger Beam gives the JVM's output
        output = _JobServerOutput(tail)
        filtered.append((beam_logger, output, beam_logger.level))
        beam_logger.addFilter(output)
        beam_logger.setLevel(logging.INFO)  # so that every line reaches the filter
        logger.info("starting %s for this pipeline (scratch dir %s)", type(inner).__name__, scratch)
        return server

    runner.default_job_server = job_server_for_this_run
    # Beam's submission side makes temporary directories it never removes (a mkdtemp() per environment
    # for its staged dependencies): Python's temporary files go to the scratch dir too while the job runs
    saved_tempdir, tempfile.tempdir = tempfile.tempdir, scratch
    try:
        yield tail
    finally:
        tempfile.tempdir = saved_tempdir
        try:
            for server in servers:
                server.stop()
        finally:
            del runner.default_job_server
            for beam_logger, output, level in filtered:
                beam_logger.removeFilter(output)
                beam_logger.setLevel(level)
            shutil.rmtree(scratch, ignore_errors=True)
