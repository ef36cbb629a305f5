"""ML (fastText) and DSIR importance signals: docs/s per core and MB/s on the RPv2 ground-truth documents.

    python benchmarks/bench_ml_signals.py [--docs 20000] [--hash-mode rpv2|stable]

Documents: ../shared/groundtruth/rpv2/public/docs.jsonl repeated to --docs, with the ground truth's
artifacts (RPv2-built; rpv2 hash mode is only *value*-correct with PYTHONHASHSEED=42, but the speed is
the same). Documents are built first (their views are shared with the other 36 signals, so their
cost is not counted here). Rates use this process's CPU time, i.e. per core on a shared machine.

Rows: ClassifierScorer.score (3 signals: palm, wikiref, wikipedia models of the doc's language) and
ImportanceScorer.score (6 signals: hash features + 3 log-ratio dot products + Poisson terms).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from signals.classifiers import ClassifierScorer  # noqa: E402
from signals.document import Document  # noqa: E402
from signals.importance import ImportanceScorer  # noqa: E402

SHARED = Path(os.environ.get("RPV2_SHARED", REPO.parent / "shared"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--hash-mode", choices=("rpv2", "stable"), default="rpv2")
    args = parser.parse_args(argv)

    gt = SHARED / "groundtruth" / "rpv2"
    with open(gt / "public" / "docs.jsonl", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    records = (records * (args.docs // len(records) + 1))[: args.docs]
    docs = [Document.from_record(r) for r in records]
    megabytes = sum(len(d.raw_content.encode("utf-8", "surrogatepass")) for d in docs) / 1e6

    classifiers = ClassifierScorer(gt / "artifacts")
    importance = ImportanceScorer(gt / "artifacts", hash_mode=args.hash_mode)
    for lang in ("en", "de", "fr", "es", "it"):  # load models outside the timed loop
        classifiers.models(lang)
        importance.language(lang)

    rows = []
    for name, scorer in (("ml (3 signals)", classifiers), (f"importance/{args.hash_mode} (6)", importance)):
        start = time.process_time()
        for doc in docs:
            scorer.score(doc)
        seconds = time.process_time() - start
        rows.append((name, len(docs) / seconds, megabytes / seconds, seconds / len(docs) * 1e6))
    print(f"{len(docs)} documents, {megabytes:.1f} MB")
    print(f"{'signals':28s} {'docs/s/core':>12s} {'MB/s':>8s} {'us/doc':>8s}")
    for name, dps, mbps, us in rows:
        print(f"{name:28s} {dps:12.0f} {mbps:8.2f} {us:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
