"""A realistic CommonCrawl-like corpus for pipeline tests and benchmarks (test helper).

Pages are made of real sentences (../shared/realdata lingua_sentences) in several languages, with what
CCNet's stages act on: navigation/footer boilerplate repeated across the pages of a file (line dedup
removes it), pages too short to keep, pages that are nothing but boilerplate (empty after dedup), pages
in a language that is not kept, and symbol soup that fastText cannot identify confidently. Generation is
seeded, so the same arguments give the same mirror bytes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conftest import shared_path

from pipeline.sample.mirror import build_mirror, segment_relpath

SNAPSHOT = "CC-MAIN-2023-06"
BOILERPLATE = (
    "Home | News | Sport | Culture | Contact",
    "Copyright 2023 Example Media Group. All rights reserved.",
    "Subscribe to our newsletter",
    "Privacy policy - Terms of use - Cookie settings",
    "Share this article on Facebook, Twitter and LinkedIn",
    "Back to top",
)


def sentences(language: str) -> list[str]:
    path = shared_path("realdata", "groundtruth", "langid", "lingua_sentences", f"{language}.txt")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def make_page(rng: random.Random, pool: Sequence[str], *, index: int, language: str) -> dict[str, Any]:
    """A news-like page: title, 4-9 paragraphs of 1-3 sentences, a few boilerplate lines around them."""
    paragraphs = [" ".join(rng.sample(pool, rng.randint(1, 3))) for _ in range(rng.randint(4, 9))]
    lines = list(rng.sample(BOILERPLATE, 2)) + paragraphs + list(rng.sample(BOILERPLATE, 2))
    return {
        "url": f"https://{language}.news-{index % 7}.example/article/{index}",
        "title": rng.choice(pool)[:80],
        "raw_content": "\n".join(lines),
    }


def make_file_docs(rng: random.Random, pools: dict[str, list[str]], start: int, count: int) -> list[dict[str, Any]]:
    """One WET file's pages; every kind of outcome appears once per 12 pages."""
    docs = []
    languages = ["en", "en", "en", "de", "de", "fr", "fr", "nl"]  # nl is read but not kept
    for offset in range(count):
        i = start + offset
        kind = i % 12
        if kind == 10:  # too short for min_len
            docs.append({"url": f"https://short.example/{i}", "title": "404", "raw_content": "Page not found."})
        elif kind == 11:  # only boilerplate: nothing left after line dedup
            docs.append({
                "url": f"https://empty.example/{i}", "title": "Menu",
                "raw_content": "\n".join(BOILERPLATE + BOILERPLATE[:3]),
            })
        elif kind == 9:  # symbol soup: no language fastText is sure of
            soup = "\n".join(
                " ".join(f"{rng.randint(0, 99999):05d}-{rng.choice('#$%&*+=')}" for _ in range(12)) for _ in range(6)
            )
            docs.append({"url": f"https://soup.example/{i}", "title": "data", "raw_content": soup})
        else:
            language = languages[rng.randrange(len(languages))]
            docs.append(make_page(rng, pools[language], index=i, language=language))
    return docs


def build_corpus_mirror(
    root: str | Path, *, files: int, docs_per_file: int, seed: int = 0, missing: Sequence[int] = ()
) -> list[str]:
    """Write a CC-layout mirror of ``files`` WET files under ``root`` and return the relative paths
    (listing order). Indices in ``missing`` are listed but not written (a 404)."""
    rng = random.Random(seed)
    pools = {language: sentences(language) for language in ("en", "de", "fr", "nl")}
    layout: dict[str, Any] = {}
    for f in range(files):
        rel = segment_relpath(SNAPSHOT, f)
        layout[rel] = None if f in missing else make_file_docs(rng, pools, f * docs_per_file, docs_per_file)
    return build_mirror(root, SNAPSHOT, layout)


def build_corpus_models(
    work: str | Path, mirror_root: str | Path, relpaths: Sequence[str], languages: Sequence[str] = ("en", "de", "fr")
) -> tuple[str, str]:
    """Small SentencePiece + KenLM models built with `rpv2 models build-lm`'s code from the real
    sentences, and p30/p60 cutoffs calibrated on the mirror's own perplexities (as `rpv2 models
    calibrate`), so that head, middle and tail all occur. Returns (models_dir, cutoffs_path)."""
    import pyarrow.dataset as ds

    from pipeline.ccnet.buckets import compute_cutoffs, write_cutoffs
    from pipeline.ccnet.model_store import build_lm
    from pipeline.shard.processor import ShardProcessor, ShardTask, StageSettings

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    models_dir = work / "lm"
    for language in languages:
        corpus = work / f"{language}.txt"
        corpus.write_text("\n".join(sentences(language)) + "\n", encoding="utf-8")
        build_lm(language, [corpus], models_dir, vocab_size=400)
    calibration = work / "calibration"
    settings = StageSettings.create(output=str(calibration), models_dir=str(models_dir), cutoffs={}, signals=False, minhash=False,
                             languages=tuple(languages))
    files = tuple(str(Path(mirror_root) / rel) for rel in relpaths)
    ShardProcessor(settings).process(ShardTask(SNAPSHOT, 0, files))
    table = ds.dataset(calibration / "documents", format="parquet", partitioning="hive").to_table()
    cutoffs = work / "cutoffs.yaml"
    perplexities = table.column("perplexity").to_pylist()
    for language in languages:
        values = [pp for pp, lang in zip(perplexities, table.column("language").to_pylist(), strict=True)
                  if lang == language]
        write_cutoffs(cutoffs, {language: compute_cutoffs(values)})
    return str(models_dir), str(cutoffs)
