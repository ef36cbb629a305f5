"""Kill it anywhere, run it again: `rpv2 run` and `rpv2 dedup fuzzy` killed with SIGKILL at random points
resume and end byte-identical to an uninterrupted run, without recomputing finished shards.

The kill points are drawn from a seeded generator (the seed is printed; set RPV2_KILL_SEED to replay a
failure) and spread over the duration of an uninterrupted run measured first.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT, shared_path
from pipeline_corpus import SNAPSHOT, build_corpus_mirror, build_corpus_models

KILLS = 5
NUM_SHARDS = 10


def _digests(root: Path, pattern: str = "documents/**/*.parquet") -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.glob(pattern)) if p.is_file()}


def _records(out: Path) -> dict[str, tuple[int, bytes]]:
    """Shard record path -> (mtime_ns, bytes): a record rewritten by a later run changes both."""
    return {p.relative_to(out).as_posix(): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(out.glob("_shards/**/*.json"))}


def _start(args: list[str], log: Path, tmpdir: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    if tmpdir is not None:  # the process's system temp dir: one the test can watch, unlike the shared /tmp
        tmpdir.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(tmpdir)
    with log.open("ab") as handle:
        return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], cwd=REPO_ROOT, env=env,
                                stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def _run(args: list[str], log: Path, tmpdir: Path | None = None) -> float:
    started = time.monotonic()
    proc = _start(args, log, tmpdir)
    assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    return time.monotonic() - started


def _kill_points(duration: float, seed: int) -> list[float]:
    """KILLS delays in seconds, one per stratum of the run's duration (start-up included), shuffled."""
    rng = random.Random(seed)
    strata = [(0.15 + 0.8 * i / KILLS, 0.15 + 0.8 * (i + 1) / KILLS) for i in range(KILLS)]
    points = [duration * rng.uniform(lo, hi) for lo, hi in strata]
    rng.shuffle(points)
    return points


def _kill_and_resume(args: list[str], out: Path, log: Path, shard_seconds: float, seed: int, tmpdir: Path) -> dict:
    """Run ``args`` KILLS times, each killed (SIGKILL to its process group) at a drawn point: after 0, 1
    or 2 more shards of this run have finished, plus a drawn part of one shard's time (so kills land in
    start-up, inside a shard, between shards and in the summary), then once to the end."""
    rng = random.Random(seed)
    seen: dict = {"kills": [], "records_before_final": 0}
    for _ in range(KILLS):
        before = _records(out)
        more = rng.randrange(0, 3)
        extra = rng.uniform(0.0, shard_seconds)
        proc = _start(args, log, tmpdir)
        deadline = time.monotonic() + 300
        # wait until this run works on shards (a spool in the output's scratch dir) and `more` of them
        # are finished, so that the kill lands inside the run's shards rather than in its start-up
        while proc.poll() is None and not (
            len(_records(out)) >= len(before) + more and (more or list(out.glob("_work/**/rpv2-*")))
        ):
            assert time.monotonic() < deadline
            time.sleep(0.005)
        time.sleep(extra)
        finished = proc.poll() is not None
        if not finished:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        after = _records(out)
        # a record that existed before this run is never rewritten: finished shards are not recomputed
        assert {k: after.get(k) for k in before} == before
        seen["kills"].append({"after_shards": more, "plus_s": round(extra, 3), "finished_first": finished,
                              "records": len(after)})
    seen["records_before_final"] = len(_records(out))
    before = _records(out)
    _run(args, log, tmpdir)
    after = _records(out)
    assert {k: after.get(k) for k in before} == before
    return seen


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    mirror = root / "mirror"
    relpaths = build_corpus_mirror(mirror, files=NUM_SHARDS, docs_per_file=60, seed=11)
    models, cutoffs = build_corpus_models(root / "models", mirror, relpaths)
    lid = shared_path("realdata", "models", "lid.176.ftz")
    args = ["run", "--snapshot", SNAPSHOT, "--base-url", str(mirror), "--num-shards", str(NUM_SHARDS),
            "--languages", "en,de,fr", "--models-dir", models, "--cutoffs", cutoffs, "--lid-model", str(lid)]
    return root, args


def test_a_run_killed_anywhere_resumes_to_the_same_bytes(corpus, capsys):
    root, args = corpus
    seed = int(os.environ.get("RPV2_KILL_SEED", random.SystemRandom().randrange(1 << 30)))
    print(f"kill test seed: {seed} (RPV2_KILL_SEED={seed} replays it)")
    reference, resumed = root / "reference", root / "resumed"
    log = root / "run.log"
    _run([*args, "--output", str(reference)], log)
    systmp = root / "systmp"

    ref_summary = json.loads((reference / "_run_summary.json").read_text())
    shard_seconds = ref_summary["throughput"]["worker_seconds"] / NUM_SHARDS
    seen = _kill_and_resume([*args, "--output", str(resumed)], resumed, log, shard_seconds, seed, systmp)

    assert _digests(resumed) == _digests(reference)
    assert len(_digests(reference)) >= 9
    assert _records(resumed).keys() == _records(reference).keys() and len(_records(reference)) == NUM_SHARDS
    summary = json.loads((resumed / "_run_summary.json").read_text())
    assert summary["documents"] == ref_summary["documents"]  # rebuilt from the records
    assert summary["kept_by_language_bucket"] == ref_summary["kept_by_language_bucket"]
    assert len(summary["run"]["shards_resumed"]) == seen["records_before_final"]
    # nothing left behind after the kills: no scratch in the output, nothing in the processes' system temp
    # dir (Beam's own beam-pipeline-temp* dirs included: a run points them into its scratch dir)
    assert not (resumed / "_work").exists()
    assert not list(systmp.iterdir())
    with capsys.disabled():
        print(f"\nkill test: seed {seed}, {len(seen['kills'])} kills {seen['kills']}, "
              f"{seen['records_before_final']} of {NUM_SHARDS} shards resumed at the end, "
              f"{summary['documents']['read']} documents compared byte for byte in {len(_digests(reference))} files")


def test_force_recomputes_and_other_settings_are_refused(corpus):
    root, args = corpus
    out = root / "forced"
    log = root / "force.log"
    _run([*args, "--output", str(out), "--shards", "0-1"], log)
    first = _records(out)
    refused = subprocess.run([sys.executable, "-m", "pipeline.cli", *args, "--output", str(out), "--min-len", "100"],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2
    assert "other settings: min_len 300 -> 100" in refused.stderr and refused.stderr.count("\n") <= 3
    _run([*args, "--output", str(out), "--shards", "0-1", "--force"], log)
    again = _records(out)
    assert again.keys() == first.keys()
    assert all(again[k][0] != first[k][0] for k in first)  # rewritten: recomputed
    # with the same files (bytes, sha256): only the timings in the stats differ
    assert all(json.loads(again[k][1])["files"] == json.loads(first[k][1])["files"] for k in first)


def _reference_run(corpus) -> Path:
    """The uninterrupted run the dedup and filter kill tests read (made once per module)."""
    root, args = corpus
    data = root / "reference"
    if not (data / "_run_summary.json").exists():
        _run([*args, "--output", str(data)], root / "run.log")
    return data


def _kill_then_finish(command: list[str], reference: Path, killed: Path, log: Path, name: str) -> None:
    """Run ``command`` uninterrupted into ``reference``, then into ``killed`` KILLS times killed at
    seeded points spread over its duration, then once to the end."""
    seed = int(os.environ.get("RPV2_KILL_SEED", random.SystemRandom().randrange(1 << 30)))
    print(f"{name} kill test seed: {seed}")
    duration = _run([*command, "--output", str(reference)], log)
    for delay in _kill_points(duration, seed):
        proc = _start([*command, "--output", str(killed)], log)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _run([*command, "--output", str(killed)], log)


def test_fuzzy_dedup_killed_anywhere_ends_with_the_same_clusters(corpus):
    root, _ = corpus
    data = _reference_run(corpus)
    reference, killed = root / "fuzzy_reference", root / "fuzzy_killed"
    fuzzy = ["dedup", "fuzzy", str(data), "--threshold", "0.7", "--engine", "beam"]
    _kill_then_finish(fuzzy, reference, killed, root / "fuzzy.log", "fuzzy")
    assert _digests(killed, "clusters_sim0.7/**/*.parquet") == _digests(reference, "clusters_sim0.7/**/*.parquet")
    assert _digests(reference, "clusters_sim0.7/**/*.parquet")
    assert not list(killed.glob("clusters_sim0.7/_work/*"))


def test_filter_killed_anywhere_ends_with_the_same_files(corpus):
    root, _ = corpus
    data = _reference_run(corpus)
    reference, killed = root / "filter_reference", root / "filter_killed"
    recipe = str(REPO_ROOT / "configs" / "recipes" / "gopher.yaml")
    _kill_then_finish(["filter", str(data), "--recipe", recipe], reference, killed, root / "filter.log", "filter")
    # every file, hidden ones included: nothing a kill caught mid-publish is left
    assert _digests(killed, "**/*") == _digests(reference, "**/*")
    assert not list(killed.glob("**/.*.tmp"))
    assert _digests(reference, "documents/**/*.parquet")
