"""CCNet stage benchmark: line dedup, language ID and perplexity, docs/s per core and MB/s.

Documents are built from real sentences (English Wikipedia from realdata/corpora/wikitext-2_test.txt,
plus German/French/Spanish/Italian from realdata/groundtruth/langid/lingua_sentences), 1-3 random
sentences per line so that lines rarely repeat by chance, with page sizes like CommonCrawl's WET
(median ~3 KB) and ~15% boilerplate lines repeated across pages, for line dedup to remove. Each step runs alone, single-threaded:

- ``line dedup``: pass 1 (hash every line into ShardLineHashes) + pass 2 (dedup_document);
- ``LID``: fastText lid.176 (the bundled lid.176.ftz, or --lid-model) on the deduplicated text;
- ``perplexity``: SentencePiece + KenLM on the deduplicated English documents. By default with an
  English model built here by ``rpv2 models build-lm`` from wikitext-2_valid (vocab 8000, 5-gram,
  ~10 MB); ``--models DIR`` uses e.g. the published CCNet models from ``rpv2 models download``
  (multi-GB: slower per token, memory-bound lookups).

docs/s and MB/s (UTF-8 MB of the step's input text) are per core, from process CPU time, so other
load on a shared machine does not skew them. Usage::

    python benchmarks/bench_ccnet.py [--docs 5000] [--repeat 3] [--models DIR] [--lid-model PATH]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.ccnet.language_id import LanguageIdentifier  # noqa: E402
from pipeline.ccnet.line_dedup import ShardLineHashes, dedup_document  # noqa: E402
from pipeline.ccnet.perplexity import LanguageModels  # noqa: E402

SHARED = Path(os.environ.get("RPV2_SHARED", ROOT.parent / "shared"))
BOILERPLATE = [
    "Home | News | Sport | Weather | Contact",
    "Share this article on Facebook Twitter Email",
    "Cookies help us deliver our services. By using our services, you agree to our use of cookies.",
    "All rights reserved. Copyright 2023",
    "Skip to main content",
    "Subscribe to our newsletter",
]


def _sentences(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [s.strip() + "." for line in text.splitlines() for s in line.split(". ") if len(s.strip()) > 20]


def make_docs(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    corpora = {"en": _sentences(SHARED / "realdata" / "corpora" / "wikitext-2_test.txt")}
    for lang in ("de", "fr", "es", "it"):
        corpora[lang] = _sentences(SHARED / "realdata" / "groundtruth" / "langid" / "lingua_sentences" / f"{lang}.txt")
    langs = ["en"] * 6 + ["de", "fr", "es", "it"]
    docs = []
    for i in range(n):
        lines = corpora[rng.choice(langs)]
        target = int(rng.lognormvariate(8.0, 0.8))
        body, size = [], 0
        while size < target:
            # a line is 1-3 random sentences of the language: real text, but (almost) never repeated
            line = (
                rng.choice(BOILERPLATE)
                if rng.random() < 0.15
                else " ".join(rng.choice(lines) for _ in range(rng.randint(1, 3)))
            )
            body.append(line)
            size += len(line) + 1
        docs.append({"url": f"https://example.com/{i}", "title": "t", "raw_content": "\n".join(body)})
    return docs


def mb(texts) -> float:
    return sum(len(t.encode("utf-8")) for t in texts) / 1e6


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def build_default_models(work: Path) -> Path:
    from pipeline.ccnet.model_store import build_lm

    out = work / "models"
    build_lm("en", [SHARED / "realdata" / "corpora" / "wikitext-2_valid.txt"], out, vocab_size=8000)
    return out


def measure(
    n_docs: int = 5000, repeat: int = 3, models: Path | None = None, lid_model: Path | None = None
) -> tuple[list[tuple[str, int, float, float]], float]:
    """(rows of (step, docs, best CPU-free wall seconds, MB of text), fraction of lines dedup removed)."""
    from types import SimpleNamespace

    args = SimpleNamespace(docs=n_docs, repeat=repeat, models=models, lid_model=lid_model)
    docs = make_docs(args.docs)
    rows: list[tuple[str, int, float, float]] = []

    def dedup_all():
        hashes = ShardLineHashes()
        for d in docs:
            hashes.add(d["raw_content"])
        dups = hashes.duplicates()
        return [dedup_document(d, dups) for d in docs]

    deduped = [d for d in dedup_all() if d["nlines"]]
    t = timed(dedup_all, args.repeat)
    rows.append(("line dedup (2 passes)", len(docs), t, mb(d["raw_content"] for d in docs)))
    removed = 1 - sum(d["nlines"] for d in deduped) / sum(d["raw_content"].count("\n") + 1 for d in docs)

    lid = LanguageIdentifier(args.lid_model)
    lid.predict("warm up")
    texts = [d["raw_content"] for d in deduped]
    t = timed(lambda: [lid.predict(x) for x in texts], args.repeat)
    rows.append((f"LID ({lid.model_path.name})", len(texts), t, mb(texts)))

    with tempfile.TemporaryDirectory(prefix="rpv2-bench-ccnet-") as tmp:
        models_dir = args.models or build_default_models(Path(tmp))
        scorer = LanguageModels(models_dir).get("en")
        if scorer is None:
            raise SystemExit(f"no en model in {models_dir}")
        english = [x for x in texts if lid.predict(x)[0] == "en"]
        scorer.perplexity("warm up")
        t = timed(lambda: [scorer.perplexity(x) for x in english], args.repeat)
        size = sum(f.stat().st_size for f in Path(models_dir).glob("en.*")) / 1e6
        rows.append((f"perplexity (en, {size:.0f} MB model)", len(english), t, mb(english)))
    return rows, removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", type=Path, default=None, help="dir with en.sp.model + en.arpa.bin")
    parser.add_argument("--lid-model", type=Path, default=None)
    args = parser.parse_args(argv)
    rows, removed = measure(args.docs, args.repeat, args.models, args.lid_model)
    print(f"CCNet stage, single core, {args.docs} docs (best of {args.repeat}); line dedup removed {removed:.1%} of lines")
    print(f"{'step':<34} {'docs':>7} {'docs/s/core':>12} {'MB/s/core':>10}")
    for name, n, seconds, megabytes in rows:
        print(f"{name:<34} {n:>7} {n / seconds:>12,.0f} {megabytes / seconds:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
