"""Progress of long commands: units done of a total known up front (shards planned, input files, the
input bytes of `rpv2 signals`).

On a terminal, a tqdm bar (units done of total, rate, ETA); otherwise (a log file, CI, a pipe) one plain
line every ``interval`` seconds, ``rpv2 run: progress: 12/40 shards, 3.1 shards/s, eta 9s``, and a last
one when the command is done, so that a log shows a run is alive without a line per unit.

Beam's DirectRunner blocks in ``p.run()`` and other runners run elsewhere, so the commands that run a
pipeline count finished units from the outside: :func:`watch` polls a counting function (the completion
records or published files of the finished units) in a thread of the submitting process; it only reads,
so it never changes an output byte, and it stops when the command is done. Inside the pipelines the same
count is a Beam counter in the ``progress`` namespace (:data:`BEAM_NAMESPACE`), which runners' UIs show.

The mode follows the stream (a tty: bar, else: lines); ``RPV2_PROGRESS=bar|log|off`` forces one, and
``RPV2_PROGRESS_INTERVAL`` sets the seconds between lines (default 10). The formatting and the cadence
are pure functions of the numbers and a clock, tested with a fake clock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

log = logging.getLogger(__name__)

BEAM_NAMESPACE = "progress"  # Beam counters of units done, e.g. progress/shards_done
DEFAULT_INTERVAL = 10.0  # seconds between plain progress lines
MODES = ("bar", "log", "off")


def format_duration(seconds: float) -> str:
    """``9s``, ``2m05s``, ``1h02m``: short enough for a progress line."""
    seconds = max(int(round(seconds)), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def eta_seconds(done: int, total: int | None, elapsed: float) -> float | None:
    """Seconds left at the average rate so far; None while nothing is done or the total is unknown."""
    if total is None or done <= 0 or elapsed <= 0:
        return None
    return max(total - done, 0) * elapsed / done


BYTES = "B"  # the unit of a progress in input bytes: amounts shown as kB, MB, GB


def format_amount(n: float, unit: str) -> str:
    """``12 shards``; in bytes, ``3.4 MB`` (decimal prefixes, as tqdm's ``unit_scale``)."""
    if unit != BYTES:
        return f"{n:.3g} {unit}" if isinstance(n, float) else f"{n} {unit}"
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {prefix}B"
    return f"{n:.0f} B"


def format_progress(done: int, total: int | None, unit: str, elapsed: float) -> str:
    """``progress: 12/40 shards, 3.1 shards/s, eta 9s`` (no eta before the first unit, none after the
    last; ``12 shards`` when the total is unknown; ``1.2 MB/3.4 MB`` in bytes)."""
    if unit == BYTES:
        count = format_amount(done, unit) + (f"/{format_amount(total, unit)}" if total is not None else "")
    else:
        count = (f"{done}/{total}" if total is not None else f"{done}") + f" {unit}"
    rate = done / elapsed if elapsed > 0 else 0.0
    line = f"progress: {count}, {format_amount(rate, unit) if unit == BYTES else f'{rate:.3g} {unit}'}/s"
    eta = eta_seconds(done, total, elapsed)
    if eta is not None and total is not None and done < total:
        line += f", eta {format_duration(eta)}"
    elif total is not None and done >= total:
        line += f", done in {format_duration(elapsed)}"
    return line


class LogCadence:
    """When the next plain line is due: every ``interval`` seconds of ``clock`` from the start (not at
    once: a command that fails in its setup, or ends within the interval, prints no progress line)."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval = interval
        self.clock = clock
        self.next_at = clock() + interval

    def due(self) -> bool:
        now = self.clock()
        if now < self.next_at:
            return False
        self.next_at = now + self.interval
        return True


def choose_mode(stream: IO[str], environ: dict[str, str] | None = None) -> str:
    """``bar`` on a terminal, ``log`` otherwise; ``RPV2_PROGRESS`` overrides (an unknown value: log)."""
    forced = (environ if environ is not None else os.environ).get("RPV2_PROGRESS", "").strip().lower()
    if forced:
        return forced if forced in MODES else "log"
    isatty = getattr(stream, "isatty", None)
    return "bar" if isatty is not None and isatty() else "log"


def interval_from_env(environ: dict[str, str] | None = None) -> float:
    value = (environ if environ is not None else os.environ).get("RPV2_PROGRESS_INTERVAL", "")
    try:
        return max(float(value), 0.0) if value else DEFAULT_INTERVAL
    except ValueError:
        return DEFAULT_INTERVAL


class Progress:
    """Units done of ``total`` for one command: a tqdm bar, plain lines, or nothing (see the module).

    ``update_to`` takes the absolute count (a watcher's poll), ``advance`` adds to it; ``close`` ends the
    bar or writes the last line. Usable as a context manager."""

    def __init__(
        self, total: int | None, unit: str, *, desc: str, stream: IO[str] | None = None,
        mode: str | None = None, interval: float | None = None, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.unit = unit
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        self.mode = mode or choose_mode(self.stream)
        self.clock = clock
        self.started = clock()
        self.done = 0
        self.closed = False
        self.last_line_done: int | None = None  # the count the last plain line showed
        self.cadence = LogCadence(interval_from_env() if interval is None else interval, clock)
        self.bar: Any = None
        self._log_redirect: contextlib.ExitStack | None = None
        if self.mode == "bar":
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            # log records print above the bar instead of through it
            self._log_redirect = contextlib.ExitStack()
            self._log_redirect.enter_context(logging_redirect_tqdm())
            self.bar = tqdm(total=total, unit=unit if unit == BYTES else f" {unit}", unit_scale=unit == BYTES,
                            desc=f"rpv2 {desc}", file=self.stream, dynamic_ncols=True, mininterval=0.5,
                            smoothing=0.1)

    def line(self) -> str:
        return f"rpv2 {self.desc}: {format_progress(self.done, self.total, self.unit, self.clock() - self.started)}"

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not fail the command
            pass

    def _maybe_line(self) -> None:
        if self.cadence.due():
            self._write(self.line())
            self.last_line_done = self.done

    def update_to(self, done: int) -> None:
        if self.closed:
            return
        if self.bar is not None:
            if done != self.bar.n:
                self.bar.update(done - self.bar.n)
        self.done = done
        if self.mode == "log":
            self._maybe_line()

    def advance(self, n: int = 1) -> None:
        self.update_to(self.done + n)

    def close(self, *, failed: bool = False) -> None:
        """End the bar, or write the last line; when the command ``failed``, clear the bar and write
        nothing (its error is the line that matters)."""
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            if failed:
                self.bar.leave = False
            self.bar.close()
            if self._log_redirect is not None:
                self._log_redirect.close()
        elif self.mode == "log" and not failed:
            if self.last_line_done != self.done:  # not twice when the last update already wrote it
                self._write(self.line())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(failed=exc_type is not None)


class Watcher:
    """Polls ``count`` every ``poll`` seconds in a daemon thread and shows it on ``progress``; ``stop``
    takes a last count, joins the thread and closes the progress. ``count`` only reads (files, records);
    an error in it is logged at DEBUG and the poll goes on."""

    def __init__(self, progress: Progress, count: Callable[[], int], poll: float = 1.0) -> None:
        self.progress = progress
        self.count = count
        self.poll = poll
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rpv2-progress-{progress.desc}", daemon=True)

    def _poll_once(self) -> None:
        try:
            self.progress.update_to(self.count())
        except Exception as exc:  # noqa: BLE001 - progress is never worth failing a command
            log.debug("progress count failed: %s: %s", type(exc).__name__, exc)

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self._poll_once()

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self, *, failed: bool = False, complete: bool = False) -> None:
        """End the watch: a last count (or, ``complete``, the total: the command finished every unit,
        including those that publish nothing, e.g. a file whose documents were all filtered out)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if complete and not failed and self.progress.total is not None:
            self.progress.update_to(self.progress.total)
        elif not failed:
            self._poll_once()
        self.progress.close(failed=failed)


@contextlib.contextmanager
def watch(count: Callable[[], int], total: int | None, unit: str, *, desc: str, poll: float | None = None,
          stream: IO[str] | None = None, complete: bool = False) -> Iterator[Progress]:
    """Show ``count()`` of ``total`` while the body runs (see :class:`Watcher`), polled every ``poll``
    seconds (default 1 s; :func:`poll_interval` gives one for an output); stopped however the body ends,
    silently when it raised."""
    progress = Progress(total, unit, desc=desc, stream=stream)
    if progress.mode == "off":
        yield progress
        return
    poll = 1.0 if poll is None else poll
    if progress.mode == "log":  # a line can only be written at a poll: poll at least as often as lines are due
        poll = max(min(poll, progress.cadence.interval), 0.05)
    watcher = Watcher(progress, count, poll)
    watcher.start()
    try:
        yield progress
    except BaseException:
        watcher.stop(failed=True)
        raise
    watcher.stop(complete=complete)


def poll_interval(root: str) -> float:
    """Seconds between polls of an output: listing a bucket costs a request, a local glob nothing."""
    return 5.0 if "://" in root and not root.startswith("file://") else 1.0


def count_files(root: str, pattern: str, keep: Callable[[str], bool] | None = None,
                newer_than: float | None = None) -> Callable[[], int]:
    """A count of the files matching ``pattern`` (a glob relative to ``root``) for :func:`watch`: the
    published outputs of finished units, those modified at or after ``newer_than`` (epoch seconds) when
    given, so that what an earlier command left in the output does not count. Local roots are globbed
    directly; URIs through Beam's FileSystems (one match per poll)."""
    if "://" in root and not root.startswith("file://"):
        def count_remote() -> int:
            from apache_beam.io.filesystems import FileSystems

            found = [m for r in FileSystems.match([f"{root.rstrip('/')}/{pattern}"]) for m in r.metadata_list]
            return sum(1 for m in found if (keep is None or keep(m.path)) and (
                newer_than is None or not m.last_updated_in_seconds or m.last_updated_in_seconds >= newer_than))

        return count_remote
    import glob

    local = root[len("file://"):] if root.startswith("file://") else root

    def newer(path: str) -> bool:
        try:
            return newer_than is None or os.path.getmtime(path) >= newer_than
        except OSError:  # replaced or removed between the glob and the stat
            return False

    def count_local() -> int:
        paths = glob.glob(os.path.join(local, pattern), recursive=True)
        return sum(1 for path in paths if (keep is None or keep(path)) and newer(path))

    return count_local


def watch_outputs(root: str, pattern: str, total: int, unit: str, *, desc: str) -> contextlib.AbstractContextManager:
    """:func:`watch` for a Beam command whose units each publish a file under ``root`` matching
    ``pattern`` (filter, export, dedup): counts those published from now on, and ends at ``total`` when
    the command succeeds (a unit may publish nothing)."""
    started = time.time() - 1.0  # file systems with 1 s mtime resolution
    return watch(count_files(root, pattern, newer_than=started), total, unit, desc=desc,
                 poll=poll_interval(root), complete=True)


def watch_document_files(inputs: str | list[str], output: str, pattern: str, *, desc: str
                         ) -> contextlib.AbstractContextManager:
    """:func:`watch_outputs` for the commands that take a run's documents dataset (``inputs``: a run's
    output or its documents/ dir, or several) and publish one file per documents file under ``output``
    matching ``pattern``; the total is the documents files. FileNotFoundError (no dataset) as the
    commands themselves raise it, before any work."""
    from pipeline.dataset.layout import document_files
    from pipeline.io.uris import local_path

    given = [inputs] if isinstance(inputs, str) else list(inputs)
    files = document_files([local_path(str(uri)) for uri in given])
    return watch_outputs(local_path(str(output)), pattern, len(files), "files", desc=desc)
