"""Throughput of the 45 RedPajama-V2 quality signals, beside datatrove's Gopher and C4 filters.

Runs in one process (so docs/s is per core) over the ground truth's 262 public documents, repeated
to ``--docs`` documents (default 20,000), and prints one table:

* rpv2 document views only (normalization, lines, words: what every signal shares);
* rpv2 rule-based + ccnet signals (36);
* rpv2 all 45 signals (+ the fastText classifiers and DSIR importance weights of signals/), with the
  DSIR grams hashed as RPv2 did (emulated seed-42 ``hash()``) and with the stable hash;
* rpv2 all 45 signals + RPv2 MinHash (dedup.minhash), when that module is present;
* datatrove GopherQualityFilter, GopherRepetitionFilter, C4QualityFilter (and the three together),
  calling ``filter(doc)`` on the same texts (datatrove tokenizes with spaCy: ``pip install spacy``);
* the RPv2 reference implementation's figure on this kind of machine (about 180 docs/s per core,
  0.4 MB/s), quoted, not measured.

CPU time (``time.process_time``) is used for the rates, so other processes on a shared machine
inflate them less than wall time would; wall time is printed too. ``--profile`` prints where the
time of the 45 signals goes (cProfile, top functions by own time).

    python benchmarks/bench_signals.py --docs 2000          # quick
    python benchmarks/bench_signals.py                      # the full table (any PYTHONHASHSEED)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_GROUNDTRUTH = REPO.parent / "shared" / "groundtruth" / "rpv2"
RPV2_REFERENCE = ("RPv2 reference (quoted)", 180.0, 0.4)


def load_records(groundtruth: Path, num_docs: int) -> list[dict]:
    with open(groundtruth / "public" / "docs.jsonl", encoding="utf-8") as f:
        base = [json.loads(line) for line in f]
    return [base[i % len(base)] for i in range(num_docs)]


def measure(name: str, fn: Callable[[dict], object], records: list[dict], mb: float) -> tuple:
    fn(records[0])  # warm caches and lazy loads outside the timing
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for record in records:
        fn(record)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return name, len(records), cpu, wall, len(records) / cpu, mb / cpu


def rpv2_rows(records: list[dict], artifacts: Path, mb: float, with_minhash: bool) -> list[tuple]:
    from signals.registry import QualitySignals

    langs = sorted({r["language"] for r in records})
    rule = QualitySignals(artifacts, languages=langs, with_models=False)
    full = QualitySignals(artifacts, languages=langs, hash_mode="rpv2")
    # the same counts read with the stable gram hash: the values mean nothing, the cost is the stable mode's
    stable = QualitySignals(artifacts, languages=langs, hash_mode="stable")
    rows = [
        measure("rpv2 document views", lambda r: _views(rule, r), records, mb),
        measure("rpv2 36 rule-based + ccnet signals", rule.compute, records, mb),
        measure("rpv2 all 45 signals (rpv2 hash)", full.compute, records, mb),
        measure("rpv2 all 45 signals (stable hash)", stable.compute, records, mb),
    ]
    if with_minhash:
        try:
            from dedup.minhash import RPv2MinHash
        except ImportError:
            print("dedup.minhash not available: MinHash row left out")
        else:
            minhash = RPv2MinHash()

            def both(record: dict) -> None:
                doc = full.document(record)
                full.compute_document(doc, record)
                minhash.banded_signatures(doc.normalized_words)

            rows.append(measure("rpv2 all 45 signals + MinHash (rpv2 hash)", both, records, mb))
    return rows


def _views(computer, record: dict) -> None:
    doc = computer.document(record)
    doc.normalized_line_texts  # noqa: B018 - force the lazy line views
    doc.line_starts  # noqa: B018


def datatrove_rows(records: list[dict], mb: float) -> list[tuple]:
    try:
        from datatrove.data import Document as DtDocument
        from datatrove.pipeline.filters import C4QualityFilter, GopherQualityFilter, GopherRepetitionFilter
    except ImportError as exc:
        print(f"datatrove not available ({exc}): its rows are left out (pip install datatrove spacy)")
        return []
    filters = {
        "datatrove GopherQualityFilter": GopherQualityFilter(),
        "datatrove GopherRepetitionFilter": GopherRepetitionFilter(),
        "datatrove C4QualityFilter": C4QualityFilter(),
    }
    rows = []
    for name, flt in filters.items():
        rows.append(measure(name, lambda r, f=flt: f.filter(DtDocument(text=r["raw_content"], id="x")), records, mb))

    def all_three(record: dict) -> None:
        for flt in filters.values():
            flt.filter(DtDocument(text=record["raw_content"], id="x"))

    rows.append(measure("datatrove Gopher x2 + C4 together", all_three, records, mb))
    return rows


def profile_signals(records: list[dict], artifacts: Path, top: int) -> str:
    from signals.registry import QualitySignals

    computer = QualitySignals(artifacts, languages=sorted({r["language"] for r in records}))
    computer.compute(records[0])
    profiler = cProfile.Profile()
    profiler.enable()
    for record in records:
        computer.compute(record)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def print_table(rows: list[tuple]) -> None:
    print(f"{'step':44s} {'docs':>7s} {'cpu s':>8s} {'wall s':>8s} {'docs/s/core':>12s} {'MB/s':>7s}")
    for name, docs, cpu, wall, rate, mbs in rows:
        print(f"{name:44s} {docs:7d} {cpu:8.2f} {wall:8.2f} {rate:12.0f} {mbs:7.2f}")
    name, rate, mbs = RPV2_REFERENCE
    print(f"{name:44s} {'':7s} {'':8s} {'':8s} {rate:12.0f} {mbs:7.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=20000, help="documents to process (ground truth repeated)")
    parser.add_argument("--groundtruth", type=Path, default=DEFAULT_GROUNDTRUTH)
    parser.add_argument("--no-datatrove", action="store_true", help="leave out the datatrove rows")
    parser.add_argument("--no-minhash", action="store_true", help="leave out the signals + MinHash row")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the 45 signals")
    parser.add_argument("--profile-top", type=int, default=25)
    args = parser.parse_args(argv)

    records = load_records(args.groundtruth, args.docs)
    mb = sum(len(r["raw_content"].encode("utf-8", "surrogatepass")) for r in records) / 1e6
    artifacts = args.groundtruth / "artifacts"
    print(f"{len(records)} documents, {mb:.1f} MB of text, one process (python {sys.version.split()[0]})")
    rows = rpv2_rows(records, artifacts, mb, with_minhash=not args.no_minhash)
    if not args.no_datatrove:
        rows += datatrove_rows(records, mb)
    print_table(rows)
    if args.profile:
        print(profile_signals(records, artifacts, args.profile_top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
