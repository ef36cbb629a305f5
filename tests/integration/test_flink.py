"""rpv2 on Apache Flink through Beam's portable FlinkRunner, and on Spark, against the DirectRunner.

What `make install` sets up (scripts/install_flink.sh: the Flink job-server jar in Beam's jar cache, the
Flink distribution, the SDK worker boot command; scripts/install_spark.sh: the Spark job-server jar) is
used as is, offline:

(a) embedded Flink, the `flink-local` runner profile (a Flink mini-cluster inside the job server, two
    Python SDK worker processes): `rpv2 run` with exact dedup (--exact-dedup-state) and fuzzy dedup
    (--fuzzy-dedup 0.8) in the same pipeline, over a small multi-shard CommonCrawl-layout mirror that
    holds exact and near duplicates across shards. Every Parquet file (documents, exact-dedup and
    fuzzy-dedup outputs) and every file of the exact-dedup state must have the DirectRunner run's
    sha256, and the Beam counters Flink reports must be the DirectRunner's, with read == kept + dropped.
(b) a standalone cluster (one JobManager + one TaskManager, scripts/flink_cluster.sh, started on free
    ports for this session and stopped at the end, failed or not): the same run submitted through the
    job server with --flink_master=localhost:<port>, its models (LID, LMs, cutoffs) by http:// URL from
    a local server, fetched by the TaskManager's SDK workers into a fetch cache of their own. The
    cluster's REST API must list the job FINISHED, and the output must be the DirectRunner's.
(c) Spark, the `spark-local` profile (local[2], two SDK worker processes): the same bytes.

That Flink (or Spark) ran the job is shown by Flink (Spark) itself, in the job server's log lines and
the cluster's REST API, never inferred from the output: a silent DirectRunner fallback fails these tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import re
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO_ROOT, shared_path
from http_mirror import HTTPMirror
from pipeline_corpus import SNAPSHOT, build_corpus_models, make_file_docs, sentences

from pipeline.config import ConfigError, load_config
from pipeline.sample.mirror import build_mirror, segment_relpath
from pipeline.transforms.run import run_pipeline

FILES, DOCS_PER_FILE, NUM_SHARDS = 4, 18, 2
LANGUAGES = ("en", "de", "fr")
THRESHOLD = 0.8
FAST_RETRY = {"max_attempts": 3, "base_delay": 0.01, "max_delay": 0.02}
RUNNER_LOGGER = "pipeline.transforms.runner"
JOB_SERVER_LOGGER = RUNNER_LOGGER + ".job_server"
CLUSTER_SCRIPT = REPO_ROOT / "scripts" / "flink_cluster.sh"
WALL_TIMES: dict[str, float] = {}  # fixture -> seconds, printed at the end of the module


# --------------------------------------------------------------------------------------------------
# what `make install` put in place
# --------------------------------------------------------------------------------------------------


def _rpv2_cache() -> Path:
    return Path(os.environ.get("RPV2_CACHE") or Path.home() / ".cache" / "rpv2")


@pytest.fixture(scope="session")
def flink_install() -> dict[str, str]:
    """$RPV2_CACHE/flink.env as scripts/install_flink.sh wrote it; a missing install fails (not skips)."""
    env_file = _rpv2_cache() / "flink.env"
    if not env_file.exists():
        pytest.fail(f"{env_file} missing: the Flink runner is not installed (run `make install` or "
                    "scripts/install_flink.sh)")
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines()
                  if "=" in line and not line.startswith("#"))
    for key in ("RPV2_FLINK_JOB_SERVER_JAR", "RPV2_BEAM_SDK_BOOT", "RPV2_FLINK_HOME"):
        assert Path(values[key]).exists(), f"{key}={values[key]} missing: rerun scripts/install_flink.sh"
    return values


# --------------------------------------------------------------------------------------------------
# the corpus: 4 WET files in 2 shards; shard 1 repeats pages of shard 0, exactly and nearly
# --------------------------------------------------------------------------------------------------


def _near_copy(doc: dict, rng: random.Random) -> dict:
    """The page with one word of its longest paragraph replaced: a near duplicate (Jaccard ~0.9)."""
    lines = doc["raw_content"].split("\n")
    longest = max(range(len(lines)), key=lambda i: len(lines[i]))
    words = lines[longest].split(" ")
    words[rng.randrange(len(words))] = "Zwischenfall"
    lines[longest] = " ".join(words)
    return {**doc, "url": doc["url"] + "?near", "raw_content": "\n".join(lines)}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("mirror")
    rng = random.Random(23)
    pools = {language: sentences(language) for language in (*LANGUAGES, "nl")}
    files = [make_file_docs(rng, pools, f * DOCS_PER_FILE, DOCS_PER_FILE) for f in range(FILES)]
    long_pages = [doc for doc in files[0] if len(doc["raw_content"]) > 600]
    assert len(long_pages) >= 4
    # shard 1 (files 2 and 3) carries two exact copies and two near copies of shard 0's pages; across
    # shards, so line dedup (within a shard) leaves them for exact and fuzzy dedup
    files[3] += [{**doc, "url": doc["url"] + "?copy"} for doc in long_pages[:2]]
    files[3] += [_near_copy(doc, rng) for doc in long_pages[2:4]]
    layout = {segment_relpath(SNAPSHOT, f): docs for f, docs in enumerate(files)}
    return root, build_mirror(root, SNAPSHOT, layout)


@pytest.fixture(scope="module")
def models(tmp_path_factory, mirror) -> tuple[str, str]:
    root, relpaths = mirror
    return build_corpus_models(tmp_path_factory.mktemp("models"), root, relpaths, LANGUAGES)


def _overrides(base_url: str, work: Path, *, lid_model: str, models_dir: str, cutoffs: str) -> dict:
    return {
        "snapshot": "2023-06", "base_url": base_url, "num_shards": NUM_SHARDS, "output": str(work / "out"),
        "languages": ",".join(LANGUAGES), "lid_model": lid_model, "models_dir": models_dir, "cutoffs": cutoffs,
        "retry": FAST_RETRY, "exact_dedup_state": str(work / "exact-state"), "fuzzy_dedup": THRESHOLD,
    }


def _local_models(models: tuple[str, str]) -> dict[str, str]:
    models_dir, cutoffs = models
    return {"lid_model": str(shared_path("realdata", "models", "lid.176.ftz")), "models_dir": models_dir,
            "cutoffs": cutoffs}


def _digests(work: Path) -> dict[str, str]:
    """sha256 of every Parquet file the run wrote (documents, duplicates_exact, is_duplicate_exact,
    clusters_sim0.8) and of every file of the exact-dedup state."""
    files = sorted((work / "out").rglob("*.parquet")) + sorted(p for p in (work / "exact-state").rglob("*") if p.is_file())
    return {path.relative_to(work).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


@contextlib.contextmanager
def _job_server_lines() -> Iterator[list[str]]:
    """Every line the Flink job server printed while the block ran (pipeline/transforms/runner.py relays
    them to its ``job_server`` logger at DEBUG), and the runner module's own log lines."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    runner_log, job_server_log = logging.getLogger(RUNNER_LOGGER), logging.getLogger(JOB_SERVER_LOGGER)
    handler = Collect(logging.DEBUG)
    saved = (runner_log.level, runner_log.propagate, job_server_log.level)
    runner_log.addHandler(handler)
    runner_log.setLevel(logging.DEBUG)
    job_server_log.setLevel(logging.DEBUG)
    runner_log.propagate = False  # thousands of lines per job: kept here, not in pytest's captured log
    try:
        yield lines
    finally:
        runner_log.removeHandler(handler)
        runner_log.setLevel(saved[0])
        runner_log.propagate = saved[1]
        job_server_log.setLevel(saved[2])


def _scratch_dirs(lines: list[str]) -> list[str]:
    """The job servers' temporary directories, as pipeline/transforms/runner.py names them."""
    return [match.group(1) for line in lines for match in [re.search(r"\(scratch dir (\S+)\)$", line)] if match]


def _finished_jobs(lines: list[str]) -> list[str]:
    """Names of the Flink jobs the log shows going from RUNNING to FINISHED."""
    pattern = re.compile(r"Job (\S+) \([0-9a-f]{32}\) switched from state RUNNING to FINISHED")
    return [match.group(1) for line in lines for match in [pattern.search(line)] if match]


# --------------------------------------------------------------------------------------------------
# the runner profile and the runner choice, without running anything
# --------------------------------------------------------------------------------------------------


def test_the_flink_local_profile_names_the_boot_command_under_rpv2_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("RPV2_CACHE", str(tmp_path / "cache"))
    config = load_config(runner_profile="flink-local")
    assert json.loads(config.beam["environment_config"]) == {"command": f"{tmp_path}/cache/bin/beam_sdk_boot"}
    monkeypatch.delenv("RPV2_CACHE")
    config = load_config(runner_profile="flink-local")
    expected = str(Path.home() / ".cache" / "rpv2" / "bin" / "beam_sdk_boot")
    assert json.loads(config.beam["environment_config"]) == {"command": expected}
    profile = tmp_path / "mine.yaml"
    profile.write_text("beam:\n  runner: FlinkRunner\n  job_server_jvm_properties: [-Dx=~/a, -Dy=$RPV2_NOT_SET_ANYWHERE]\n")
    with pytest.raises(ConfigError, match=r"job_server_jvm_properties.*\$RPV2_NOT_SET_ANYWHERE is not set"):
        load_config(runner_profile=str(profile))
    monkeypatch.setenv("RPV2_NOT_SET_ANYWHERE", "1")
    assert load_config(runner_profile=str(profile)).beam["job_server_jvm_properties"] == [
        f"-Dx={Path.home()}/a", "-Dy=1"]


def test_a_flink_pipeline_is_built_on_beams_flink_runner():
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.flink_runner import FlinkRunner

    from pipeline.transforms.runner import new_pipeline

    config = load_config(runner_profile="flink-local")
    pipeline = new_pipeline(PipelineOptions(config.beam_args()))
    assert type(pipeline.runner) is FlinkRunner


# --------------------------------------------------------------------------------------------------
# the runs
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def direct_run(tmp_path_factory, mirror, models):
    """The reference: the DirectRunner (in-process FnApiRunner), one worker, models by local path."""
    root, _ = mirror
    work = tmp_path_factory.mktemp("direct")
    config = load_config(overrides=_overrides(str(root), work, **_local_models(models)))
    assert config.beam.get("runner") == "DirectRunner"
    started = time.monotonic()
    summary = run_pipeline(config, ["--direct_num_workers=1"])
    WALL_TIMES["DirectRunner run"] = time.monotonic() - started
    return work, summary


@pytest.fixture(scope="module")
def flink_run(tmp_path_factory, flink_install, mirror, models):
    """The same run with `--runner-profile flink-local` (embedded Flink, two SDK worker processes)."""
    root, _ = mirror
    work = tmp_path_factory.mktemp("flink")
    config = load_config(overrides=_overrides(str(root), work, **_local_models(models)), runner_profile="flink-local")
    assert config.beam["runner"] == "FlinkRunner" and config.beam["flink_master"] == "[local]"
    assert config.beam["environment_config"] == json.dumps({"command": flink_install["RPV2_BEAM_SDK_BOOT"]})
    started = time.monotonic()
    with _job_server_lines() as lines:
        summary = run_pipeline(config)
    WALL_TIMES["embedded Flink run (flink-local)"] = time.monotonic() - started
    return work, summary, lines


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cluster_script(command: str, env: dict[str, str], *args: str, timeout: float = 180) -> str:
    done = subprocess.run(["bash", str(CLUSTER_SCRIPT), command, *args], env=env, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"flink_cluster.sh {command} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout + done.stderr


@pytest.fixture(scope="session")
def flink_cluster(tmp_path_factory, flink_install) -> Iterator[dict]:
    """A standalone Flink cluster for this session (JobManager + TaskManager, 2 slots, REST and RPC on
    free ports, its files in a temporary directory), stopped at the end whatever happened. Its SDK
    workers get a fetch cache of their own (RPV2_CACHE of the TaskManager)."""
    cluster_dir = tmp_path_factory.mktemp("flink-cluster")
    port = _free_port()
    env = {
        **os.environ,
        "RPV2_FLINK_HOME": flink_install["RPV2_FLINK_HOME"],
        "RPV2_FLINK_CLUSTER_DIR": str(cluster_dir),
        "RPV2_FLINK_RPC_PORT": str(_free_port()),
        "RPV2_CACHE": str(cluster_dir / "worker-cache"),  # what the TaskManager's SDK workers fetch into
    }
    started = time.monotonic()
    try:
        _cluster_script("start", env, str(port))
        WALL_TIMES["standalone cluster start"] = time.monotonic() - started
        yield {"port": port, "dir": cluster_dir, "worker_cache": cluster_dir / "worker-cache"}
    finally:
        _cluster_script("stop", env, timeout=60)


def _rest(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def served_models(tmp_path_factory, models) -> Path:
    """What a bucket would hold: lm/ (with build-lm's SHA256SUMS), lid.176.ftz, cutoffs.yaml."""
    models_dir, cutoffs = models
    root = tmp_path_factory.mktemp("bucket")
    shutil.copytree(models_dir, root / "lm")
    shutil.copy(shared_path("realdata", "models", "lid.176.ftz"), root / "lid.176.ftz")
    shutil.copy(cutoffs, root / "cutoffs.yaml")
    return root


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory, flink_cluster, mirror, served_models):
    """The run submitted to the standalone cluster through the job server, models by http:// URL."""
    root, _ = mirror
    work = tmp_path_factory.mktemp("cluster")
    job_name = f"rpv2-test-{uuid.uuid4().hex[:12]}"
    with HTTPMirror(served_models) as server:
        overrides = _overrides(str(root), work, lid_model=server.url("lid.176.ftz"), models_dir=server.url("lm"),
                               cutoffs=server.url("cutoffs.yaml"))
        overrides["beam"] = {"flink_master": f"localhost:{flink_cluster['port']}", "job_name": job_name}
        config = load_config(overrides=overrides, runner_profile="flink-local")
        started = time.monotonic()
        with _job_server_lines() as lines:
            summary = run_pipeline(config)
        WALL_TIMES["standalone cluster run"] = time.monotonic() - started
        requests = server.requests
    return work, summary, lines, job_name, requests


@pytest.fixture(scope="module")
def spark_run(tmp_path_factory, flink_install, mirror, models):
    """The same run with `--runner-profile spark-local` (local[2], two SDK worker processes)."""
    jar = Path(os.environ.get("RPV2_BEAM_JAR_CACHE") or Path.home() / ".apache_beam" / "cache" / "jars")
    jars = sorted(jar.glob("beam-runners-spark-3-job-server-*.jar"))
    if not jars:
        pytest.fail(f"no Spark job-server jar in {jar}: run `make install` or scripts/install_spark.sh")
    root, _ = mirror
    work = tmp_path_factory.mktemp("spark")
    config = load_config(overrides=_overrides(str(root), work, **_local_models(models)), runner_profile="spark-local")
    assert config.beam["runner"] == "SparkRunner"
    started = time.monotonic()
    with _job_server_lines() as lines:
        summary = run_pipeline(config)
    WALL_TIMES["local Spark run (spark-local)"] = time.monotonic() - started
    return work, summary, lines


@pytest.fixture(scope="module", autouse=True)
def _report_wall_times():
    yield
    if WALL_TIMES:
        print("\nwall times: " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in WALL_TIMES.items()))


# --------------------------------------------------------------------------------------------------
# (a) embedded Flink
# --------------------------------------------------------------------------------------------------


def test_the_reference_run_finds_exact_and_near_duplicates(direct_run):
    _, summary = direct_run
    assert summary["exact_dedup"]["duplicates"] >= 2
    assert summary["fuzzy_dedup"]["clusters"] >= 2


def test_flink_ran_the_job_on_an_embedded_mini_cluster_with_two_sdk_workers(flink_run):
    _, _, lines = flink_run
    text = "\n".join(lines)
    assert "org.apache.beam.runners.flink.FlinkPipelineRunner - Translating pipeline to Flink program" in text
    assert "org.apache.flink.runtime.minicluster.MiniCluster - Flink Mini Cluster started successfully" in text
    assert len(_finished_jobs(lines)) == 1, text[-3000:]
    # each SDK worker process the job server started logs its pipeline options once when it starts
    workers = [line for line in lines if re.search(r"sdk_worker_main\.py:\d+ - Pipeline_options: ", line)]
    assert len(workers) == 2, workers
    assert all("'environment_type': 'PROCESS'" in line and "'parallelism': 2" in line for line in workers)


def test_the_job_server_is_stopped_and_its_temporary_files_removed(flink_run):
    _, _, lines = flink_run
    scratch = _scratch_dirs(lines)
    assert len(scratch) == 1, scratch  # one pipeline, one job server
    # the mini-cluster kept its files (blob store, spill, uploads) in that directory, not in /tmp ...
    assert any(f"BLOB server storage directory {scratch[0]}/" in line for line in lines)
    assert not any(re.search(r"directory /tmp/(minicluster_|flink-)", line) for line in lines)
    # ... which is gone, with the job server and its SDK workers
    assert not Path(scratch[0]).exists()
    leftover = subprocess.run(["pgrep", "-f", scratch[0]], capture_output=True, text=True).stdout.split()
    assert leftover == []


def test_flink_writes_the_bytes_of_the_direct_runner(flink_run, direct_run):
    flink_work, _, _ = flink_run
    direct_work, _ = direct_run
    expected = _digests(direct_work)
    assert any(name.startswith("out/documents/") for name in expected)
    assert any(name.startswith("out/duplicates_exact/") for name in expected)
    assert any(name.startswith("out/clusters_sim0.8/") for name in expected)
    assert any(name.startswith("exact-state/") for name in expected)
    assert _digests(flink_work) == expected


def test_flink_counters_give_the_direct_runners_accounting(flink_run, direct_run):
    _, flink, _ = flink_run
    _, direct = direct_run
    for summary in (flink, direct):
        counters = summary["counters"]
        dropped = sum(value for name, value in counters.items() if name.startswith("dropped_"))
        assert counters["documents_read"] == counters["documents_kept"] + dropped > 0
        assert counters["documents_read"] == summary["documents"]["read"]
    assert flink["counters"] == direct["counters"]
    assert flink["documents"] == direct["documents"]
    assert flink["kept_by_language_bucket"] == direct["kept_by_language_bucket"]


def test_flink_dedup_summaries_equal_the_direct_runners(flink_run, direct_run):
    _, flink, _ = flink_run
    _, direct = direct_run
    for key in ("documents", "duplicates", "per_snapshot"):
        assert flink["exact_dedup"][key] == direct["exact_dedup"][key], key
    for key in ("clustered", "clusters", "counters"):
        assert flink["fuzzy_dedup"][key] == direct["fuzzy_dedup"][key], key


def _flink_flags(flink_install: dict[str, str]) -> list[str]:
    """flink-local's options as Beam flags on the command line (what `--runner-profile flink-local` gives,
    spelled out: Beam's flags pass through every command)."""
    config = load_config(runner_profile="flink-local")
    return [f"--{key}={value}" for key, value in sorted(config.beam.items())]


def _cli(*args: str, flink: bool) -> subprocess.CompletedProcess:
    import sys

    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "-v", *args], capture_output=True, text=True,
                          timeout=600, cwd=REPO_ROOT)
    command = " ".join(arg for arg in args[:2] if not arg.startswith("/"))
    WALL_TIMES[f"rpv2 {command} on {'embedded Flink' if flink else 'the DirectRunner'}"] = (
        time.monotonic() - started)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # -v: the job server's lines are on stderr; Flink translated and finished one job (or none ran)
    assert ("FlinkPipelineRunner - Translating pipeline to Flink program" in done.stderr) is flink
    assert len(_finished_jobs(done.stderr.splitlines())) == (1 if flink else 0)
    return done


def _files(root: Path, *parts: str) -> dict[str, str]:
    """sha256 of every file under root/part (relative to root), summaries (``_*``) left out."""
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for part in parts for path in sorted((root / part).rglob("*"))
            if path.is_file() and not path.name.startswith("_")}


def test_rpv2_dedup_exact_runs_on_flink_with_beam_flags(flink_install, direct_run, tmp_path):
    """`rpv2 dedup exact` on embedded Flink, given the profile's options as Beam flags: the DirectRunner's
    outputs and Bloom-filter state, and the outputs of the run's own exact-dedup stage."""
    direct_work, _ = direct_run
    out = direct_work / "out"
    for name, flags in (("direct", []), ("flink", _flink_flags(flink_install))):
        _cli("dedup", "exact", str(out), "--output", str(tmp_path / name / "out"), "--state",
             str(tmp_path / name / "state"), *flags, flink=bool(flags))
    every = ("out", "state")
    assert _files(tmp_path / "flink", *every) == _files(tmp_path / "direct", *every) != {}
    exact = ("duplicates_exact", "is_duplicate_exact")
    assert _files(tmp_path / "flink" / "out", *exact) == _files(out, *exact) != {}


def test_rpv2_dedup_fuzzy_runs_on_flink_with_beam_flags(flink_install, direct_run, tmp_path):
    """`rpv2 dedup fuzzy --engine beam` on embedded Flink: the clusters of the DirectRunner run's stage."""
    direct_work, _ = direct_run
    out = direct_work / "out"
    _cli("dedup", "fuzzy", str(out), "--output", str(tmp_path), "--threshold", str(THRESHOLD), "--engine", "beam",
         *_flink_flags(flink_install), flink=True)
    assert _files(tmp_path, "clusters_sim0.8") == _files(out, "clusters_sim0.8") != {}


@pytest.mark.parametrize("command", ["filter", "export"])
def test_rpv2_filter_and_export_run_on_flink_with_beam_flags(command, flink_install, direct_run, tmp_path):
    """`rpv2 filter` (the gopher recipe) and `rpv2 export` on embedded Flink: the DirectRunner's files."""
    direct_work, _ = direct_run
    args = {"filter": ["--recipe", str(REPO_ROOT / "configs" / "recipes" / "gopher.yaml")],
            "export": ["--format", "rpv2"]}[command]
    for name, flags in (("direct", []), ("flink", _flink_flags(flink_install))):
        _cli(command, str(direct_work / "out"), *args, "--output", str(tmp_path / name), *flags, flink=bool(flags))
    assert _files(tmp_path, "flink") != {}
    assert {name.removeprefix("flink/"): digest for name, digest in _files(tmp_path, "flink").items()} == {
        name.removeprefix("direct/"): digest for name, digest in _files(tmp_path, "direct").items()}


def test_rpv2_export_hf_runs_on_flink_with_the_runner_profile(flink_install, direct_run, tmp_path):
    """`--runner-profile flink-local` on a command other than `rpv2 run` (the one helper every Beam command
    uses, pipeline/transforms/runner.py): `rpv2 export --format hf` on embedded Flink writes the
    DirectRunner's files, dataset card and report included."""
    direct_work, _ = direct_run
    for name, flags in (("direct", []), ("flink", ["--runner-profile", "flink-local"])):
        _cli("export", str(direct_work / "out"), "--format", "hf", "--output", str(tmp_path / name), *flags,
             flink=bool(flags))

    def every_file(root: Path) -> dict[str, str]:
        return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
                for path in sorted(root.rglob("*")) if path.is_file()}

    direct = every_file(tmp_path / "direct")
    assert {"README.md", "_export_report.json"} < set(direct) and any(name.startswith("data/") for name in direct)
    assert every_file(tmp_path / "flink") == direct


# --------------------------------------------------------------------------------------------------
# (b) a standalone cluster
# --------------------------------------------------------------------------------------------------


def test_the_cluster_lists_the_job_finished(cluster_run, flink_cluster):
    _, _, lines, job_name, _ = cluster_run
    jobs = _rest(flink_cluster["port"], "/jobs/overview")["jobs"]
    ours = [job for job in jobs if job["name"] == job_name]
    assert [job["state"] for job in ours] == ["FINISHED"], jobs
    assert ours[0]["tasks"]["finished"] == ours[0]["tasks"]["total"] > 0
    # submitted to the cluster by the job server, not run on a mini-cluster of its own
    assert not any("Starting Flink Mini Cluster" in line for line in lines)


def test_the_cluster_writes_the_bytes_of_the_direct_runner(cluster_run, direct_run):
    cluster_work, cluster, _, _, _ = cluster_run
    direct_work, direct = direct_run
    assert _digests(cluster_work) == _digests(direct_work)
    assert cluster["counters"] == direct["counters"]
    assert cluster["fuzzy_dedup"]["clusters"] == direct["fuzzy_dedup"]["clusters"]


def test_the_cluster_workers_fetched_the_models_by_url(cluster_run, flink_cluster):
    _, _, _, _, requests = cluster_run
    served = {request["path"] for request in requests if request["status"] == 200}
    assert "/lid.176.ftz" in served and "/cutoffs.yaml" in served
    assert any(path.startswith("/lm/") and path.endswith(".arpa.bin") for path in served)
    fetched = {path.name for path in (flink_cluster["worker_cache"] / "fetched").rglob("*") if path.is_file()}
    assert "lid.176.ftz" in fetched and "en.arpa.bin" in fetched, sorted(fetched)


# --------------------------------------------------------------------------------------------------
# (c) Spark, the same way (spark-local; Spark reports counters as attempted values only)
# --------------------------------------------------------------------------------------------------


def test_spark_ran_the_job_and_writes_the_bytes_of_the_direct_runner(spark_run, direct_run):
    spark_work, spark, lines = spark_run
    direct_work, direct = direct_run
    text = "\n".join(lines)
    assert "org.apache.spark.SparkContext - Running Spark version" in text
    assert re.search(r"SparkPipelineRunner - Job \S+ finished\.", text), text[-3000:]
    assert len([line for line in lines if re.search(r"sdk_worker_main\.py:\d+ - Pipeline_options: ", line)]) == 2
    assert _digests(spark_work) == _digests(direct_work)
    assert spark["documents"] == direct["documents"]
    assert spark["fuzzy_dedup"]["clusters"] == direct["fuzzy_dedup"]["clusters"]
    assert all(not Path(path).exists() for path in _scratch_dirs(lines))
