"""The command line is strict and every configuration mistake is one line before any work starts.

- an option that is neither the command's nor one of Beam's pipeline options is an error naming it
  (`rpv2 run --output-dir x` once wrote to ./rpv2-output); Beam's own flags pass through, checked;
- `rpv2 --version` prints the version, `rpv2` alone prints the help and how to start;
- bad settings (paths, YAML, runner, retry numbers, base URL) exit 2 with one line on stderr, no
  traceback, nothing written, in seconds (`BAD_CONFIGURATIONS` counts them);
- a listing's hostile entries are refused, counted, named in the summary and never read.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from http_mirror import HTTPMirror
from pipeline_corpus import SNAPSHOT, build_corpus_mirror

from pipeline.cli import build_parser
from pipeline.cli import main as rpv2
from pipeline.sample.mirror import write_listing, write_wet_file

REPO = Path(__file__).resolve().parents[2]


def _cli(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "RPV2_CACHE": str(cwd / "cache")})


def _exit_code(args: list[str]) -> int:
    """rpv2's exit code for ``args``: argparse errors leave main() as SystemExit, command errors return."""
    try:
        return rpv2(args)
    except SystemExit as exc:
        return int(exc.code or 0)


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --------------------------------------------------------------------------------------------------
# --version, bare rpv2
# --------------------------------------------------------------------------------------------------


def test_version_prints_the_version_and_runs_nothing(tmp_path):
    result = _cli(["--version"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"rpv2 {version('rpv2')}"
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no sample built, no ./rpv2-output


def test_rpv2_alone_prints_the_help_and_how_to_start(tmp_path):
    result = _cli([], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "COMMAND" in result.stdout and "dedup" in result.stdout
    starts = [line.split()[:3] for line in result.stdout.splitlines() if line.strip().startswith("rpv2 run")]
    assert starts == [["rpv2", "run", "the"], ["rpv2", "run", "--snapshot"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------------
# unknown options, Beam's options
# --------------------------------------------------------------------------------------------------

UNKNOWN_OPTIONS = [
    (["run", "--output-dir", "x"], "--output-dir", "did you mean --output?"),
    (["run", "--out", "x"], "--out", "did you mean --output?"),  # prefixes are not options
    (["run", "--num_shards", "3"], "--num_shards", "did you mean --num-shards?"),
    (["run", "--direct-num-workers=2"], "--direct-num-workers", "did you mean --direct_num_workers?"),
    (["run", "-x"], "-x", ""),
    (["dedup", "exact", "IN", "--beam-option=--direct_num_workers=2"], "--beam-option", ""),  # removed flag
    (["dedup", "fuzzy", "IN", "--beam-options", "--runner DirectRunner"], "--beam-options", ""),  # removed flag
    (["signals", "in.jsonl", "--artifacts", "a", "--output", "o", "--bogus"], "--bogus", ""),
    (["signals", "in.jsonl", "--artifacts", "a", "--output", "o", "--runner=DirectRunner"], "--runner",
     "runs no Beam pipeline"),
    (["models", "download", "--direct_num_workers", "2"], "--direct_num_workers", "runs no Beam pipeline"),
    (["models", "download", "--langs", "en", "--retry", "3"], "--retry", "did you mean --retries?"),
]


@pytest.mark.parametrize("args, flag, hint", UNKNOWN_OPTIONS, ids=[" ".join(a[:2]) + " " + f for a, f, _ in
                                                                  UNKNOWN_OPTIONS])
def test_an_unknown_option_is_an_error_naming_it_before_any_work(args, flag, hint, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _exit_code(args) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"rpv2 {args[0]}") and f" {flag}" in line and hint in line, line
    assert list(tmp_path.iterdir()) == []  # the embedded sample was not built, ./rpv2-output not written


def test_the_misspelt_output_flag_no_longer_runs_the_sample_into_the_default_dir(tmp_path):
    result = _cli(["run", "--output-dir", str(tmp_path / "mine")], tmp_path)
    assert result.returncode == 2
    assert "unknown option --output-dir" in _one_line(result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


BEAM_FLAGS = ["--runner=DirectRunner", "--direct_num_workers", "2", "--flink_master=localhost:8081",
              "--parallelism=4", "--environment_type", "DOCKER", "--temp_location=gs://bucket/tmp",
              "--sdk_container_image=example.org/rpv2/worker:0.1.0", "--project=my-project", "--region",
              "us-central1", "--save_main_session", "--experiments=use_runner_v2", "--experiments=x"]


def test_beam_flags_pass_through_every_beam_command_as_beam_spells_them():
    parser = build_parser()
    run = parser.parse_args(["run", "--snapshot", "2023-06", *BEAM_FLAGS, "--shards", "0"])
    assert (run.snapshot, run.shards, run.beam_args) == ("2023-06", "0", BEAM_FLAGS)
    # a Beam option's value never becomes a positional argument, before or after the inputs
    exact = parser.parse_args(["dedup", "exact", "--runner", "DirectRunner", "a", "--direct_num_workers", "2",
                               "b", "--save_main_session", "c", "--partitions", "4"])
    assert exact.inputs == ["a", "b", "c"] and exact.partitions == 4
    assert exact.beam_args == ["--runner", "DirectRunner", "--direct_num_workers", "2", "--save_main_session"]
    fuzzy = parser.parse_args(["dedup", "fuzzy", "--direct_running_mode", "multi_threading", "in", "--threshold",
                               "0.9"])
    assert (fuzzy.input, fuzzy.threshold, fuzzy.beam_args) == ("in", "0.9", ["--direct_running_mode",
                                                                             "multi_threading"])
    # commands without Beam get none; negative numbers stay values
    assert parser.parse_args(["signals", "in", "--artifacts", "a", "--output", "o", "--max-docs", "-1"]).beam_args \
        == []


BAD_BEAM = [
    (["--direct_num_workers=abc"], "invalid int value: 'abc'"),
    (["--direct_running_mode=sideways"], "invalid choice: 'sideways'"),
    (["--save_main_session=yes"], "ignored explicit argument 'yes'"),
    (["--runner=Foo"], "runner 'Foo': not a Beam runner"),
    (["--runner=no_such_package.Runner"], "runner 'no_such_package.Runner': cannot be loaded here"),
    (["--runner=apache_beam.Pipeline"], "apache_beam has no PipelineRunner named Pipeline"),
    (["--runner"], "expected one argument"),
]


@pytest.mark.parametrize("command", [["run"], ["dedup", "exact", "IN"], ["dedup", "fuzzy", "IN"]])
@pytest.mark.parametrize("beam, message", BAD_BEAM, ids=[b[0] for b, _ in BAD_BEAM])
def test_beam_options_are_checked_by_beams_own_parser_and_runner_table(command, beam, message, tmp_path,
                                                                       monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _exit_code([*command, *beam]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("rpv2 " + " ".join(command[:2]).replace(" IN", "")) and message in line, line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("runner", ["DirectRunner", "direct", "PrismRunner", "FlinkRunner", "SparkRunner",
                                    "PortableRunner", "DataflowRunner",
                                    "apache_beam.runners.portability.fn_api_runner.FnApiRunner"])
def test_every_runner_beam_knows_is_accepted(runner):
    from pipeline.preflight import check_beam_args

    check_beam_args([f"--runner={runner}"])


@pytest.mark.parametrize("mode", ["exact", "fuzzy"])
def test_beam_options_with_the_local_engine_are_an_error_not_ignored(mode, tmp_path, capsys):
    code = _exit_code(["dedup", mode, str(tmp_path), "--engine", "local", "--direct_num_workers=2"])
    captured = capsys.readouterr()
    assert code == 2
    assert "apply to --engine beam" in _one_line(captured.err) and captured.out == ""


# a mistake each command finds after its parser (a missing input, a bad value): rpv2 CMD: error: on stderr
COMMAND_ERRORS = {
    "dedup exact": (lambda t: ["dedup", "exact", str(t / "missing"), "--output", str(t / "o")], "missing"),
    "dedup fuzzy": (lambda t: ["dedup", "fuzzy", str(t), "--threshold", "1.5"], "1.5"),
    "export": (lambda t: ["export", "--format", "rpv2", str(t / "missing"), "--output", str(t / "o")], "missing"),
    "filter": (lambda t: ["filter", "--recipe", str(t / "none.yaml"), str(t), "--output", str(t / "o")], "none.yaml"),
    "signals": (lambda t: ["signals", str(t / "missing.jsonl"), "--artifacts", str(t), "--output", str(t / "o")],
                "missing.jsonl"),
    "contamination build": (lambda t: ["contamination", "build", "--benchmark", f"b={t / 'missing.jsonl'}", "--out",
                                       str(t / "o")], "missing.jsonl"),
    "models manifest": (lambda t: ["models", "manifest", str(t / "missing")], "missing"),
    "models build-lm": (lambda t: ["models", "build-lm", "--lang", "en", "--corpus", str(t / "missing.txt")],
                        "missing.txt"),
    "report": (lambda t: ["report", str(t), "--output", str(t)], "is a directory"),
}


@pytest.mark.parametrize("command", sorted(COMMAND_ERRORS))
def test_a_commands_usage_error_is_one_line_on_stderr_and_stdout_stays_empty(command, tmp_path, capsys):
    """Stdout is what a command produces (a script may parse it); its mistakes go to stderr, one line."""
    args, named = COMMAND_ERRORS[command]
    code = _exit_code(args(tmp_path))
    captured = capsys.readouterr()
    assert code == 2, captured
    line = _one_line(captured.err)
    assert line.startswith(f"rpv2 {command}: error: ") and named in line, line
    assert captured.out == ""
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------------------------------
# configuration mistakes: one line, exit 2, nothing written, in seconds
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    """A real one-file mirror: with every check passing, the same command line runs (and exits 0)."""
    root = tmp_path_factory.mktemp("mirror")
    build_corpus_mirror(root, files=1, docs_per_file=12, seed=5)
    return root


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


# (name, extra args given a tmp dir, words the one line must hold). Each is a configuration mistake that
# once ran (or tracebacked, or waited); the count is the figure issue 9 asks for.
BAD_CONFIGURATIONS = [
    ("output is a file", lambda t: ["--output", _write(t / "f", "x")], ["output:", "not a directory"]),
    ("output under a file", lambda t: ["--output", _write(t / "f", "x") + "/out"], ["output:", "is a file"]),
    ("output not writable", lambda t: ["--output", "/proc/rpv2-out"], ["output:", "not writable"]),
    ("output file:// with a host", lambda t: ["--output", "file://relative/out"], ["output:", "no host part"]),
    ("output unknown scheme", lambda t: ["--output", "nosuchfs://bucket/out"], ["output:", "Beam cannot write"]),
    ("config missing", lambda t: ["--config", str(t / "nope.yaml")], ["nope.yaml: no such file"]),
    ("config malformed", lambda t: ["--config", _write(t / "c.yaml", "languages: [en\nbase_url: x\n")],
     ["not valid YAML", "line 2"]),
    ("config not a mapping", lambda t: ["--config", _write(t / "c.yaml", "- en\n")], ["expected a mapping"]),
    ("config unknown key", lambda t: ["--config", _write(t / "c.yaml", "outptu: x\n")], ["unknown configuration keys"]),
    ("config is a directory", lambda t: ["--config", str(t)], ["cannot be read"]),
    ("cutoffs missing", lambda t: ["--cutoffs", str(t / "cut.yaml")], ["cutoffs:", "no such file"]),
    ("cutoffs malformed", lambda t: ["--cutoffs", _write(t / "cut.yaml", "en: [1\n")], ["cutoffs:", "line 2"]),
    ("cutoffs wrong values", lambda t: ["--cutoffs", _write(t / "cut.yaml", "en: nope\n")], ["bad cutoffs"]),
    ("cutoffs an unfetchable URI", lambda t: ["--cutoffs", "ftp://host/cut.yaml"], ["cutoffs:", "cannot be fetched"]),
    ("lid model missing", lambda t: ["--lid-model", str(t / "lid.bin")], ["lid_model:", "no such file"]),
    ("lid model a directory", lambda t: ["--lid-model", str(t)], ["lid_model:", "not a file"]),
    ("work dir missing", lambda t: ["--work-dir", str(t / "scratch")], ["work_dir:", "no such directory"]),
    ("work dir a file", lambda t: ["--work-dir", _write(t / "f", "x")], ["work_dir:", "not a directory"]),
    ("models dir missing", lambda t: ["--models-dir", str(t / "lm")], ["models_dir:", "no such directory"]),
    ("artifacts missing", lambda t: ["--artifacts", str(t / "art")], ["artifacts:", "no such directory"]),
    ("exact state a file", lambda t: ["--exact-dedup-state", _write(t / "f", "x")], ["exact_dedup_state:"]),
    ("base url missing dir", lambda t: ["--base-url", str(t / "no-mirror")], ["base_url:", "no such directory"]),
    ("base url scheme", lambda t: ["--base-url", "ftp://mirror.example/"], ["base_url:", "ftp:// is not read"]),
    ("runner unknown", lambda t: ["--runner=Foo"], ["runner 'Foo'"]),
    ("runner unknown in yaml", lambda t: ["--config", _write(t / "c.yaml", "beam: {runner: Foo}\n")],
     ["runner 'Foo'"]),
    ("beam option unknown in yaml", lambda t: ["--config", _write(t / "c.yaml", "beam: {num_wrkers: 2}\n")],
     ["unknown Beam pipeline option --num_wrkers=2", "did you mean --num_workers?"]),
    ("runner profile unknown", lambda t: ["--runner-profile", "nope"], ["runner profile 'nope' not found"]),
    ("retry attempts 0", lambda t: ["--config", _write(t / "c.yaml", "retry: {max_attempts: 0}\n")],
     ["retry.max_attempts"]),
    ("retry jitter 2", lambda t: ["--config", _write(t / "c.yaml", "retry: {jitter: 2}\n")], ["retry.jitter"]),
    ("retry timeout -1", lambda t: ["--config", _write(t / "c.yaml", "retry: {timeout: -1}\n")], ["retry.timeout"]),
    ("retry unknown key", lambda t: ["--config", _write(t / "c.yaml", "retry: {attempts: 3}\n")],
     ["retry: unknown keys attempts"]),
    ("retry not a mapping", lambda t: ["--config", _write(t / "c.yaml", "retry: 3\n")], ["retry:"]),
    ("num shards 0", lambda t: ["--num-shards", "0"], ["num_shards"]),
    ("shards out of range", lambda t: ["--shards", "2-9"], ["shards", "out of range"]),
    ("languages uppercase", lambda t: ["--languages", "EN"], ["languages"]),
    ("lid threshold 1.5", lambda t: ["--lid-threshold", "1.5"], ["lid_threshold"]),
    ("min len -1", lambda t: ["--min-len", "-1"], ["min_len"]),
    ("fuzzy threshold 0.75", lambda t: ["--fuzzy-dedup", "0.75"], ["0.75"]),
    ("snapshot malformed", lambda t: ["--snapshot", "CC-MAIN-23-6"], ["snapshot"]),
    ("pipeline step order", lambda t: ["--config", _write(t / "c.yaml", "pipeline: [read, bucket, lid]\n")],
     ["pipeline"]),
    ("input format", lambda t: ["--input-format", "wat"], ["--input-format", "invalid choice"]),
]


@pytest.mark.parametrize("name, extra, words", BAD_CONFIGURATIONS, ids=[c[0] for c in BAD_CONFIGURATIONS])
def test_a_bad_configuration_is_one_line_before_any_work(name, extra, words, mirror, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    args = ["run", "--snapshot", "2023-06", "--base-url", str(mirror), "--num-shards", "1", "--output", str(out),
            "--languages", "all", *extra(tmp_path)]
    before = {p.name for p in tmp_path.iterdir()}
    started = time.monotonic()
    code = _exit_code(args)
    elapsed = time.monotonic() - started
    line = _one_line(capsys.readouterr().err)
    assert code == 2, line
    assert line.startswith("rpv2 run: ") and all(word in line for word in words), line
    assert not out.exists() and {p.name for p in tmp_path.iterdir()} == before  # nothing written
    assert elapsed < 10


def test_the_same_command_line_with_good_settings_runs(mirror, tmp_path, monkeypatch, capsys):
    """The control of the table above: its base command line is a working run."""
    monkeypatch.chdir(tmp_path)
    args = ["run", "--snapshot", "2023-06", "--base-url", str(mirror), "--num-shards", "1", "--output",
            str(tmp_path / "out"), "--languages", "all", "--no-signals", "--no-minhash", "--direct_num_workers=1"]
    assert _exit_code(args) == 0
    assert json.loads((tmp_path / "out" / "_run_summary.json").read_text())["documents"]["read"] == 12


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_base_url_nothing_listens_on_fails_in_seconds_not_after_the_retries(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    port = _free_port()
    started = time.monotonic()
    # default retry settings (8 attempts, up to 60 s apart): the listing read alone would take minutes
    code = _exit_code(["run", "--snapshot", "2023-06", "--base-url", f"http://127.0.0.1:{port}/", "--output",
                       str(tmp_path / "out")])
    elapsed = time.monotonic() - started
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and elapsed < 5, (elapsed, line)
    assert f"base_url: 127.0.0.1:{port} is unreachable: connection refused" in line
    assert not (tmp_path / "out").exists()


def test_a_base_url_that_accepts_but_never_answers_fails_after_the_probe_timeout(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as silent:  # the kernel completes connections to it; nobody ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        config = _write(tmp_path / "c.yaml", "retry: {timeout: 1.0}\n")
        started = time.monotonic()
        code = _exit_code(["run", "--snapshot", "2023-06", "--base-url",
                           f"http://127.0.0.1:{silent.getsockname()[1]}/", "--config", config, "--output",
                           str(tmp_path / "out")])
        elapsed = time.monotonic() - started
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and elapsed < 5, (elapsed, line)
    assert "is unreachable: connected, but no answer within 1s (2 attempts" in line


def test_a_live_server_without_the_listing_is_the_listing_readers_error_at_once(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with HTTPMirror(tmp_path) as server:
        started = time.monotonic()
        code = _exit_code(["run", "--snapshot", "2023-06", "--base-url", server.base_url, "--output",
                           str(tmp_path / "out")])
        elapsed = time.monotonic() - started
        paths = [r["path"] for r in server.requests]
    err = capsys.readouterr().err
    line = _one_line("\n".join(x for x in err.splitlines() if "WARNING: no models_dir" not in x))
    assert code == 1 and elapsed < 5 and "cannot read listing" in line and "not found" in line, line
    # the probe asked once, the reader once (a 404 is not retried)
    assert paths == ["/crawl-data/CC-MAIN-2023-06/wet.paths.gz"] * 2


# --------------------------------------------------------------------------------------------------
# hostile listings, file:// paths, missing models: a whole run
# --------------------------------------------------------------------------------------------------


def _hostile_mirror(root: Path, outside: Path) -> tuple[list[str], list[str]]:
    """A two-file mirror whose listing also names a real WET file outside it, in four ways."""
    good = build_corpus_mirror(root, files=2, docs_per_file=12, seed=9)
    secret = outside / "secret.warc.wet.gz"
    write_wet_file(secret, [{"url": "https://secret.example/page", "raw_content": "secret line\n" * 60}],
                   snapshot=SNAPSHOT)
    hostile = ["../outside/secret.warc.wet.gz", str(secret), secret.as_uri(), "..\\outside\\secret.warc.wet.gz"]
    write_listing(root, SNAPSHOT, [good[0], *hostile, good[1]])
    return good, hostile


def test_hostile_listing_entries_are_refused_named_and_never_read(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    mirror, outside, models = tmp_path / "mirror", tmp_path / "outside", tmp_path / "empty-lm"
    models.mkdir()
    good, hostile = _hostile_mirror(mirror, outside)
    out = tmp_path / "out"
    code = _exit_code(["run", "--snapshot", SNAPSHOT, "--base-url", mirror.as_uri() + "/", "--num-shards", "1",
                       "--output", out.as_uri(), "--languages", "en,de", "--models-dir", str(models),
                       "--no-signals", "--no-minhash", "--direct_num_workers=1"])
    err = capsys.readouterr().err
    assert code == 0, err
    summary = json.loads((out / "_run_summary.json").read_text())  # file:///.../out written as the local path
    refused = summary["run"]["listing_entries_refused"]
    assert refused["count"] == 4
    assert [(e["line"], e["entry"]) for e in refused["entries"]] == [(i + 2, h) for i, h in enumerate(hostile)]
    assert [e["reason"] for e in refused["entries"]] == ["'..' path segment", "absolute path",
                                                         "URL scheme or drive", "backslash"]
    assert summary["run"]["listed_files"] == 2
    assert summary["documents"]["read"] == 24  # the two mirror files, not the secret one
    urls = ds.dataset(out / "documents", format="parquet", partitioning="hive").to_table().column("url")
    assert not any("secret" in url for url in urls.to_pylist())
    warnings = [line for line in err.splitlines() if "WARNING" in line and line.startswith("rpv2 run")]
    assert any("4 listing entries refused, never read" in w and "../outside/secret" in w for w in warnings), err
    # the models dir has no model for the kept languages: said before the run, and they got bucket `all`
    assert any("no {lang}.sp.model + {lang}.arpa.bin for en, de" in w for w in warnings), err
    assert {b for per_lang in summary["kept_by_language_bucket"].values() for b in per_lang} == {"all"}


def test_over_http_only_the_mirrors_own_files_are_requested(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    mirror = tmp_path / "mirror"
    good, hostile = _hostile_mirror(mirror, tmp_path / "outside")
    with HTTPMirror(mirror) as server:
        code = _exit_code(["run", "--snapshot", SNAPSHOT, "--base-url", server.base_url, "--num-shards", "1",
                           "--output", str(tmp_path / "out"), "--languages", "all", "--no-signals", "--no-minhash",
                           "--direct_num_workers=1"])
        requested = {r["path"].lstrip("/") for r in server.requests}
    assert code == 0, capsys.readouterr().err
    assert requested == {f"crawl-data/{SNAPSHOT}/wet.paths.gz", *good}
    with gzip.open(mirror / "crawl-data" / SNAPSHOT / "wet.paths.gz", "rt") as listing:
        assert len(listing.read().splitlines()) == len(good) + len(hostile)
