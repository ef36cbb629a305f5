"""Checks of a run's configuration before any work starts, each mistake reported as one line.

A crawl-scale run that dies after an hour because its output cannot be written, or that silently
writes somewhere else because a flag was misspelt, costs more than any check. So everything that can
be known before the first byte is read is checked here, once the configuration is loaded and before a
sample is built, a listing read or a pipeline started:

- paths: the output (and the exact-dedup state) can be created and written; ``--cutoffs``,
  ``--lid-model``, ``--models-dir``, ``--artifacts`` and ``--work-dir`` exist and are of the right kind;
  ``file://`` URLs are turned into the local paths the readers and Beam's filesystems need;
- the models: kept languages without ``{lang}.sp.model`` + ``{lang}.arpa.bin`` are named in a warning
  (their documents get bucket ``all``: a choice a run may make, so not an error);
- Beam: every pipeline option is one Beam knows, with a value it accepts, and the runner exists
  (:func:`check_beam_args`, also used by ``rpv2 dedup exact|fuzzy`` and by the command line's split of
  Beam flags from rpv2's own, :func:`beam_option_arity`);
- the base URL: its scheme is one rpv2 reads, a local mirror exists, and an HTTP(S) host answers within
  seconds (:func:`probe_http`) rather than after minutes of retries on the listing.

Errors are :class:`PreflightError`, a :class:`pipeline.config.ConfigError`, so a command prints them as
it prints any configuration error and exits 2. Nothing here writes anything that outlives the check.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import importlib
import os
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pipeline.config import ConfigError, RunConfig


class PreflightError(ConfigError):
    """A setting the run cannot work with; the message (one line) names the setting and the value."""


# Model inputs: a local path (checked here) or a URI that workers fetch into their cache, checked against
# recorded sha256s (pipeline.io.fetch; a directory URI carries a SHA256SUMS manifest).
LOCAL_FILES = ("lid_model", "cutoffs")
LOCAL_DIRS = ("models_dir", "artifacts")
MODEL_URI_SCHEMES = ("http", "https", "s3", "gs")
# Local scratch, on each worker: a local path only.
SCRATCH_DIRS = ("work_dir",)
# Settings written through Beam's filesystems (local, s3://, gs:// with apache-beam[gcp], ...).
WRITTEN_DIRS = ("output", "exact_dedup_state")
# Schemes the listing and input readers open (pipeline.io.remote through smart_open), besides local paths.
BASE_URL_SCHEMES = ("http", "https", "s3", "gs")
# The connectivity probe of an HTTP(S) base URL: at most PROBE_ATTEMPTS requests, each given
# min(PROBE_TIMEOUT, retry.timeout) seconds to connect and to answer, PROBE_PAUSE seconds apart.
PROBE_TIMEOUT = 5.0
PROBE_ATTEMPTS = 2
PROBE_PAUSE = 0.25

Warn = Callable[[str], None]


def _print_warning(message: str) -> None:
    print(f"rpv2 run: WARNING: {message}", file=sys.stderr)


def check_run(config: RunConfig, beam_args: Sequence[str] = (), *, warn: Warn | None = None) -> RunConfig:
    """Check ``config`` (with the command line's Beam options ``beam_args``) for ``rpv2 run``; return it
    with ``file://`` paths made local. Raises :class:`PreflightError` listing every problem found (one
    line, ``; `` between problems); warnings go to ``warn`` (default: one line on stderr each)."""
    warn = warn or _print_warning
    config = local_paths(config)
    errors: list[str] = []
    for name in WRITTEN_DIRS:
        value = getattr(config, name)
        if value is not None:
            errors += _collect(check_writable_dir, name, value)
    for name in LOCAL_FILES:
        if getattr(config, name) is not None:
            errors += _collect(check_model_input, name, getattr(config, name), "file")
    for name in LOCAL_DIRS:
        if getattr(config, name) is not None:
            errors += _collect(check_model_input, name, getattr(config, name), "dir")
    for name in SCRATCH_DIRS:
        if getattr(config, name) is not None:
            errors += _collect(check_local, name, getattr(config, name), "dir")
    if config.work_dir is not None and not errors:
        errors += _collect(check_writable_dir, "work_dir", config.work_dir)
    if config.cutoffs is not None and not errors:
        errors += _collect(check_cutoffs, config.cutoffs)
    errors += _collect(check_shards, config.shards, config.num_shards)
    errors += _collect(check_beam_args, config.beam_args(beam_args))
    errors += _collect(check_base_url, config.base_url)
    if errors:
        raise PreflightError("; ".join(errors))
    if urlparse(config.base_url).scheme in ("http", "https"):  # last: the only check that may take seconds
        from pipeline.sources.listing import listing_url

        probe_http(listing_url(config.base_url, config.snapshot, config.input_format) if config.snapshot
                   else config.base_url, timeout=min(PROBE_TIMEOUT, config.retry.timeout), name="base_url")
    for message in model_warnings(config):
        warn(message)
    return config


def _collect(check: Callable[..., Any], *args: Any) -> list[str]:
    try:
        check(*args)
    except PreflightError as exc:
        return [str(exc)]
    return []


# --------------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------------


def local_path(name: str, value: str) -> str | None:
    """The local path ``value`` names (``file:///x`` -> ``/x``, ``~`` expanded), or None for a URI.
    A ``file://`` URL with a host (``file://data/x``: usually meant as the relative ``data/x``) is an
    error rather than a guess."""
    parsed = urlparse(value)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise PreflightError(f"{name}: {value}: a file:// URL has no host part; write file:///absolute/path "
                                 "or a plain path")
        return parsed.path or "/"
    if len(parsed.scheme) > 1:  # a one-letter scheme is a Windows drive
        return None
    return os.path.expanduser(value)


def local_paths(config: RunConfig) -> RunConfig:
    """``config`` with its local path settings as plain paths (Beam's filesystems and fastText do not
    take ``file://``)."""
    changes = {}
    for name in (*WRITTEN_DIRS, *LOCAL_FILES, *LOCAL_DIRS, *SCRATCH_DIRS):
        value = getattr(config, name)
        if value is not None:
            path = local_path(name, value)
            if path is not None and path != value:
                changes[name] = path
    return dataclasses.replace(config, **changes) if changes else config


def check_model_input(name: str, value: str, kind: str) -> None:
    """A model input: a local ``kind`` that exists, or a URI of a scheme workers can fetch (its files and
    their sha256s are read by the launcher when the run is built)."""
    if local_path(name, value) is None:
        scheme = urlparse(value).scheme
        if scheme not in MODEL_URI_SCHEMES:
            raise PreflightError(f"{name}: {value}: {scheme}:// cannot be fetched (use a local path or "
                                 f"{', '.join(s + '://' for s in MODEL_URI_SCHEMES)})")
        return
    check_local(name, value, kind)


def check_local(name: str, value: str, kind: str) -> None:
    """``value`` is a local ``kind`` ("file" or "dir") that exists."""
    path = local_path(name, value)
    if path is None:
        raise PreflightError(f"{name}: {value}: must be a local path or file:// URL (it is read with local "
                             "file APIs)")
    if not os.path.exists(path):
        raise PreflightError(f"{name}: {value}: no such {'directory' if kind == 'dir' else 'file'}")
    if kind == "dir" and not os.path.isdir(path):
        raise PreflightError(f"{name}: {value}: not a directory")
    if kind == "file" and not os.path.isfile(path):
        raise PreflightError(f"{name}: {value}: not a file")


def check_writable_dir(name: str, value: str) -> None:
    """``value`` is a directory that exists or can be created, and can be written; a URI must be one
    Beam's filesystems can write here. Local writability is tried (a directory made and removed in the
    nearest existing parent), not inferred from permission bits, which say nothing for root or for a
    read-only mount."""
    path = local_path(name, value)
    if path is None:
        from apache_beam.io.filesystems import FileSystems

        try:
            FileSystems.get_filesystem(value)
        except (ValueError, ImportError) as exc:
            raise PreflightError(
                f"{name}: {value}: Beam cannot write {urlparse(value).scheme}:// here (an unknown scheme, or "
                f"its extra is not installed, e.g. apache-beam[gcp] for gs://): {str(exc).splitlines()[0]}"
            ) from None
        return
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise PreflightError(f"{name}: {value}: exists and is not a directory")
    parent = target
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise PreflightError(f"{name}: {value}: cannot be created, {parent} is a file")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".rpv2-preflight-", dir=parent))
    except OSError as exc:
        where = "" if parent == target else f" (its nearest existing parent {parent})"
        raise PreflightError(f"{name}: {value}: not writable{where}: {exc.strerror or exc}") from None


def check_cutoffs(value: str) -> None:
    """The cutoffs file parses (the run reads it on the launcher; a broken one would stop it there)."""
    import yaml

    from pipeline.ccnet.buckets import load_cutoffs
    from pipeline.config import yaml_problem

    try:
        load_cutoffs(value)
    except Exception as exc:  # noqa: BLE001 - yaml, csv and value errors alike: the file is unusable
        problem = yaml_problem(exc) if isinstance(exc, yaml.YAMLError) else " ".join(str(exc).split())
        raise PreflightError(f"cutoffs: {value}: cannot be read: {problem or type(exc).__name__}") from None


def check_shards(shards: str | None, num_shards: int) -> None:
    """The shard selection parses and lies within ``[0, num_shards)``."""
    from pipeline.sources.listing import parse_shard_spec

    try:
        parse_shard_spec(shards, num_shards)
    except ValueError as exc:
        raise PreflightError(f"shards: {exc}") from None


def model_warnings(config: RunConfig) -> list[str]:
    """Why kept languages will get bucket ``all`` instead of head/middle/tail (no perplexity model)."""
    if "perplexity" not in config.pipeline:
        return []
    if config.models_dir is None:
        return ["no models_dir (--models-dir): no perplexity model is loaded, so every document gets bucket "
                "'all' (`rpv2 models download` fetches CCNet's into ~/.cache/rpv2/lm)"]
    if local_path("models_dir", config.models_dir) is None:
        return []  # a URI: its SHA256SUMS is read when the run is built, which warns about missing languages
    from pipeline.ccnet.perplexity import LanguageModels, model_files

    if config.languages is None:
        found = LanguageModels(config.models_dir).languages
        return [f"models_dir {config.models_dir}: models for {', '.join(found) or 'no language'}; documents "
                "of every other language get bucket 'all'"]
    missing = [lang for lang in config.languages if model_files(config.models_dir, lang) is None]
    if not missing:
        return []
    return [f"models_dir {config.models_dir}: no {{lang}}.sp.model + {{lang}}.arpa.bin for {', '.join(missing)}: "
            "their documents get bucket 'all'"]


# --------------------------------------------------------------------------------------------------
# The base URL
# --------------------------------------------------------------------------------------------------


def check_base_url(value: str) -> None:
    """A local mirror exists; a URI has a scheme the readers open."""
    path = local_path("base_url", value)
    if path is not None:
        if not os.path.isdir(path):
            raise PreflightError(f"base_url: {value}: no such directory (a local mirror holds "
                                 "crawl-data/CC-MAIN-<id>/wet.paths.gz)")
        return
    parsed = urlparse(value)
    if parsed.scheme not in BASE_URL_SCHEMES:
        raise PreflightError(f"base_url: {value}: scheme {parsed.scheme}:// is not read (use "
                             f"{', '.join(s + '://' for s in BASE_URL_SCHEMES)}, a local path or file://)")
    if not parsed.netloc:
        raise PreflightError(f"base_url: {value}: no host or bucket after {parsed.scheme}://")


def probe_http(url: str, *, timeout: float = PROBE_TIMEOUT, attempts: int = PROBE_ATTEMPTS,
               name: str = "base_url") -> None:
    """Raise :class:`PreflightError` unless the host of ``url`` answers an HTTP request (any status: a
    404 or a 503 is the listing reader's business, with its retries) within ``timeout`` seconds, in at
    most ``attempts`` tries. Asks for one byte (``Range: bytes=0-0``), so the probe costs nothing."""
    import requests

    started = time.monotonic()
    failure: BaseException | None = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(PROBE_PAUSE)
        try:
            response = requests.get(url, headers={"Range": "bytes=0-0", "Accept-Encoding": "identity"},
                                    stream=True, timeout=(timeout, timeout))
            response.close()
            return
        except requests.RequestException as exc:
            failure = exc
    host = urlparse(url).netloc
    raise PreflightError(f"{name}: {host} is unreachable: {_network_reason(failure, timeout)} "
                         f"({attempts} attempts in {time.monotonic() - started:.1f}s)")


def _network_reason(exc: BaseException | None, timeout: float) -> str:
    """A few words for why a request failed (requests' own messages run to several nested reprs)."""
    import requests

    if isinstance(exc, requests.ConnectTimeout):
        return f"no connection within {timeout:g}s"
    if isinstance(exc, requests.ReadTimeout):
        return f"connected, but no answer within {timeout:g}s"
    seen: set[int] = set()
    cause = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (nothing listens on that port)"
        if isinstance(cause, socket.gaierror):
            return f"host name not resolved ({cause.strerror})"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error ({cause.reason or cause})"
        if isinstance(cause, TimeoutError | socket.timeout):
            return f"no answer within {timeout:g}s"
        cause = cause.__cause__ or cause.__context__
    return type(exc).__name__ if exc is not None else "no answer"


# --------------------------------------------------------------------------------------------------
# Beam pipeline options
# --------------------------------------------------------------------------------------------------


@functools.cache
def _beam_parser() -> argparse.ArgumentParser:
    """An argument parser of every option of Beam's PipelineOptions subclasses, built as Beam builds its
    own (PipelineOptions.get_all_options), but whose errors raise :class:`PreflightError`: Beam's would
    print a usage of 170 options, and Beam drops unknown options with a log line ("Discarding
    unparseable args") that nobody reads."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    class StrictBeamParser(_BeamArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            raise PreflightError(f"Beam pipeline option: {message}")

    parser = StrictBeamParser(prog="beam", allow_abbrev=False, add_help=False)
    classes: dict[str, type] = {}
    for cls in PipelineOptions.__subclasses__():
        classes.setdefault(str(cls), cls)
    for cls in classes.values():
        cls._add_argparse_args(parser)  # noqa: SLF001 - Beam's own way of collecting its options
    return parser


def beam_option_names() -> frozenset[str]:
    """Every ``--flag`` Beam's pipeline options accept."""
    return frozenset(flag for flag in _beam_parser()._option_string_actions if flag.startswith("--"))  # noqa: SLF001


def beam_option_arity(flag: str) -> int | None:
    """How many following arguments Beam's option ``flag`` takes when given without ``=`` (0 for
    switches such as ``--save_main_session``), or None if Beam has no such option."""
    action = _beam_parser()._option_string_actions.get(flag)  # noqa: SLF001
    if action is None or not flag.startswith("--"):
        return None
    if action.nargs == 0:
        return 0
    return action.nargs if isinstance(action.nargs, int) else 1


def suggest(flag: str, candidates: Sequence[str]) -> str:
    """``" (did you mean --x?)"`` for the closest of ``candidates``, or ``""``."""
    close = difflib.get_close_matches(flag, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def check_beam_args(args: Sequence[str]) -> None:
    """Every argument is a Beam pipeline option with a value Beam accepts, and ``--runner`` names a runner
    that exists here. Raises :class:`PreflightError` naming the first bad one."""
    if not args:
        return
    namespace, unknown = _beam_parser().parse_known_args(list(args))
    if unknown:
        bad = unknown[0]
        hint = suggest(bad.split("=", 1)[0], sorted(beam_option_names())) if bad.startswith("--") else ""
        raise PreflightError(f"unknown Beam pipeline option {bad}{hint}")
    if getattr(namespace, "runner", None):
        check_runner(namespace.runner)


def check_runner(name: str) -> None:
    """``name`` is a runner Beam resolves (``DirectRunner``, ``flink``, ``FlinkRunner``, or the dotted
    path of a PipelineRunner subclass), and its module loads here, as Beam's create_runner resolves it."""
    from apache_beam.options.pipeline_options import StandardOptions
    from apache_beam.runners import runner as beam_runner

    table: dict[str, str] = getattr(beam_runner, "_RUNNER_MAP", {})
    key = name.lower()
    qualified = table.get(key, table.get(key + "runner", name))
    if "." not in qualified:
        known = ", ".join(n for n in StandardOptions.KNOWN_RUNNER_NAMES if not n.startswith("Test"))
        raise PreflightError(f"runner {name!r}: not a Beam runner (known: {known}; or the dotted path of a "
                             "PipelineRunner subclass)")
    module_name, class_name = qualified.rsplit(".", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PreflightError(f"runner {name!r}: cannot be loaded here: {exc}") from None
    runner = getattr(module, class_name, None)
    if not (isinstance(runner, type) and issubclass(runner, beam_runner.PipelineRunner)):
        raise PreflightError(f"runner {name!r}: {module_name} has no PipelineRunner named {class_name}")
