"""Progress of `rpv2 run` as a user sees it: plain periodic lines when stderr is not a terminal (a log,
CI), tqdm's bar when it is (a pseudo-terminal here), and the same output bytes either way."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
from pathlib import Path

from pipeline_corpus import build_corpus_mirror

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^rpv2 run: progress: (\d+)/(\d+) shards, [0-9.e+-]+ shards/s(, eta \S+|, done in \S+)?$")


def _run_argv(mirror: Path, out: Path, shards: int) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", "run", "--snapshot", "CC-MAIN-2023-06", "--base-url", str(mirror),
            "--num-shards", str(shards), "--output", str(out), "--languages", "all", "--no-minhash",
            "--direct_num_workers=1"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RPV2_PROGRESS", "RPV2_PROGRESS_INTERVAL")}
    return {**env, **extra}


def _parquet_bytes(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted((out / "documents").rglob("*.parquet"))}


def test_run_logs_periodic_progress_lines_when_not_on_a_terminal(tmp_path):
    mirror = tmp_path / "mirror"
    build_corpus_mirror(mirror, files=4, docs_per_file=20, seed=11)
    out = tmp_path / "out"
    # a line every 0.05 s: the run takes seconds, so several periodic lines come before the last one
    result = subprocess.run(_run_argv(mirror, out, 4), cwd=REPO, env=_env(RPV2_PROGRESS_INTERVAL="0.05"),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [m for m in (LINE.match(line) for line in result.stderr.splitlines()) if m]
    assert len(lines) >= 2, result.stderr[-3000:]  # periodic lines, then the last one
    done = [int(m.group(1)) for m in lines]
    assert {int(m.group(2)) for m in lines} == {4}  # the total is the shards planned
    assert done == sorted(done)
    assert done[-1] == 4 and lines[-1].group(3).startswith(", done in")
    assert (out / "_shards" / "2023-06").is_dir() and len(list((out / "_shards" / "2023-06").glob("*.json"))) == 4
    assert "\r" not in result.stderr  # no bar drawing in a log


def _read_all(fd: int, proc: subprocess.Popen) -> bytes:
    """Everything written to the pty until the process exits (drained as it comes: a full pty blocks it)."""
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: every holder of the terminal's other side closed it
                data = b""
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    return b"".join(chunks)


def test_run_draws_a_tqdm_bar_on_a_terminal_and_writes_the_same_bytes(tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    mirror = tmp_path / "mirror"
    build_corpus_mirror(mirror, files=3, docs_per_file=15, seed=12)
    master, slave = pty.openpty()
    # a terminal of 24 x 120 (a new pty is 0 x 0, where tqdm's bar has no room)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    try:
        proc = subprocess.Popen(_run_argv(mirror, tmp_path / "tty", 3), cwd=REPO, env=_env(),
                                stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
        os.close(slave)
        terminal = _read_all(master, proc).decode("utf-8", "replace")
        proc.wait(timeout=600)
    finally:
        os.close(master)
    assert proc.returncode == 0, terminal[-3000:]
    assert "rpv2 run:" in terminal and "3/3" in terminal and " shards/s" in terminal, terminal[-3000:]
    assert "\r" in terminal  # the bar redraws in place
    assert not any(LINE.match(line.strip()) for line in terminal.splitlines())  # no plain lines on a terminal
    # progress only reads: the same run without a terminal writes the same Parquet bytes
    plain = subprocess.run(_run_argv(mirror, tmp_path / "log", 3), cwd=REPO, env=_env(RPV2_PROGRESS="off"),
                           capture_output=True, text=True, timeout=600)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert _parquet_bytes(tmp_path / "tty") == _parquet_bytes(tmp_path / "log")
    assert "progress:" not in plain.stderr


def test_beam_progress_counters_count_the_units(tmp_path, monkeypatch, capsys):
    """The `progress` namespace counters equal the units: shards of `rpv2 run`, files of `rpv2 export`."""
    from pipeline.cli import main as rpv2
    from pipeline.transforms import runner
    from pipeline.transforms.summary import namespace_counters

    results = []
    real_run_and_wait = runner.run_and_wait

    def keep_result(pipeline):
        results.append(real_run_and_wait(pipeline))
        return results[-1]

    monkeypatch.setattr(runner, "run_and_wait", keep_result)
    monkeypatch.setenv("RPV2_PROGRESS", "off")
    mirror = tmp_path / "mirror"
    build_corpus_mirror(mirror, files=3, docs_per_file=12, seed=13)
    out = tmp_path / "out"
    assert rpv2(["run", "--snapshot", "CC-MAIN-2023-06", "--base-url", str(mirror), "--num-shards", "3",
                 "--output", str(out), "--languages", "all", "--no-minhash", "--direct_num_workers=1"]) == 0
    assert namespace_counters(results[-1], "progress") == {"shards_done": 3}
    documents_files = sorted((out / "documents").rglob("*.parquet"))
    assert rpv2(["export", "--format", "rpv2", str(out), "--output", str(tmp_path / "export")]) == 0
    assert namespace_counters(results[-1], "progress") == {"files_done": len(documents_files)}
    capsys.readouterr()
