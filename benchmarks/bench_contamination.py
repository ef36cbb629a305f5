"""What the contamination step adds to the signals stage, per document, on distinct real documents.

Documents: ``benchmarks/corpus.py``'s distinct CCNet-format pages composed from the real text in ../shared
(English Wikipedia paragraphs among them, so the wikitext benchmarks below really match some pages).
Benchmarks: wikitext-2's test and valid paragraphs, indexed by ``rpv2 contamination build``'s code (13-grams,
exact); then the same with 10M more n-grams (random 64-bit values: what hashed n-grams look like) to show
a large index, exact and as a 1% Bloom filter.

For each document the signals stage is timed as the run does it (the RPv2 ``Document`` views + all 45
signals, artifacts from the ground truth), then the contamination step on the same ``Document`` (it
reads the shared normalized text: hashing, n-grams, lookups, the columns). CPU time
(``time.process_time``), one process, so the figures are per core.

    python benchmarks/bench_contamination.py --docs 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

SHARED = REPO.parent / "shared"


def _cpu(fn, items) -> float:
    fn(items[0])  # lazy loads and first-use tables outside the timing
    start = time.process_time()
    for item in items:
        fn(item)
    return time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=2000, help="distinct documents (benchmarks/corpus.py)")
    parser.add_argument("--artifacts", type=Path, default=SHARED / "groundtruth" / "rpv2" / "artifacts")
    parser.add_argument("--large", type=int, default=10_000_000, help="n-grams of the large index")
    parser.add_argument("--bloom-fpr", type=float, nargs="*", default=[0.01, 1e-5],
                        help="false-positive rates of the Bloom rows (per n-gram: at 0.01 most pages get a false "
                             "match somewhere)")
    args = parser.parse_args(argv)

    from corpus import iter_documents

    from pipeline.contamination.index import build_index, load_index
    from signals import contamination as core
    from signals.registry import QualitySignals

    records = list(iter_documents(args.docs))
    words = 0
    with tempfile.TemporaryDirectory() as tmp:
        corpora = SHARED / "realdata" / "corpora"
        build_index([("wikitest", str(corpora / "wikitext-2_test.txt")),
                     ("wikivalid", str(corpora / "wikitext-2_valid.txt"))], Path(tmp) / "idx")
        index = load_index(Path(tmp) / "idx")
    small = index.matcher
    sets = [small.table.keys[(small.table.masks >> np.uint64(b)) & np.uint64(1) == 1] for b in range(2)]
    extra = np.random.default_rng(0).integers(0, 2**64, size=args.large, dtype=np.uint64)
    big_set = np.unique(np.concatenate([sets[0], extra]))
    large = core.ContaminationMatcher(13, ["wikitest", "wikivalid"], core.ExactNgramTable([big_set, sets[1]]))
    blooms = []
    for fpr in args.bloom_fpr:
        bits, hashes = core.bloom_parameters(len(big_set), fpr)
        bloom = core.NgramBloomFilter([core.bloom_build(big_set, bits, hashes)], [bits], hashes, 0)
        matcher = core.ContaminationMatcher(13, ["wikivalid"], core.ExactNgramTable([sets[1]]),
                                            {"wikitest": bloom}, order=["wikitest", "wikivalid"])
        blooms.append((f"contamination: same, {len(big_set):,} as a Bloom filter at {fpr:g} "
                       f"({bloom.nbytes / 2**20:.0f} MiB)", matcher))

    langs = sorted({r["language"] for r in records})
    computer = QualitySignals(str(args.artifacts), languages=langs)
    documents = []

    def signals(record: dict) -> None:
        doc = computer.document(record)
        computer.compute_document(doc, record)
        documents.append(doc)

    signals_cpu = _cpu(signals, records)
    documents = documents[1:]  # the warm-up document is in twice
    words = sum(d.num_normalized_words for d in documents)
    rows = [("signals stage (views + 45 signals)", signals_cpu, None)]
    for name, matcher in (
        (f"contamination: 2 benchmarks, {len(small.table.keys):,} n-grams, exact "
         f"({small.table.nbytes / 2**20:.0f} MiB)", small),
        (f"contamination: 2 benchmarks, {len(big_set) + len(sets[1]):,} n-grams, exact "
         f"({large.table.nbytes / 2**20:.0f} MiB)", large),
        *blooms,
    ):
        cpu = _cpu(lambda d, m=matcher: m.annotate_content(d.normalized_content), documents)
        hit = sum(matcher.annotate_content(d.normalized_content)[core.MAX_OVERLAP] > 0 for d in documents)
        rows.append((f"{name}: {hit} docs overlap", cpu, cpu / signals_cpu))
    print(f"{len(records):,} distinct documents (benchmarks/corpus.py), {words / len(documents):.0f} normalized "
          f"words/doc on average; CPU time, one process")
    print(f"{'':96s} {'docs/s':>9s} {'us/doc':>8s} {'vs signals':>10s}")
    for name, cpu, ratio in rows:
        share = f"{100 * ratio:9.1f}%" if ratio is not None else ""
        print(f"{name:96s} {len(records) / cpu:9,.0f} {1e6 * cpu / len(records):8.1f} {share:>10s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
