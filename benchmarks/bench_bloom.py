"""Bloom-filter exact dedup: inserts+queries per second per core, memory (bits per key vs the optimum),
and the measured false-positive rate.

    python benchmarks/bench_bloom.py [--keys 200000] [--queries 200000] [--error-rate 0.01] [--partitions 16]

Keys look like RPv2's digests (base32 sha1). Rows:
- one BloomPartition (pybloom-live underneath) filled to capacity: ``add`` (insert + "seen?") and
  ``in`` (query) rates, bits per key against -ln(p)/ln(2)^2 (9.59 at 1%), measured FP rate;
- the partitioned path (dedup.exact.run_exact_dedup: key, route by sha1 prefix, sort in RPv2 order,
  flag) over P partitions, in docs/s, with the largest partition's memory.

Rates use CPU time of this process (the machine is shared), i.e. per core.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dedup.bloom import BloomPartition, optimal_bits_per_key  # noqa: E402
from dedup.exact import ExactDedupState, run_exact_dedup  # noqa: E402


def digests(prefix: str, n: int) -> list[str]:
    return [base64.b32encode(hashlib.sha1(f"{prefix}{i}".encode()).digest()).decode() for i in range(n)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=200_000)
    parser.add_argument("--error-rate", type=float, default=0.01)
    parser.add_argument("--partitions", type=int, default=16)
    args = parser.parse_args(argv)
    p = args.error_rate

    members, others = digests("m", args.keys), digests("o", args.queries)
    bloom = BloomPartition(capacity=args.keys, error_rate=p)
    start = time.process_time()
    for key in members:
        bloom.add(key)
    insert_s = time.process_time() - start
    start = time.process_time()
    false_positives = sum(key in bloom for key in others)
    query_s = time.process_time() - start
    missing = sum(key not in bloom for key in members[:10_000])
    stats = bloom.stats()

    print(f"Bloom filter (pybloom-live), p={p}, {args.keys} keys, {args.queries} non-member queries, one core")
    print(f"{'measure':<44}{'value':>14}")
    print(f"{'inserts/s (add: insert + seen?)':<44}{args.keys / insert_s:>14,.0f}")
    print(f"{'queries/s (in)':<44}{args.queries / query_s:>14,.0f}")
    print(f"{'inserts+queries/s':<44}{(args.keys + args.queries) / (insert_s + query_s):>14,.0f}")
    print(f"{'bits per key (sized capacity)':<44}{stats['bits_per_key']:>14.3f}")
    print(f"{'optimum -ln(p)/ln(2)^2':<44}{optimal_bits_per_key(p):>14.3f}")
    print(f"{'overhead vs optimum':<44}{stats['bits_per_key'] / optimal_bits_per_key(p) - 1:>14.2%}")
    print(f"{'memory (MiB)':<44}{stats['memory_bytes'] / 2**20:>14.3f}")
    print(f"{'measured false-positive rate':<44}{false_positives / args.queries:>14.4%}")
    print(f"{'false negatives (of 10,000 members)':<44}{missing:>14}")

    # the partitioned path, as rpv2 dedup exact --engine local runs it (half the keys seen twice)
    records = [
        {"id": f"2023-06/{i % 100:04d}/en_head.json.gz/{i // 100}", "id_int": i, "digest": "sha1:" + key}
        for i, key in enumerate(members + members[: args.keys // 2])
    ]
    state = ExactDedupState.create(None, args.partitions, expected_count=args.keys, error_rate=p)
    start = time.process_time()
    flags, part_stats, counts = run_exact_dedup(records, state)
    dedup_s = time.process_time() - start
    print(f"{'partitioned dedup docs/s (' + str(args.partitions) + ' partitions)':<44}{len(records) / dedup_s:>14,.0f}")
    print(f"{'  duplicates flagged / expected':<44}{counts.duplicates:>8} / {args.keys // 2}")
    largest = max(part_stats, key=lambda s: s["memory_bytes"])
    print(f"{'  largest partition memory (MiB)':<44}{largest['memory_bytes'] / 2**20:>14.3f}")
    print(f"{'  largest partition keys / capacity':<44}{largest['keys']:>8} / {largest['capacity']}")

    # across runs through a persisted state: run 1 holds half the keys, run 2 all of them plus as many new
    with tempfile.TemporaryDirectory() as state_dir:
        half = args.keys // 2

        def run(keys, snapshot):
            recs = [
                {"id": f"{snapshot}/{i % 100:04d}/en_head.json.gz/{i // 100}", "id_int": i, "digest": "sha1:" + k}
                for i, k in enumerate(keys)
            ]
            st = ExactDedupState.open_or_create(state_dir, args.partitions, 2 * args.keys, p, "digest")
            begin = time.process_time()
            out = run_exact_dedup(recs, st)
            return out, time.process_time() - begin, len(recs)

        run(members[:half], "2023-06")
        (flags2, _, counts2), seconds, n = run(members + others[: args.keys], "2023-14")
        new_keys = set(others[: args.keys])
        false_pos = sum(flag for doc, flag in flags2 if doc.key in new_keys)
        print(f"{'cross-run dedup docs/s (state on disk)':<44}{n / seconds:>14,.0f}")
        print(f"{'  flagged / seen in run 1':<44}{counts2.duplicates:>8} / {half}")
        print(f"{'  cross-run false-positive rate':<44}{false_pos / args.keys:>14.4%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
