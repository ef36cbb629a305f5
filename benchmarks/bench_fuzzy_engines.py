"""Fuzzy dedup at scale: `rpv2 dedup fuzzy` on the DirectRunner, on Apache Flink and with the local engine,
on the same MinHash signatures of distinct pages composed from real text.

The corpus: N pages, each 5-12 sentences drawn from one language's real sentences (../shared/realdata:
lingua_sentences in 75 languages, wikitext-2, Botchan), so no page repeats; 3% of them are near copies of
another page (one sentence replaced), the clusters fuzzy dedup must find. Their RPv2 MinHash bands
(dedup/minhash.py) are written as a run's documents dataset (id, id_int, shard_id, signature_sim0.8) in 40
files (``--files``: other layouts of the same signatures, e.g. ``1,40``). Each engine then runs as a user runs it (`python -m pipeline.cli dedup fuzzy ...`: start-up, reading
and writing included); the table gives wall time, CPU time (user + system of the command's whole process
tree: on a shared machine the figure to compare), signatures/s per core (per worker process the engine
uses) and per CPU-second, and peak memory summed over the process tree (Flink's JVM and SDK workers
included), sampled every 0.1 s. All engines must give the same cluster files, byte for byte.

Memory per worker against file size: ``--files 1,40 --engines direct`` runs the DirectRunner (one worker
process) on the same signatures in one file and in 40; the Beam engine reads a file in record batches
(``DEFAULT_BATCH_ROWS``), so its peak should not grow when one file holds them all. (The DirectRunner
keeps every shuffled PCollection in that process too, so its peak grows with the input, not the file.)

    python benchmarks/bench_fuzzy_engines.py                   # 200,000 signatures (Flink needs make install)
    python benchmarks/bench_fuzzy_engines.py --docs 20000 --engines local,direct
    python benchmarks/bench_fuzzy_engines.py --data /tmp/fz --engines direct   # keep / reuse the corpus in /tmp/fz
    python benchmarks/bench_fuzzy_engines.py --files 1,40 --engines direct     # one big file vs 40 files
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("RPV2_SHARED", REPO.parent / "shared"))
THRESHOLD = 0.8
FILES = 40


def sentence_pools() -> list[list[str]]:
    """Real sentences grouped by source: one pool per lingua_sentences language, wikitext-2, Botchan."""
    pools = []
    for path in sorted((SHARED / "realdata/groundtruth/langid/lingua_sentences").glob("*.txt")):
        pools.append([s.strip() for s in path.read_text(encoding="utf-8").splitlines() if len(s.split()) >= 4])
    for name in ("wikitext-2_valid.txt", "wikitext-2_test.txt", "botchan_en.txt"):
        text = (SHARED / "realdata/corpora" / name).read_text(encoding="utf-8")
        pools.append([s.strip() for s in text.splitlines() if len(s.split()) >= 6 and not s.startswith(" =")])
    return [p for p in pools if len(p) >= 50]


def compose_pages(n: int, seed: int) -> tuple[list[str], int]:
    """n distinct pages and the number of planted near copies among them."""
    rng = random.Random(seed)
    pools = sentence_pools()
    pages: list[str] = []
    copies = 0
    while len(pages) < n:
        if pages and rng.random() < 0.03:
            lines = rng.choice(pages[-5000:]).split("\n")
            lines[rng.randrange(len(lines))] = rng.choice(rng.choice(pools))
            pages.append("\n".join(lines))
            copies += 1
            continue
        pool = rng.choice(pools)
        pages.append("\n".join(rng.sample(pool, rng.randint(5, 12))))
    return pages, copies


def signatures(pages: list[str]) -> list[list[bytes] | None]:
    """The pages' RPv2 MinHash bands at THRESHOLD (None for a page too short for a signature)."""
    from dedup.minhash import RPv2MinHash, signature_column
    from signals.document import Document

    minhash = RPv2MinHash(thresholds=(THRESHOLD,))
    column = signature_column(THRESHOLD)
    return [minhash.banded_signatures(Document(text).normalized_words)[column] for text in pages]


def write_dataset(bands_of: list[list[bytes] | None], root: Path, files: int = FILES) -> int:
    """The signatures as a run's documents dataset in ``files`` files; returns how many are not None."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dedup.minhash import signature_column
    from pipeline.dataset.ids import document_id, document_id_int, shard_file_id
    from pipeline.dataset.layout import shard_file_path

    column = signature_column(THRESHOLD)
    per_file = -(-len(bands_of) // files)
    signed = 0
    for shard in range(files):
        rows = []
        for row, bands in enumerate(bands_of[shard * per_file:(shard + 1) * per_file]):
            signed += bands is not None
            doc_id = document_id("2023-06", shard, "xx", "all", row)
            rows.append({"id": doc_id, "id_int": document_id_int(doc_id),
                         "shard_id": shard_file_id("2023-06", shard, "xx", "all"), column: bands})
        path = Path(shard_file_path(str(root), "2023-06", "xx", "all", shard))
        path.parent.mkdir(parents=True, exist_ok=True)
        schema = pa.schema([("id", pa.string()), ("id_int", pa.uint64()), ("shard_id", pa.string()),
                            (column, pa.list_(pa.binary()))])
        pq.write_table(pa.Table.from_pylist(rows, schema), path, compression="zstd")
    return signed


def _tree(pid: int) -> dict[int, tuple[int, float]]:
    """{pid: (resident bytes, user + system CPU seconds so far)} of ``pid`` and all its descendants,
    from /proc."""
    children: dict[int, list[int]] = {}
    usage: dict[int, tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        usage[int(entry)] = (rss, (int(fields[11]) + int(fields[12])) / tick)  # utime, stime
    tree, todo = {}, [pid]
    while todo:
        current = todo.pop()
        if current in usage:
            tree[current] = usage[current]
        todo += children.get(current, [])
    return tree


def run_engine(args: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds, peak tree RSS bytes, output) of one command as a user runs it.

    CPU is user + system time of the command's process tree: the larger of getrusage over the children
    it waited for and the sum of every descendant's last sampled time (Flink's JVM and SDK workers are
    not always waited for), so a machine shared with other work distorts it far less than the wall."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    cpu_seen: dict[int, float] = {}
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.append(proc.stdout.read()), daemon=True)
    reader.start()
    while proc.poll() is None:
        tree = _tree(proc.pid)
        peak = max(peak, sum(rss for rss, _ in tree.values()))
        for p, (_, cpu) in tree.items():
            cpu_seen[p] = max(cpu_seen.get(p, 0.0), cpu)
        time.sleep(0.1)
    reader.join()
    out = "".join(output)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    waited = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{out[-3000:]}")
    return wall, max(waited, sum(cpu_seen.values())), peak, out


def cluster_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.glob(f"clusters_sim{THRESHOLD}/**/*.parquet")):
        digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def flink_flags() -> list[str]:
    from pipeline.config import beam_options_to_args, expand_profile, read_yaml, runner_profile_path

    profile = expand_profile(read_yaml(runner_profile_path("flink-local")), "flink-local")  # ${RPV2_CACHE}
    return beam_options_to_args(profile.get("beam", {}))


def corpus(work: Path, docs: int, seed: int) -> list[list[bytes] | None]:
    """The corpus' signatures, kept in ``work/signatures.parquet`` (reused by ``--data``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cache = work / "signatures.parquet"
    if cache.exists():
        print(f"corpus from {work}: {(work / 'corpus.txt').read_text().strip()}")
        return pq.read_table(cache).column("bands").to_pylist()
    t0 = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    pages, copies = compose_pages(docs, seed)
    bands = signatures(pages)
    pq.write_table(pa.table({"bands": pa.array(bands, pa.list_(pa.binary()))}), cache)
    signed = sum(b is not None for b in bands)
    (work / "corpus.txt").write_text(f"{signed} signatures, {len(pages)} pages, {copies} near copies\n")
    print(f"{len(pages):,} distinct pages of real text ({copies:,} planted near copies), {signed:,} "
          f"signatures, built in {time.monotonic() - t0:.0f} s; data in {work}")
    return bands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--engines", default="local,direct,direct2,flink")
    parser.add_argument("--files", default=str(FILES),
                        help=f"comma-separated file counts to lay the same signatures out in (default {FILES})")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the data and outputs (default: removed)")
    parser.add_argument("--data", metavar="DIR",
                        help="work dir: reuse the corpus an earlier run kept there (else build it there); kept")
    args = parser.parse_args()
    work = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="rpv2-bench-fuzzy-"))
    bands = corpus(work, args.docs, args.seed)
    engines = {
        "local": (["--engine", "local"], 1),
        "direct": (["--engine", "beam", "--runner=DirectRunner"], 1),
        "direct2": (["--engine", "beam", "--runner=DirectRunner", "--direct_running_mode=multi_processing",
                     "--direct_num_workers=2"], 2),
        "flink": (["--engine", "beam", *flink_flags()], 2),
    }
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    print(f"{'engine':<10}{'files':>6}{'wall s':>9}{'CPU s':>9}{'sigs/s/core':>13}{'sigs/CPU-s':>12}"
          f"{'peak MiB':>10}  clusters (digest)")
    for files in [int(f) for f in args.files.split(",")]:
        data = work / f"data_{files}"
        if not data.exists():
            write_dataset(bands, data, files)
        signed = sum(b is not None for b in bands)
        digests = set()
        for name in args.engines.split(","):
            flags, cores = engines[name]
            out = work / f"out_{name}_{files}"
            wall, cpu, peak, _ = run_engine(["dedup", "fuzzy", str(data), "--threshold", str(THRESHOLD),
                                             "--output", str(out), *flags], env)
            digests.add(cluster_digest(out))
            print(f"{name:<10}{files:>6}{wall:>9.1f}{cpu:>9.1f}{signed / wall / cores:>13,.0f}"
                  f"{signed / cpu:>12,.0f}{peak / 2**20:>10,.0f}  {cluster_digest(out)}", flush=True)
        print(f"{files} files: " + ("identical clusters on every engine" if len(digests) == 1
                                    else f"CLUSTERS DIFFER: {digests}"))
    if not args.keep and not args.data:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
