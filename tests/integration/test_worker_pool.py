"""SDK workers forked from rpv2's fork server (pipeline/transforms/worker_pool.py): the protocol with the
client script, its fallback to Beam's own worker, and `rpv2 run` with two worker processes writing the
same bytes whether its workers are forked, started by Beam, or the run is in one process."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, shared_path

from pipeline.transforms import worker_pool

TWO_PROCESSES = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


def _client(server_command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The worker command as Beam runs it: through a shell, in the worker's environment."""
    return subprocess.run(server_command, shell=True, env=env, capture_output=True, text=True, timeout=120)


def test_a_forked_worker_runs_beams_worker_main_and_its_exit_status_reaches_the_client():
    server = worker_pool.ForkServer.start()
    try:
        # no CONTROL_API_SERVICE_DESCRIPTOR: Beam's worker main fails at once, in the forked child
        env = {key: value for key, value in os.environ.items() if not key.endswith("_API_SERVICE_DESCRIPTOR")}
        result = _client(server.worker_command(), env)
        assert result.returncode == 1
        assert "CONTROL_API_SERVICE_DESCRIPTOR" in result.stderr
        assert "worker_pool.py" in result.stderr  # raised inside the fork, not in a fresh interpreter
        assert server.alive()  # a failed worker does not take the server down
        again = _client(server.worker_command(), env)
        assert again.returncode == 1 and "worker_pool.py" in again.stderr
    finally:
        server.close()
    assert not server.alive()
    assert not Path(server.directory).exists()


def test_without_a_server_the_client_becomes_beams_own_worker():
    server = worker_pool.ForkServer.start()
    command = server.worker_command()
    server.close()  # the socket is gone: the client must fall back, not fail
    env = {key: value for key, value in os.environ.items() if not key.endswith("_API_SERVICE_DESCRIPTOR")}
    result = _client(command, env)
    assert result.returncode != 0
    assert "CONTROL_API_SERVICE_DESCRIPTOR" in result.stderr
    assert "worker_pool.py" not in result.stderr and "runpy" in result.stderr  # python -m sdk_worker_main


def _digests(output: Path) -> dict[str, str]:
    return {
        path.relative_to(output).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((output / "documents").rglob("*.parquet"))
    }


def _run(output: Path, beam_args: list[str], **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "-v", "run", "--output", str(output),
         "--artifacts", str(shared_path("groundtruth", "rpv2", "artifacts")), *beam_args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    base = tmp_path_factory.mktemp("worker_pool")
    return {
        name: (base / name, _run(base / name, args, **env))
        for name, args, env in [
            ("in_process", [], {}),
            ("forked", TWO_PROCESSES, {}),
            ("beam_workers", TWO_PROCESSES, {"RPV2_FORK_WORKERS": "0"}),
        ]
    }


def test_two_forked_workers_write_the_same_bytes_as_beams_workers_and_one_process(runs):
    digests = {name: _digests(output) for name, (output, _) in runs.items()}
    assert len(digests["in_process"]) >= 5
    assert digests["forked"] == digests["in_process"]
    assert digests["beam_workers"] == digests["in_process"]


def test_forked_workers_take_the_models_the_fork_server_loaded(runs):
    _, forked = runs["forked"]
    _, beam_workers = runs["beam_workers"]
    _, in_process = runs["in_process"]
    # the workers processed shards with the ShardProcessor the server built while the launcher built
    # the pipeline; Beam's own workers and the in-process run load their own
    assert forked.stderr.count("models loaded by the fork server") >= 1
    assert "loading models" not in forked.stderr
    for run in (beam_workers, in_process):
        assert "models loaded by the fork server" not in run.stderr
        assert run.stderr.count("loading models") >= 1


def test_no_fork_server_outlives_its_run(runs):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        assert b"pipeline.transforms.worker_pool" not in cmdline, cmdline


def test_two_workers_print_what_one_worker_prints_and_v_shows_beams_own_lines(runs, tmp_path):
    """pipeline/console_logging.py in the forked workers and the fork server: without -v a two-worker run's
    console is rpv2's lines (each once), not Beam's start-up chatter or the launcher's relayed copies."""
    from pipeline.console_logging import BEAM_NOISE

    quiet = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", "--output", str(tmp_path / "out"), *TWO_PROCESSES],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    shard_lines = [line for line in quiet.stderr.splitlines() if " shard 000" in line]
    assert len(shard_lines) == 2 and len({line.split(" shard ")[1][:4] for line in shard_lines}) == 2, quiet.stderr
    assert "models loaded by the fork server" in quiet.stderr  # the workers' own INFO lines stay
    for chatter in (*BEAM_NOISE, "Worker: severity", "INFO:apache_beam", "sdk_worker"):
        assert chatter not in quiet.stderr, chatter
    _, verbose = runs["forked"]  # the same run with -v: Beam's lines, the relayed ones included
    assert "Worker: severity" in verbose.stderr and "sdk_worker" in verbose.stderr
