"""`rpv2 contamination build`: the n-gram index of benchmark texts that `rpv2 run --contamination` and
`rpv2 signals --contamination` annotate documents against (pipeline/contamination/index.py).

Eval sets are not bundled: the user gives each as ``--benchmark NAME=FILE`` (JSON lines, Parquet or plain
text, see pipeline/contamination/sources.py). Every problem with the input is one line, exit code 2,
before the index is written.
"""

from __future__ import annotations

import argparse

from pipeline.commands import command_error

HELP = "build the benchmark n-gram index for contamination annotations (contam_* columns)"


def _benchmark(value: str) -> tuple[str, str]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE, got {value!r}")
    return name, path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from signals.contamination import DEFAULT_N

    sub = parser.add_subparsers(dest="contamination_command", metavar="ACTION", required=True)
    build = sub.add_parser(
        "build", help="index benchmark texts as hashed word n-grams",
        description="Index benchmark texts as hashed n-grams of RPv2-normalized words (13 by default, as GPT-3 "
        "and Llama), partitioned by hash prefix into sorted uint64 .npy files (or Bloom filters with "
        "--bloom-fpr) with a manifest.json and SHA256SUMS. Files: JSON lines (.jsonl/.json/.ndjson[.gz]: "
        "--text-field, default every common text field present: text, question, context, passage, ...), "
        "Parquet (.parquet: the same, as columns), or plain text (anything else: one passage per non-empty "
        "line, or per blank-line-separated paragraph with --plain-unit paragraph).",
    )
    build.add_argument("--benchmark", action="append", type=_benchmark, required=True, metavar="NAME=FILE",
                       help="a benchmark's name (lowercase, digits, _) and its file; repeat for several")
    build.add_argument("--out", required=True, help="index directory (new, empty, or an earlier index: replaced)")
    build.add_argument("--n", type=int, default=DEFAULT_N, help=f"n-gram length in words (default {DEFAULT_N})")
    build.add_argument("--bloom-fpr", type=float, default=None,
                       help="store Bloom filters at this false-positive rate instead of exact sets (huge benchmarks)")
    build.add_argument("--text-field", action="append", default=[],
                       help="JSON/Parquet field holding the text; repeat for several (default: autodetect)")
    build.add_argument("--plain-unit", choices=("line", "paragraph"), default="line",
                       help="plain-text passages: one per non-empty line (default) or per paragraph")
    build.add_argument("--partition-bits", type=int, default=None,
                       help="hash-prefix bits that partition the index (default 4: 16 partitions)")
    build.set_defaults(_contamination_main=_build)


def main(args: argparse.Namespace) -> int:
    return int(args._contamination_main(args) or 0)


def _build(args: argparse.Namespace) -> int:
    from pipeline.contamination.index import DEFAULT_PARTITION_BITS, build_index
    from pipeline.contamination.sources import BenchmarkError

    bits = DEFAULT_PARTITION_BITS if args.partition_bits is None else args.partition_bits
    try:
        manifest = build_index(args.benchmark, args.out, n=args.n, bloom_fpr=args.bloom_fpr, partition_bits=bits,
                               text_fields=args.text_field, plain_unit=args.plain_unit)
    except BenchmarkError as exc:
        return command_error("contamination build", exc)
    n = manifest["n"]
    print(f"rpv2 contamination build: {len(manifest['benchmarks'])} benchmark(s), {n}-grams of RPv2-normalized "
          f"words, {1 << manifest['partition_bits']} partitions -> {args.out}")
    for name in manifest["columns_order"]:
        entry = manifest["benchmarks"][name]
        line = (f"  {name}: {entry['passages']:,} passages ({entry['format']}, {', '.join(entry['text_fields'])}; "
                f"{entry['passages_too_short']:,} shorter than {n} words), {entry['ngrams']:,} n-grams, "
                f"{entry['ngrams_unique']:,} distinct, ")
        if entry["storage"] == "bloom":
            bloom = entry["bloom"]
            line += (f"Bloom filter: {bloom['bits'] / 8 / 2**20:.2f} MiB, {bloom['hashes']} hashes, false-positive "
                     f"rate {bloom['fpr']:g} requested, {bloom['expected_fpr']:.3g} expected")
        else:
            line += f"exact, {entry['ngrams_unique'] * 8 / 2**20:.2f} MiB"
        print(line)
    print(f"  use: rpv2 run --contamination {args.out}   (columns contam_<name>_frac, contam_<name>_span, "
          "contam_max_overlap)")
    return 0
