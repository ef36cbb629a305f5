"""`--runner-profile NAME` on every rpv2 command that runs a Beam pipeline, through one helper
(pipeline/transforms/runner.py: add_runner_profile_argument, profile_beam_args).

A profile means the same Beam options for `rpv2 dedup exact|fuzzy`, `rpv2 filter` and `rpv2 export` as
for `rpv2 run` (pipeline.config reads it for `rpv2 run`), the command line's Beam options win, and a bad
profile is one line with exit code 2 before any work. With the DirectRunner profile (`direct`: two worker
processes) each command writes the bytes of a run in one process. Flink (`flink-local`) is in
tests/integration/test_flink.py (`rpv2 export --format hf --runner-profile flink-local`).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from pipeline.config import RUNNER_PROFILES_DIR, beam_options_to_args, load_config
from pipeline.transforms.runner import profile_beam_args

PROFILES = sorted(p.stem for p in RUNNER_PROFILES_DIR.glob("*.yaml"))
# every command whose module runs a Beam pipeline, and the arguments that make it run (IN appended)
COMMANDS = {
    "dedup exact": lambda out, tmp: ["dedup", "exact", str(out), "--output", str(tmp / "o"), "--state",
                                     str(tmp / "s")],
    "dedup fuzzy": lambda out, tmp: ["dedup", "fuzzy", str(out), "--output", str(tmp / "o"), "--engine", "beam"],
    "filter": lambda out, tmp: ["filter", str(out), "--recipe", str(REPO_ROOT / "configs/recipes/gopher.yaml"),
                                "--output", str(tmp / "o")],
    "export": lambda out, tmp: ["export", "--format", "rpv2", str(out), "--output", str(tmp / "o")],
}


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample_run")
    subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", "--output", str(out / "out")],
        check=True, cwd=REPO_ROOT, capture_output=True,
    )
    return out / "out"


@pytest.mark.parametrize("profile", PROFILES)
def test_a_profile_gives_every_command_the_options_rpv2_run_reads_from_it(profile):
    assert profile_beam_args(profile) == beam_options_to_args(load_config(runner_profile=profile).beam)


def test_the_command_lines_beam_options_win_over_the_profiles():
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(profile_beam_args("direct", ["--direct_num_workers=1"])).get_all_options()
    assert options["direct_num_workers"] == 1
    assert options["direct_running_mode"] == "multi_processing"  # from the profile
    assert profile_beam_args(None, ["--direct_num_workers=3"]) == ["--direct_num_workers=3"]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_beam_command_lists_the_runner_profile_option(command, capsys):
    from pipeline.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([*command.split(), "--help"])
    assert exit_info.value.code == 0
    assert "--runner-profile NAME" in capsys.readouterr().out


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600)


def _error_line(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and "error" not in done.stdout, done.stdout + done.stderr
    return lines[0]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unknown_profile_is_one_line_and_exit_2_before_any_work(command, tmp_path):
    missing = tmp_path / "no-run"  # nothing is read: the profile is checked first
    done = _cli(*COMMANDS[command](missing, tmp_path), "--runner-profile", "nope")
    assert done.returncode == 2
    line = _error_line(done)
    assert line.startswith(f"rpv2 {command}: error: runner profile 'nope' not found (known: ")
    assert "direct" in line and "flink-local" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_profile_with_an_option_beam_does_not_know_is_refused(command, tmp_path):
    profile = tmp_path / "typo.yaml"
    profile.write_text("beam:\n  runner: DirectRunner\n  direct_num_wrkers: 2\n")
    done = _cli(*COMMANDS[command](tmp_path / "no-run", tmp_path), "--runner-profile", str(profile))
    assert done.returncode == 2
    assert "unknown Beam pipeline option --direct_num_wrkers=2" in _error_line(done)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["dedup exact", "dedup fuzzy"])
def test_a_profile_is_refused_with_the_local_engine(command, tmp_path):
    done = _cli(*COMMANDS[command](tmp_path / "no-run", tmp_path), "--engine", "local", "--runner-profile", "direct")
    assert done.returncode == 2
    assert "apply to --engine beam, not local" in _error_line(done)


def _digests(root: Path) -> dict[str, str]:
    """sha256 of every file under root, summaries and reports (``_*``: they hold timings) left out."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith("_")}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_direct_profile_writes_the_bytes_of_one_process(command, sample_run, tmp_path):
    """`--runner-profile direct` (DirectRunner, two worker processes) against the default (one process)."""
    for name, extra in (("one", []), ("profile", ["--runner-profile", "direct"])):
        done = _cli("-v", *COMMANDS[command](sample_run, tmp_path / name), *extra)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        # the two worker processes log the options they were started with (shown with -v)
        assert ("'direct_running_mode': 'multi_processing'" in done.stderr) is bool(extra)
    assert _digests(tmp_path / "profile" / "o") == _digests(tmp_path / "one" / "o") != {}
