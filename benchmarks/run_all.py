"""Run every rpv2 benchmark in one go and print their tables one after the other.

Each benchmark is its own script (one per stage, each printing rpv2 beside the peers it measures in
the same run); this runner only sequences them, so that a single command gives the whole picture on
a quiet machine. Sizes are the ones the issues ask for; `--quick` shrinks them for a smoke run.

    python benchmarks/run_all.py [--quick] [--only read,signals] [--out results.txt]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (script, full-size arguments, quick arguments)
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "ccnet_stage": ("bench_ccnet_stage.py", [], ["--docs", "2000", "--ccnet-docs", "500", "--repeat", "1",
                                              "--stage-files", "2", "--stage-docs-per-file", "200"]),
    "signals": ("bench_signals.py", [], ["--quick"]),
    "contamination": ("bench_contamination.py", ["--docs", "5000"], ["--docs", "500"]),
    "ml_signals": ("bench_ml_signals.py", ["--docs", "20000"], ["--docs", "2000"]),
    "minhash": ("bench_minhash.py", ["--docs", "20000"], ["--docs", "2000"]),
    "bloom": ("bench_bloom.py", ["--keys", "1000000"], ["--keys", "100000"]),
    "lsh": ("bench_lsh.py", ["--docs", "1000000"], ["--docs", "50000", "--beam-docs", "5000"]),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--only", default="", help="comma-separated subset of: " + ",".join(BENCHMARKS))
    parser.add_argument("--out", type=Path, default=None, help="also write all output to this file")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    chunks: list[str] = []
    failed: list[str] = []
    for name in names:
        script, full, quick = BENCHMARKS[name]
        cmd = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        header = f"\n===== {name}: {' '.join(cmd[1:])}"
        print(header, flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        out = proc.stdout + (f"\n[stderr]\n{proc.stderr[-3000:]}" if proc.returncode else "")
        print(out, flush=True)
        print(f"({name}: {time.perf_counter() - start:.1f}s, exit {proc.returncode})", flush=True)
        chunks.append(header + "\n" + out)
        if proc.returncode:
            failed.append(name)
    if args.out:
        args.out.write_text("\n".join(chunks))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
