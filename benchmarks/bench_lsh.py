"""LSH + connected components on synthetic MinHash signatures with planted near-duplicate clusters.

Prints wall time, peak memory and pairwise recall/precision of the planted clusters for the local
engine (numpy banding + scipy components) and, on a smaller slice, the Beam engine (DirectRunner,
large-star/small-star), whose output must equal the local engine's byte for byte.

Planted clusters: a source signature and 1-9 near copies; every MinHash row of a copy equals the
source's with probability J (the Jaccard similarity MinHash estimates), J uniform in [--min-sim, 1].
Other documents have independent random signatures. Recall = planted same-cluster pairs found in one
cluster; precision = found same-cluster pairs that were planted.

    python benchmarks/bench_lsh.py                     # 1,000,000 docs local, 20,000 on Beam
    python benchmarks/bench_lsh.py --docs 50000 --beam-docs 5000
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dedup.fuzzy_local import cluster_ids_local
from dedup.lsh import band_shape
from pipeline.transforms.fuzzy_dedup import run_beam, run_local


def planted_signatures(n: int, threshold: float, dup_fraction: float, min_sim: float, seed: int,
                       boilerplate: float = 0.0):
    """(id_ints uint64, bands (n, bands, bytes) uint8, planted cluster label per doc)."""
    rng = np.random.default_rng(seed)
    n_bands, width = band_shape(threshold)
    rows = n_bands * width // 4
    sig = rng.integers(0, 2**32, (n, rows), dtype=np.uint32)
    planted = np.arange(n, dtype=np.int64)
    i = 0
    n_dup_target = int(n * dup_fraction)
    placed = 0
    while placed < n_dup_target and i < n - 1:
        copies = int(min(rng.integers(1, 10), n - 1 - i))
        for c in range(1, copies + 1):
            sim = rng.uniform(min_sim, 1.0)
            keep = rng.random(rows) < sim
            sig[i + c, keep] = sig[i, keep]
            planted[i + c] = i
        placed += copies + 1
        i += copies + 1
    if boilerplate:  # one band value shared by many unrelated pages (a template), as on the real web
        shared = rng.random(n) < boilerplate
        sig[shared, : width // 4] = sig[0, : width // 4]
    order = rng.permutation(n)  # clusters spread over the id order
    sig, planted = sig[order], planted[order]
    id_ints = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    bands = sig.astype(">u4").view(np.uint8).reshape(n, n_bands, width)
    return id_ints, bands, planted


def pair_scores(planted: np.ndarray, found: np.ndarray) -> tuple[float, float]:
    """Pairwise recall and precision of ``found`` labels against ``planted`` labels."""

    def pairs(*labels: np.ndarray) -> int:
        _, counts = np.unique(np.stack(labels, axis=1), axis=0, return_counts=True)
        return int(np.sum(counts * (counts - 1) // 2))

    both = pairs(planted, found.astype(np.int64, copy=False) if found.dtype != np.uint64 else found.view(np.int64))
    truth = pairs(planted)
    got = pairs(found.view(np.int64) if found.dtype == np.uint64 else found)
    return (both / truth if truth else 1.0), (both / got if got else 1.0)


def write_documents(root: Path, id_ints: np.ndarray, bands: np.ndarray, threshold: float, per_file: int = 5000):
    import pyarrow as pa
    import pyarrow.parquet as pq

    column = f"signature_sim{threshold}"
    schema = pa.schema([("id", pa.string()), ("id_int", pa.uint64()), ("shard_id", pa.string()),
                        (column, pa.list_(pa.binary()))])
    ids = []
    for f, start in enumerate(range(0, len(id_ints), per_file)):
        shard_id = f"2023-06/{f:04d}/en_head.json.gz"
        stop = min(start + per_file, len(id_ints))
        rows = [{"id": f"{shard_id}/{r}", "id_int": int(id_ints[start + r]), "shard_id": shard_id,
                 column: [bytes(b) for b in bands[start + r]]} for r in range(stop - start)]
        ids += [r["id"] for r in rows]
        out = root / "documents" / "snapshot=2023-06" / "language=en" / "bucket=head"
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema), out / f"{f:04d}.parquet")
    return ids


def read_flags(out: Path, threshold: float, ids: list[str]) -> np.ndarray:
    import pyarrow.parquet as pq

    position = {doc_id: i for i, doc_id in enumerate(ids)}
    cluster = np.zeros(len(ids), dtype=np.uint64)
    for f in sorted((out / f"clusters_sim{threshold}" / "documents").rglob("*.parquet")):
        t = pq.read_table(f, columns=["id", "cluster_id"])
        for doc_id, c in zip(t["id"].to_pylist(), t["cluster_id"].to_pylist(), strict=True):
            cluster[position[doc_id]] = c
    return cluster


def mb(kib: int) -> float:
    return kib / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--beam-docs", type=int, default=20_000, help="0 skips the Beam engine")
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--dup-fraction", type=float, default=0.3, help="share of docs in planted clusters")
    parser.add_argument("--min-sim", type=float, default=0.85, help="lowest Jaccard of a planted copy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--boilerplate", type=float, default=0.0,
                        help="share of docs whose first band is one common value (stress: one giant band group; "
                             "LSH alone then merges them all, so precision drops as in RPv2)")
    parser.add_argument("--beam-workers", type=int, default=1)
    args = parser.parse_args()

    results = []
    t0 = time.perf_counter()
    id_ints, bands, planted = planted_signatures(args.docs, args.threshold, args.dup_fraction, args.min_sim, args.seed,
                                                args.boilerplate)
    gen_s = time.perf_counter() - t0
    print(f"generated {args.docs:,} signatures ({bands.nbytes / 2**20:.0f} MiB of bands) in {gen_s:.1f}s", flush=True)

    tracemalloc.start()
    t0 = time.perf_counter()
    cluster, _ = cluster_ids_local(id_ints, bands, np.arange(args.docs))
    wall = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    recall, precision = pair_scores(planted, cluster)
    results.append(("local (numpy + scipy)", args.docs, wall, peak / 2**20, mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
                    recall, precision))

    if args.beam_docs:
        n = args.beam_docs
        # its own planted set (a slice of the big one would cut clusters)
        sub_ids, sub_bands, sub_planted = planted_signatures(n, args.threshold, args.dup_fraction, args.min_sim,
                                                             args.seed + 1, args.boilerplate)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            ids = write_documents(root / "in", sub_ids, sub_bands, args.threshold)
            t0 = time.perf_counter()
            run_local(str(root / "in"), str(root / "local"), args.threshold)
            local_wall = time.perf_counter() - t0
            beam_args = [f"--direct_num_workers={args.beam_workers}"]
            if args.beam_workers > 1:
                beam_args.append("--direct_running_mode=multi_processing")
            t0 = time.perf_counter()
            counters = run_beam(str(root / "in"), str(root / "beam"), args.threshold, beam_args)
            beam_wall = time.perf_counter() - t0
            found = read_flags(root / "beam", args.threshold, ids)
            recall_b, precision_b = pair_scores(sub_planted, found)
            same = all(
                (root / "local" / p.relative_to(root / "beam")).read_bytes() == p.read_bytes()
                for p in (root / "beam").rglob("*.parquet")
            )
            rss = mb(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                         resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
            results.append(("local engine, Parquet in/out", n, local_wall, float("nan"), rss, recall_b, precision_b))
            results.append((f"beam DirectRunner x{args.beam_workers} ({counters['cc_rounds_run']} rounds)", n,
                            beam_wall, float("nan"), rss, recall_b, precision_b))
            print(f"beam output == local output (bytes): {same}")

    print()
    print(f"{'engine':<40} {'docs':>10} {'wall s':>8} {'docs/s':>10} {'traced MiB':>11} {'peak RSS MiB':>13} "
          f"{'recall':>7} {'precision':>9}")
    for name, n, wall, traced, rss, recall, precision in results:
        print(f"{name:<40} {n:>10,} {wall:>8.2f} {n / wall:>10,.0f} {traced:>11.0f} {rss:>13.0f} {recall:>7.4f} "
              f"{precision:>9.4f}")
    print("\ntraced MiB: tracemalloc peak of the LSH + components step alone (numpy buffers included); "
          "peak RSS: whole process (signature generation included) and Beam worker children.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
