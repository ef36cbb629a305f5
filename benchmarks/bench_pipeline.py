"""End-to-end throughput of `rpv2 run`: the whole command, as a user runs it, on a generated CommonCrawl mirror.

The mirror (tests/pipeline_corpus.py) holds distinct news-like pages composed from real sentences in
../shared (en, de, fr, nl), with boilerplate that line dedup removes, short pages, symbol soup and a
language that is not kept. The run has everything on: line dedup, fastText LID, SentencePiece + KenLM
perplexity (small en/de/fr models built from the real sentences with `rpv2 models build-lm`'s code,
cutoffs calibrated on the mirror), buckets, the 45 quality signals with the RPv2 artifacts
(../shared/groundtruth/rpv2/artifacts), MinHash, Parquet.

Default mode: `rpv2 run` as a subprocess, first with one worker pinned to one core (`taskset -c 0`), then
with two workers on two cores (`--direct_num_workers=2 --direct_running_mode=multi_processing`, `taskset
-c 0,1`; the workers forked from rpv2's fork server, or with `--beam-workers` started by Beam), then the
machine's ceiling for two cores (the `2x1` row: two independent one-worker runs at once, one per core, on
half the shards each); all interleaved, `--repeat` times (3). For each row: the median run by wall time,
every run's wall and CPU seconds (the subprocess and its workers), docs read per wall second and per CPU
second. Then the one-worker run's per-stage table and its time split from `_run_summary.json`: seconds
inside the model libraries (fastText LID, SentencePiece, KenLM, fastText classifiers, DSIR) versus rpv2's
own code, in the stages and over the whole command's CPU time (start-up and Beam included)::

    python benchmarks/bench_pipeline.py --files 16 --docs-per-file 1000

`--scale` mode: the same one-worker command at two sizes (default 10,000 and 100,000 documents, the same
documents per shard), per-document CPU cost and peak RSS, to check that the cost grows linearly and memory
stays flat::

    python benchmarks/bench_pipeline.py --scale --scale-docs 10000 100000

On a shared machine the wall times include other processes' load; the CPU seconds do not.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the corpus generator is shared with the integration tests
SNAPSHOT = "2023-06"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=16, help="WET files in the mirror")
    parser.add_argument("--docs-per-file", type=int, default=1000)
    parser.add_argument("--files-per-shard", type=int, default=2)
    parser.add_argument("--models-dir", help="LMs to use (default: built from the corpus sentences)")
    parser.add_argument("--cutoffs", help="cutoffs file for --models-dir")
    parser.add_argument("--artifacts", help="RPv2 artifacts dir (default: ../shared/groundtruth/rpv2/artifacts)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to run")
    parser.add_argument("--scale", action="store_true", help="linearity mode: one worker at --scale-docs sizes")
    parser.add_argument("--scale-docs", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--keep", help="keep the mirrors, models and outputs in this directory")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per worker count, interleaved (1, 2, 1, 2, ...); the median run by wall time is "
                             "reported, with the range: a VM's neighbours make single runs vary by 10-20%%")
    parser.add_argument("--no-ceiling", dest="ceiling", action="store_false",
                        help="leave out the 2x1 row: two independent one-worker runs at once, one per core, on half "
                             "the shards each (what two cores give this work on this machine)")
    parser.add_argument("--beam-workers", action="store_true",
                        help="worker processes started by Beam (RPV2_FORK_WORKERS=0), not forked from rpv2's fork "
                             "server: the figures before pipeline/transforms/worker_pool.py")
    return parser


def default_artifacts() -> str | None:
    from conftest import SHARED

    path = SHARED / "groundtruth" / "rpv2" / "artifacts"
    return str(path) if path.is_dir() else None


def run_command(mirror: Path, output: Path, *, num_shards: int, workers: int, models_dir: str, cutoffs: str,
                artifacts: str | None, beam_workers: bool = False, cores: Sequence[int] | None = None,
                shards: str | None = None) -> dict[str, Any]:
    """`rpv2 run` on ``mirror`` (``shards`` of it: default all) as a subprocess pinned to ``cores`` (default
    the first ``workers``); its wall and CPU seconds (the command and every worker process it started), peak
    RSS, and the run summary it wrote."""
    shutil.rmtree(output, ignore_errors=True)
    command = [
        "taskset", "-c", ",".join(str(core) for core in (cores if cores is not None else range(workers))),
        sys.executable, "-m", "pipeline.cli", "run", "--snapshot", SNAPSHOT, "--base-url", str(mirror),
        "--num-shards", str(num_shards), "--models-dir", models_dir, "--cutoffs", cutoffs, "--output", str(output),
    ]
    if shards is not None:
        command += ["--shards", shards]
    if artifacts:
        command += ["--artifacts", artifacts]
    if workers > 1:
        command += [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    if beam_workers:
        env["RPV2_FORK_WORKERS"] = "0"
    with tempfile.TemporaryFile("w+") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        peaks: dict[int, int] = {}  # pid -> peak RSS (kB) of the command and its worker processes
        while True:
            # this child's own CPU (its workers included once it has waited for them), not every child's
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            peaks.update(peak_rss_kb(process.pid))
            time.sleep(0.2)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            stderr.seek(0)
            raise SystemExit(f"rpv2 run failed ({process.returncode}):\n{stderr.read()[-3000:]}")
    summary = json.loads((output / "_run_summary.json").read_text(encoding="utf-8"))
    cpu = usage.ru_utime + usage.ru_stime
    # not usage.ru_maxrss: a child's counts the bench's own RSS at fork time (the mirror built in memory)
    peak = max(peaks.values(), default=0)
    return {"workers": workers, "wall": wall, "cpu": cpu, "peak_rss_mb": peak / 1024, "summary": summary}


def run_split(mirror: Path, work: Path, *, num_shards: int, models_dir: str, cutoffs: str,
              artifacts: str | None) -> dict[str, Any]:
    """The machine's ceiling for two cores: two independent one-worker `rpv2 run`s at once, each pinned to
    its own core, on the first and the second half of the shards. Nothing is shared and nothing waits on
    the other, so its wall time (the later one's) is what two cores give this work on this machine
    (neighbours on the host, shared caches and memory bandwidth included): the figure 2 workers are held to."""
    half = num_shards // 2
    halves = [f"0-{half - 1}", f"{half}-{num_shards - 1}"]
    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda core: run_command(
            mirror, work / f"out-split-{core}", num_shards=num_shards, workers=1, models_dir=models_dir,
            cutoffs=cutoffs, artifacts=artifacts, cores=[core], shards=halves[core]), [0, 1]))
    wall = time.perf_counter() - started
    read = sum(r["summary"]["documents"]["read"] for r in runs)
    kept = sum(r["summary"]["documents"]["kept"] for r in runs)
    return {"workers": "2x1", "wall": wall, "cpu": sum(r["cpu"] for r in runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "summary": {"documents": {"read": read, "kept": kept}}}


def peak_rss_kb(root: int) -> dict[int, int]:
    """VmHWM (peak resident set, kB) of process ``root`` and its descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    peaks = {}
    for pid in tree:
        try:
            with open(f"/proc/{pid}/status", encoding="utf-8") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peaks[pid] = int(line.split()[1])
        except (OSError, ValueError):
            continue
    return peaks


def prepare(work: Path, files: int, docs_per_file: int, args: argparse.Namespace,
            models: tuple[str, str] | None = None) -> tuple[Path, tuple[str, str]]:
    """The mirror, and the models (built and calibrated on it unless given)."""
    from pipeline_corpus import build_corpus_mirror, build_corpus_models

    mirror = work / f"mirror-{files}x{docs_per_file}"
    relpaths = build_corpus_mirror(mirror, files=files, docs_per_file=docs_per_file)
    if models is None:
        models = (args.models_dir, args.cutoffs) if args.models_dir else build_corpus_models(
            work / "models", mirror, relpaths)
    return mirror, models


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run by wall time (the upper one of an even count), with every run's wall and CPU seconds
    under ``walls`` and ``cpus``."""
    ordered = sorted(runs, key=lambda r: r["wall"])
    return {**ordered[len(ordered) // 2], "walls": [r["wall"] for r in runs], "cpus": [r["cpu"] for r in runs]}


def time_split_lines(result: dict[str, Any], fixed_cpu: float) -> list[str]:
    """The time split of one run: in the stages (the summary's worker-seconds), then over the whole
    command's CPU seconds, where the stages' CPU is the command's minus ``fixed_cpu`` (the same command on
    a 20-document mirror: start-up, imports, model loading, Beam) and the models' CPU is the stages' CPU
    times the models' share of the stages (the stage clocks are wall clocks inside one process, so load
    from other processes stretches models and own code alike)."""
    split = result["summary"].get("time_split") or {}
    if not split:
        return ["(no time_split in the run summary)"]
    stage_total = split["stage_seconds"]
    lines = [f"{'time split, in the stages':<34}{'seconds':>10}{'share':>8}"]
    for name, seconds in split["by_model"].items():
        lines.append(f"  model: {name:<26}{seconds:>10.2f}{seconds / stage_total:>8.0%}")
    lines.append(f"{'  models':<34}{split['model_seconds']:>10.2f}{1 - split['own_code_share']:>8.0%}")
    lines.append(f"{'  own code (rpv2)':<34}{split['own_code_seconds']:>10.2f}{split['own_code_share']:>8.0%}")
    cpu = result["cpu"]
    stage_cpu = max(cpu - fixed_cpu, 0.0)
    model_cpu = stage_cpu * (1 - split["own_code_share"])
    lines += ["", f"{'time split, whole command (CPU)':<34}{'seconds':>10}{'share':>8}",
              f"{'  models':<34}{model_cpu:>10.2f}{model_cpu / cpu:>8.0%}",
              f"{'  own code in the stages':<34}{stage_cpu - model_cpu:>10.2f}{(stage_cpu - model_cpu) / cpu:>8.0%}",
              f"{'  start-up, model loading, Beam':<34}{min(fixed_cpu, cpu):>10.2f}{min(fixed_cpu, cpu) / cpu:>8.0%}"
              "   (the command on a 20-document mirror)"]
    return lines


def stage_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"{'stage':<16}{'seconds':>10}{'docs in':>9}{'docs/s':>10}{'models s':>10}{'share':>8}"]
    for name, stage in result["summary"]["stages"].items():
        lines.append(f"{name:<16}{stage['seconds']:>10.2f}{stage['documents']:>9}{stage['docs_per_second']:>10.0f}"
                     f"{stage.get('model_seconds', 0.0):>10.2f}{stage['share']:>8.0%}")
    return lines


def throughput_runs(args: argparse.Namespace, work: Path) -> tuple[list[dict[str, Any]], str, tuple[str, str]]:
    """`rpv2 run` once per worker count on one mirror; the results, a line describing the runs, and the
    (models dir, cutoffs) used."""
    artifacts = args.artifacts or default_artifacts()
    mirror, (models_dir, cutoffs) = prepare(work, args.files, args.docs_per_file, args)
    num_shards = max(args.files // args.files_per_shard, 1)
    counts: list[int | str] = [*args.workers, *(["2x1"] if args.ceiling and num_shards >= 2 else [])]
    runs: dict[int | str, list[dict[str, Any]]] = {w: [] for w in counts}
    for _ in range(max(args.repeat, 1)):  # interleaved, so that a slow spell of the machine hits every row
        for w in counts:
            runs[w].append(
                run_split(mirror, work, num_shards=num_shards, models_dir=models_dir, cutoffs=cutoffs,
                          artifacts=artifacts) if w == "2x1" else
                run_command(mirror, work / f"out-{w}w", num_shards=num_shards, workers=w, models_dir=models_dir,
                            cutoffs=cutoffs, artifacts=artifacts, beam_workers=args.beam_workers))
    results = [median_run(runs[w]) for w in counts]
    description = (f"rpv2 run, whole command: {args.files} WET files x {args.docs_per_file} docs, {num_shards} "
                   f"shards; artifacts: {artifacts or 'none'}; cores on the machine: {os.cpu_count()}; worker "
                   f"processes: {'started by Beam' if args.beam_workers else 'forked from the fork server'}")
    return results, description, (models_dir, cutoffs)


def fixed_cost(args: argparse.Namespace, work: Path, models: tuple[str, str], workers: int) -> float:
    """CPU seconds of the command on a 20-document mirror with the same models: what every run pays
    whatever its size (Python and Beam start-up, imports, model loading, worker processes)."""
    from pipeline_corpus import build_corpus_mirror

    mirror = work / "mirror-fixed"
    if not mirror.exists():
        build_corpus_mirror(mirror, files=1, docs_per_file=20)
    return run_command(mirror, work / "out-fixed", num_shards=1, workers=workers, models_dir=models[0],
                       cutoffs=models[1], artifacts=args.artifacts or default_artifacts(),
                       beam_workers=args.beam_workers)["cpu"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def measure(args: argparse.Namespace) -> tuple[list[tuple], str]:
    """For benchmarks/bench_ccnet_stage.py: one row per worker count, (run, docs read, kept, wall s, CPU s,
    text bytes), and a line describing the runs."""
    work = Path(tempfile.mkdtemp(prefix="rpv2-bench-"))
    try:
        results, description, _ = throughput_runs(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [(f"rpv2 run ({r['workers']} worker(s))", r["summary"]["documents"]["read"],
             r["summary"]["documents"]["kept"], r["wall"], r["cpu"],
             int(r["summary"]["throughput"]["text_mb_read"] * 1e6)) for r in results]
    return rows, "\n" + description


def _fixed_cell(seconds: float | None) -> str:
    """The fixed-cost cell of a row: measured for a worker count, "-" for the 2x1 row (not measured)."""
    return "-" if seconds is None else f"{seconds:.2f}"


def throughput(args: argparse.Namespace, work: Path) -> list[str]:
    results, description, models = throughput_runs(args, work)
    fixed = {w: fixed_cost(args, work, models, w) for w in args.workers}
    out = [description, ""]
    header = f"{'workers':<9}{'docs read':>10}{'kept':>8}{'wall s':>9}{'CPU s':>9}{'fixed CPU s':>13}{'docs/s':>9}" \
             f"{'docs/CPU-s':>12}{'vs 1':>7}{'peak RSS MB':>13}"
    out += [header, "-" * len(header)]
    base = None
    for r in results:
        docs = r["summary"]["documents"]
        rate = docs["read"] / r["wall"]
        base = base or rate
        out.append(f"{r['workers']:<9}{docs['read']:>10}{docs['kept']:>8}{r['wall']:>9.2f}{r['cpu']:>9.2f}"
                   f"{_fixed_cell(fixed.get(r['workers'])):>13}{rate:>9.1f}{docs['read'] / r['cpu']:>12.1f}{rate / base:>6.2f}x"
                   f"{r['peak_rss_mb']:>13.0f}")
    if any(len(r["walls"]) > 1 for r in results):
        out += ["", f"median of {len(results[0]['walls'])} interleaved runs per row; every run, wall s / CPU s:"]
        out += [f"  {r['workers']} worker(s): " + ", ".join(f"{w:.2f} / {c:.2f}" for w, c in zip(r["walls"], r["cpus"],
                                                                                          strict=True))
                for r in results]
    if any(r["workers"] == "2x1" for r in results):
        out += ["", "2x1: two independent one-worker runs at once, one per core, on half the shards each (wall: the "
                    "later one): what two cores give this work on this machine, the ceiling for 2 workers"]
    out += ["", "fixed CPU s: the same command on a 20-document mirror (start-up, imports, models, workers);",
            "peak RSS: VmHWM of the largest process of the command (the launcher or a worker);",
            "docs/s and 'vs 1' are wall clock: on a machine other jobs share they vary with the load, CPU s do not"]
    out += ["", "one worker: per stage (worker-seconds from _run_summary.json)"] + stage_lines(results[0])
    out += [""] + time_split_lines(results[0], fixed[results[0]["workers"]])
    return out


def scale(args: argparse.Namespace, work: Path) -> list[str]:
    artifacts = args.artifacts or default_artifacts()
    models = None
    rows = []
    for total in sorted(args.scale_docs):
        files = max(total // args.docs_per_file, 1)
        mirror, models = prepare(work, files, args.docs_per_file, args, models)
        r = run_command(mirror, work / f"out-scale-{total}", num_shards=max(files // args.files_per_shard, 1),
                        workers=1, models_dir=models[0], cutoffs=models[1], artifacts=artifacts)
        shutil.rmtree(mirror, ignore_errors=True)
        shutil.rmtree(work / f"out-scale-{total}", ignore_errors=True)
        rows.append(r)
    header = f"{'docs read':>10}{'files':>7}{'shards':>8}{'wall s':>9}{'CPU s':>9}{'CPU ms/doc':>12}{'vs smallest':>13}" \
             f"{'peak RSS MB':>13}"
    out = [f"rpv2 run, one worker (taskset -c 0), {args.files_per_shard} files x {args.docs_per_file} docs per "
           f"shard: cost per document and memory as the run grows", "", header, "-" * len(header)]
    base = None
    for r in rows:
        read = r["summary"]["documents"]["read"]
        per_doc = r["cpu"] / read * 1000
        base = base or per_doc
        out.append(f"{read:>10}{r['summary']['files']['in_shards']:>7}{r['summary']['shards']:>8}{r['wall']:>9.1f}"
                   f"{r['cpu']:>9.1f}{per_doc:>12.3f}{per_doc / base:>12.2f}x{r['peak_rss_mb']:>13.0f}")
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if shutil.which("taskset") is None:
        raise SystemExit("bench_pipeline: error: taskset (util-linux) is needed to pin the workers to cores")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rpv2-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        lines = scale(args, work) if args.scale else throughput(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
