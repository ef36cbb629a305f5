"""Whole-stage throughput of `rpv2 run`: docs/s per core and MB/s on a generated CommonCrawl mirror.

Two measurements on the same mirror (real sentences, boilerplate, short pages, several languages;
tests/pipeline_corpus.py):

- ``shard processor``: :class:`pipeline.shard.processor.ShardProcessor` called directly, one process,
  so docs/s is per core (read, line dedup, LID, perplexity, bucket, [signals, MinHash], Parquet);
- ``beam DirectRunner``: the same work through the Beam pipeline (``run_pipeline``), wall-clock, with
  the workers and running mode given (default: in-process, 1 worker), which adds Beam's overhead.

    python benchmarks/bench_pipeline.py --files 8 --docs-per-file 250 [--models-dir DIR] [--artifacts DIR]

Without ``--models-dir`` small en/de/fr models are built from the corpus sentences with ``rpv2 models
build-lm``'s code (needs lmplz) and cutoffs calibrated on the mirror; ``--no-lm`` measures without LMs
(every document in bucket "all").
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the corpus generator is shared with the integration test


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--docs-per-file", type=int, default=250)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--models-dir")
    parser.add_argument("--cutoffs")
    parser.add_argument("--no-lm", action="store_true", help="no perplexity models (bucket all)")
    parser.add_argument("--artifacts", help="RPv2 artifacts dir for the artifact-based signals")
    parser.add_argument("--no-signals", action="store_true")
    parser.add_argument("--no-minhash", action="store_true")
    parser.add_argument("--direct-num-workers", type=int, default=1)
    parser.add_argument("--direct-running-mode", default="in_memory")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows, header_line = measure(args)
    print(header_line)
    header = f"{'run':<52}{'docs read':>10}{'kept':>8}{'wall s':>9}{'docs/s':>10}{'docs/s/core':>13}{'text MB/s':>11}"
    print(header)
    print("-" * len(header))
    for name, n_read, n_kept, wall, cpu_s, tbytes in rows:
        per_core = n_read / cpu_s if cpu_s else float("nan")
        print(f"{name:<52}{n_read:>10}{n_kept:>8}{wall:>9.2f}{n_read / wall:>10.1f}{per_core:>13.1f}"
              f"{tbytes / 1e6 / wall:>11.3f}")
    return 0


def measure(args: argparse.Namespace) -> tuple[list[tuple], str]:
    """Rows of (run, docs read, kept, wall s, CPU s or None, text bytes) and a line describing the run."""
    from pipeline_corpus import build_corpus_mirror, build_corpus_models

    from pipeline.config import load_config
    from pipeline.io.uris import resolve
    from pipeline.shard.processor import ShardProcessor, ShardTask, StageSettings
    from pipeline.sources.listing import read_listing, shard_paths
    from pipeline.transforms.run import load_stage_cutoffs, run_pipeline

    models_dir, cutoffs = args.models_dir, args.cutoffs
    work = Path(tempfile.mkdtemp(prefix="rpv2-bench-"))
    try:
        mirror = work / "mirror"
        relpaths = build_corpus_mirror(mirror, files=args.files, docs_per_file=args.docs_per_file)
        if models_dir is None and not args.no_lm:
            models_dir, cutoffs = build_corpus_models(work / "models", mirror, relpaths)
        input_bytes = sum(p.stat().st_size for p in mirror.rglob("*.warc.wet.gz"))
        overrides = {
            "snapshot": "2023-06", "base_url": str(mirror), "num_shards": args.shards,
            "models_dir": models_dir, "cutoffs": cutoffs, "artifacts": args.artifacts,
            "minhash": not args.no_minhash, "signals": not args.no_signals,
        }
        rows = []

        # 1) the shard processor alone, one process: docs/s per core
        config = load_config(overrides={**overrides, "output": str(work / "out-direct")})
        settings = StageSettings.from_config(config, load_stage_cutoffs(config.cutoffs))
        setup_started = time.perf_counter()
        processor = ShardProcessor(settings)
        setup_seconds = time.perf_counter() - setup_started
        paths = read_listing(str(mirror), "2023-06")
        started = time.perf_counter()
        cpu_started = time.process_time()
        read = kept = text_bytes = 0
        for shard in range(args.shards):
            files = tuple(resolve(str(mirror), p) for p in shard_paths(paths, args.shards, shard))
            stats = processor.process(ShardTask("CC-MAIN-2023-06", shard, files))
            read += stats.documents_read
            kept += stats.documents_kept
            text_bytes += stats.text_bytes
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        rows.append(("shard processor (1 process)", read, kept, seconds, cpu, text_bytes))

        # 2) the Beam pipeline on the DirectRunner
        config = load_config(overrides={**overrides, "output": str(work / "out-beam")})
        beam_args = [
            f"--direct_num_workers={args.direct_num_workers}",
            f"--direct_running_mode={args.direct_running_mode}",
        ]
        started = time.perf_counter()
        summary = run_pipeline(config, beam_args)
        seconds = time.perf_counter() - started
        rows.append((
            f"beam DirectRunner ({args.direct_running_mode}, {args.direct_num_workers} worker(s))",
            summary["documents"]["read"], summary["documents"]["kept"], seconds, None,
            int(summary["throughput"]["text_mb_read"] * 1e6),
        ))

        stages = "read+dedup+LID+" + ("perplexity+bucket" if models_dir else "no LM (bucket all)")
        if not args.no_signals:
            stages += "+signals" + ("" if args.artifacts else " (no artifacts)")
        stages += "" if args.no_minhash else "+MinHash"
        header_line = (f"\nrpv2 whole-stage benchmark: {args.files} WET files x {args.docs_per_file} docs, "
                       f"{args.shards} shards, {input_bytes / 1e6:.2f} MB gzip input; stages: {stages}; "
                       f"model setup {setup_seconds:.2f}s (not counted); cores: {os.cpu_count()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows, header_line


if __name__ == "__main__":
    sys.exit(main())
