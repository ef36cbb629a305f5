"""pipeline.progress: the progress line, its ETA and its cadence, with a fake clock (no sleeps)."""

from __future__ import annotations

import io

from pipeline.progress import (
    LogCadence,
    Progress,
    Watcher,
    choose_mode,
    eta_seconds,
    format_duration,
    format_progress,
    interval_from_env,
)


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_durations_are_short():
    assert [format_duration(s) for s in (0, 9.4, 59, 60, 125, 3599, 3600, 3720)] == \
        ["0s", "9s", "59s", "1m00s", "2m05s", "59m59s", "1h00m", "1h02m"]


def test_eta_is_the_remaining_units_at_the_average_rate():
    assert eta_seconds(10, 40, 5.0) == 15.0
    assert eta_seconds(0, 40, 5.0) is None  # no rate yet
    assert eta_seconds(3, None, 5.0) is None  # no total
    assert eta_seconds(50, 40, 5.0) == 0.0


def test_progress_line():
    assert format_progress(12, 40, "shards", 4.0) == "progress: 12/40 shards, 3 shards/s, eta 9s"
    assert format_progress(0, 40, "shards", 2.0) == "progress: 0/40 shards, 0 shards/s"
    assert format_progress(40, 40, "files", 125.0) == "progress: 40/40 files, 0.32 files/s, done in 2m05s"
    assert format_progress(7, None, "files", 2.0) == "progress: 7 files, 3.5 files/s"
    assert format_progress(3_400_000, 10_200_000, "B", 2.0) == "progress: 3.4 MB/10.2 MB, 1.7 MB/s, eta 4s"
    assert format_progress(512, None, "B", 1.0) == "progress: 512 B, 512 B/s"


def test_log_cadence_a_line_every_interval_from_the_start():
    clock = FakeClock()
    cadence = LogCadence(10.0, clock)
    due = []
    for t in (0, 1, 9.9, 10, 12, 19.9, 20.5, 30.4, 30.5):
        clock.now = 100.0 + t
        due.append(cadence.due())
    assert due == [False, False, False, True, False, False, True, False, True]


def test_plain_lines_every_interval_and_a_last_one():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(4, "shards", desc="run", stream=stream, interval=10.0, clock=clock)
    for t, done in ((1, 1), (5, 1), (11, 2), (12, 3), (25, 3)):
        clock.now = 100.0 + t
        progress.update_to(done)
    clock.now = 130.0
    progress.advance()
    progress.close()
    progress.close()  # idempotent
    assert stream.getvalue().splitlines() == [
        "rpv2 run: progress: 2/4 shards, 0.182 shards/s, eta 11s",
        "rpv2 run: progress: 3/4 shards, 0.12 shards/s, eta 8s",
        "rpv2 run: progress: 4/4 shards, 0.133 shards/s, done in 30s",
    ]


def test_mode_follows_the_stream_unless_forced():
    assert choose_mode(io.StringIO(), {}) == "log"
    assert choose_mode(TtyStream(), {}) == "bar"
    assert choose_mode(TtyStream(), {"RPV2_PROGRESS": "off"}) == "off"
    assert choose_mode(io.StringIO(), {"RPV2_PROGRESS": "BAR"}) == "bar"
    assert choose_mode(io.StringIO(), {"RPV2_PROGRESS": "nonsense"}) == "log"
    assert interval_from_env({}) == 10.0
    assert interval_from_env({"RPV2_PROGRESS_INTERVAL": "0.5"}) == 0.5
    assert interval_from_env({"RPV2_PROGRESS_INTERVAL": "soon"}) == 10.0


def test_the_last_line_is_not_written_twice():
    clock, stream = FakeClock(), io.StringIO()
    with Progress(2, "files", desc="filter", stream=stream, interval=1.0, clock=clock) as progress:
        clock.now += 2.0
        progress.update_to(2)  # due: written now, and the close has nothing new to say
    assert stream.getvalue().splitlines() == ["rpv2 filter: progress: 2/2 files, 1 files/s, done in 2s"]


def test_a_failed_command_gets_no_last_line():
    clock, stream = FakeClock(), io.StringIO()
    try:
        with Progress(4, "shards", desc="run", stream=stream, interval=10.0, clock=clock) as progress:
            progress.advance()
            raise RuntimeError("setup refused")
    except RuntimeError:
        pass
    assert stream.getvalue() == ""


def test_off_writes_nothing_and_bar_draws_tqdm():
    stream = io.StringIO()
    with Progress(3, "files", desc="signals", stream=stream, mode="off") as progress:
        progress.advance(3)
    assert stream.getvalue() == ""
    tty = TtyStream()
    with Progress(3, "files", desc="signals", stream=tty) as progress:
        progress.advance(2)
        progress.update_to(3)
    assert "rpv2 signals" in tty.getvalue() and "3/3" in tty.getvalue()


def test_watcher_stop_takes_a_last_count_and_survives_a_failing_count():
    stream = io.StringIO()
    counts = iter([RuntimeError("listing failed"), 5])

    def count() -> int:
        value = next(counts)
        if isinstance(value, Exception):
            raise value
        return value

    progress = Progress(5, "files", desc="export", stream=stream, interval=3600.0)
    watcher = Watcher(progress, count, poll=3600.0)  # never polls on its own within the test
    watcher._poll_once()  # the failing count: logged, no exception
    watcher.start()
    watcher.stop()
    assert progress.closed and progress.done == 5
    assert stream.getvalue().splitlines()[-1].startswith("rpv2 export: progress: 5/5 files")
