"""Issue 2's benchmark in one table: reading (rpv2's reader vs warcio vs fastwarc, and WARC + HTML
extraction), CCNet line dedup, fastText LID, SentencePiece + KenLM perplexity, and the whole stage
(shard processor alone, then through Beam's DirectRunner).

docs/s per core and MB/s per core are per CPU second of this one process (so they stay meaningful on a
shared machine); the whole-stage Beam row is wall clock. Each step's own script has more options:
bench_read.py, bench_ccnet.py, bench_pipeline.py.

    python benchmarks/bench_ccnet_stage.py [--docs 20000] [--stage-files 8 --stage-docs-per-file 250]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import bench_ccnet  # noqa: E402
import bench_pipeline  # noqa: E402
import bench_read  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=20000, help="documents for the reading rows")
    parser.add_argument("--ccnet-docs", type=int, default=5000, help="documents for dedup / LID / perplexity")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stage-files", type=int, default=8)
    parser.add_argument("--stage-docs-per-file", type=int, default=250)
    args = parser.parse_args(argv)

    rows: list[tuple[str, float, float]] = []  # step, docs/s/core, MB/s/core
    for r in bench_read.bench(args.docs, args.repeat) + [bench_read.bench_warc(repeat=args.repeat)]:
        rows.append((r["step"], r["docs_per_s"], r["mb_per_s"]))
    ccnet_rows, removed = bench_ccnet.measure(args.ccnet_docs, args.repeat)
    for name, n, seconds, megabytes in ccnet_rows:
        rows.append((name, n / seconds, megabytes / seconds))
    stage_args = bench_pipeline.parse_args(
        ["--files", str(args.stage_files), "--docs-per-file", str(args.stage_docs_per_file)]
    )
    stage_rows, description = bench_pipeline.measure(stage_args)
    for name, n_read, _kept, wall, cpu_s, text_bytes in stage_rows:
        seconds = cpu_s or wall
        suffix = "" if cpu_s else " [wall clock, 2 cores]"
        rows.append((f"whole stage: {name}{suffix}", n_read / seconds, text_bytes / 1e6 / seconds))

    print(f"rpv2 CCNet stage benchmark (line dedup removed {removed:.1%} of lines){description}")
    header = f"{'step':<62}{'docs/s/core':>13}{'MB/s/core':>11}"
    print(header)
    print("-" * len(header))
    for name, docs_per_s, mb_per_s in rows:
        print(f"{name:<62}{docs_per_s:>13,.0f}{mb_per_s:>11.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
