"""`rpv2 dedup exact`: flag documents whose key was seen in a newer (or an earlier-processed) snapshot.

    rpv2 dedup exact OUT_DIR [OUT_DIR ...] [--state DIR] [--output DIR] [--exact-key digest|text-sha1]
                     [--partitions P] [--expected-count N] [--error-rate 0.01] [--engine beam|local]
                     [Beam pipeline options, e.g. --runner=DirectRunner --direct_num_workers=2]

Reads the pipeline's documents dataset (``<dir>/documents/snapshot=*/language=*/bucket=*/*.parquet``),
writes, per source file and in the same layout, ``<output>/duplicates_exact/snapshot=<s>/language=<l>/
bucket=<b>/<shard>.parquet`` (RPv2's duplicates schema: shard_id, doc_id, digest; flagged documents) and
``<output>/is_duplicate_exact/...`` (id, id_int, is_duplicate_exact for every document), plus
``duplicates_exact/_summary.json``; with ``--state`` it keeps the partitioned Bloom filters so a later
run on a new snapshot flags documents already seen before.
"""

from __future__ import annotations

import argparse

from pipeline.commands import beam_epilog, command_error

HELP = "exact dedup across snapshots with partitioned sha1 Bloom filters (RPv2's digest key)"
BEAM_OPTIONS = True  # Beam's own pipeline options pass through (engine beam), as for `rpv2 run`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dedup.exact import DEFAULT_ERROR_RATE, DEFAULT_GROWTH, DEFAULT_PARTITIONS
    from pipeline.transforms.runner import add_runner_profile_argument

    parser.add_argument("inputs", nargs="+", metavar="IN", help="pipeline output dir(s) or documents dir(s)")
    parser.add_argument("--state", default=None, help="state dir (any URI) holding the Bloom partitions")
    parser.add_argument("--output", default=None, help="where duplicates_exact/ goes (default: first IN)")
    parser.add_argument(
        "--exact-key", choices=("digest", "text-sha1"), default="digest",
        help="digest: the CCNet WET digest, as RPv2 (default); text-sha1: sha1 of the final raw_content",
    )
    parser.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS,
                        help=f"number of key partitions for a new state (default {DEFAULT_PARTITIONS})")
    parser.add_argument("--expected-count", type=int, default=None,
                        help=f"distinct keys a new state is sized for (default: {DEFAULT_GROWTH}x this run's "
                        "documents)")
    parser.add_argument("--error-rate", type=float, default=DEFAULT_ERROR_RATE,
                        help=f"Bloom false-positive rate for a new state (default {DEFAULT_ERROR_RATE}, as RPv2)")
    parser.add_argument("--engine", choices=("beam", "local"), default="beam",
                        help="beam: the Beam pipeline (default); local: the same logic in one process")
    parser.add_argument("--allow-seen-snapshots", action="store_true",
                        help="process snapshots the state already holds (their documents will all be flagged)")
    add_runner_profile_argument(parser)
    parser.epilog = beam_epilog("beam")


def _count_rows(files: list[str]) -> int:
    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    total = 0
    for path in files:
        try:
            with FileSystems.open(path) as handle:
                total += pq.ParquetFile(handle).metadata.num_rows
        except Exception:  # noqa: BLE001 - unreadable files are reported by the run itself
            continue
    return total


def _input_snapshots(files: list[str]) -> set[str]:
    import re

    from pipeline.dataset.ids import snapshot_of

    found = set()
    for path in files:
        match = re.search(r"snapshot=([^/]+)", path)
        if match:
            snap = snapshot_of(match.group(1))
            if snap:
                found.add(snap)
    return found


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def print_summary(summary: dict, out: str) -> None:
    """The exact-dedup table (also printed at the end of ``rpv2 run --exact-dedup-state``)."""
    print(f"exact dedup ({summary.get('key_mode')} key, {summary.get('num_partitions')} partitions, "
          f"p={summary.get('error_rate')}):")
    print(f"  {'snapshot':<16}{'documents':>12}{'duplicates':>12}{'dup %':>8}")
    for snap, c in sorted(summary.get("per_snapshot", {}).items(), reverse=True):
        pct = 100.0 * c["duplicates"] / max(c["documents"], 1)
        print(f"  {snap:<16}{c['documents']:>12}{c['duplicates']:>12}{pct:>8.2f}")
    print(f"  {'total':<16}{summary.get('documents', 0):>12}{summary.get('duplicates', 0):>12}")
    bad = {k: v for k, v in summary.get("counters", {}).items() if k.startswith("bad_")}
    if bad:
        print("  bad input (counted, skipped): " + ", ".join(f"{k}={v}" for k, v in sorted(bad.items())))
    if summary.get("partitions_processed"):
        print(f"  memory per partition: max {_size(summary['max_partition_memory_bytes'])} "
              f"({summary['max_partition_keys']} keys, capacity {summary['capacity_per_partition']}); "
              f"bits/key {summary['bits_per_key']} vs optimum {summary['optimal_bits_per_key']}")
    if summary.get("overflowed_partitions"):
        print(f"  WARNING: {summary['overflowed_partitions']} partitions exceeded their capacity "
              "(their false-positive rate is above the configured one); size the state larger")
    print(f"  outputs: {out.rstrip('/')}/duplicates_exact/, {out.rstrip('/')}/is_duplicate_exact/")


def run(args: argparse.Namespace) -> dict:
    """Run exact dedup as the command line describes; returns the summary (also printed)."""
    import logging

    from dedup.exact import DEFAULT_GROWTH, FLAGS_DATASET, ExactDedupState, refuse_seen_snapshots
    from pipeline.dataset.layout import document_files, refuse_output_inside_documents
    from pipeline.progress import watch_outputs
    from pipeline.transforms.exact_dedup import run_exact_dedup_beam
    from pipeline.transforms.runner import command_beam_args

    beam_args = command_beam_args(args)  # --runner-profile's options, then the command line's
    if beam_args and args.engine == "local":
        raise ValueError(f"Beam pipeline options ({' '.join(beam_args)}) apply to --engine beam, not local")
    files = document_files(args.inputs)
    if not files:
        raise FileNotFoundError(f"no documents Parquet files under {', '.join(args.inputs)}")
    out = args.output or args.inputs[0]
    refuse_output_inside_documents(args.inputs, out)  # raises OutputInsideInputError (a ValueError): exit 2
    expected = args.expected_count or DEFAULT_GROWTH * max(_count_rows(files), 1)
    state = ExactDedupState.open_or_create(args.state, args.partitions, expected, args.error_rate, args.exact_key)
    if not args.allow_seen_snapshots:
        refuse_seen_snapshots(state, _input_snapshots(files), "use a fresh --state (or --allow-seen-snapshots)")
    logging.getLogger(__name__).info(
        "exact dedup: %d files, %d partitions x capacity %d, p=%s", len(files), state.num_partitions,
        state.capacity_per_partition, state.error_rate,
    )
    with watch_outputs(out, f"{FLAGS_DATASET}/**/*.parquet", len(files), "files", desc="dedup exact"):
        if args.engine == "local":
            summary = _run_local(files, state, out)
        else:
            summary = run_exact_dedup_beam(files, state, out, beam_args)
    print_summary(summary, out)
    return summary


def _run_local(files: list[str], state, out: str) -> dict:
    """The pure-Python core (dedup/exact.py) in one process, writing the same outputs as Beam."""
    from apache_beam.io.filesystems import FileSystems

    from dedup.exact import (
        merge_counts,
        read_exact_columns,
        run_exact_dedup,
        summarize,
        with_state,
        write_outputs,
        write_summary,
    )

    records, bad_files = [], 0
    for path in files:
        try:
            with FileSystems.open(path) as handle:
                records.extend(read_exact_columns(handle, state.key_mode))
        except Exception as exc:  # noqa: BLE001 - counted, the other files go on
            print(f"exact dedup: cannot read {path}: {exc}")
            bad_files += 1
    flags, stats, counts = run_exact_dedup(records, state)  # commits the state
    per_snapshot = merge_counts(write_outputs(out, flags))
    summary = summarize([{"partition": s["partition"], "stats": s} for s in stats], per_snapshot, state)
    write_summary(with_state(summary, state), out)
    summary["counters"] = {f"bad_record_{k}": v for k, v in counts.bad_reasons.items()}
    if bad_files:
        summary["counters"]["bad_files"] = bad_files
    return summary


def main(args: argparse.Namespace) -> int:
    try:
        run(args)
    except (FileNotFoundError, ValueError) as exc:
        return command_error("dedup exact", exc)
    return 0
