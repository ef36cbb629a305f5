"""The per-shard core without Beam: two-pass line dedup, CCNet stage order, accounting, Parquet rows."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pipeline_corpus import BOILERPLATE, SNAPSHOT, build_corpus_mirror

from pipeline.dataset.files import read_documents_file
from pipeline.dataset.ids import document_id_int
from pipeline.io.uris import resolve
from pipeline.shard.processor import ShardProcessor, ShardTask, StageSettings
from pipeline.shard.spool import DocumentSpool
from pipeline.shard.stats import AccountingError, ShardStats, build_summary, format_table, merge_stats
from pipeline.sources.listing import read_listing, shard_paths

# -- run summary arithmetic ------------------------------------------------------------------------


def _stats(read, kept, dropped, lang="en/head"):
    stats = ShardStats(shards=1, files=1, documents_read=read, documents_kept=kept, dropped=dict(dropped))
    stats.kept_by_language_bucket = {lang: kept} if kept else {}
    return stats


def test_accounting_identity_is_asserted():
    _stats(10, 7, {"too_short": 3}).check_accounting()
    with pytest.raises(AccountingError, match="read"):
        _stats(10, 7, {"too_short": 2}).check_accounting()


def test_merge_is_order_independent_and_sums_everything():
    a = _stats(10, 7, {"too_short": 3})
    a.add_failure({"file": "b.wet.gz", "offset": 5, "reason": "corrupt_gzip", "message": "x"})
    b = _stats(4, 1, {"too_short": 1, "language_not_kept": 2}, lang="de/tail")
    b.add_failure({"file": "a.wet.gz", "offset": 0, "reason": "file_not_found", "message": "404"})
    ab, ba = merge_stats([a, b]), merge_stats([b, a])
    assert ab == ba
    assert (ab.documents_read, ab.documents_kept, ab.dropped) == (14, 8, {"too_short": 4, "language_not_kept": 2})
    assert [f["file"] for f in ab.failures] == ["a.wet.gz", "b.wet.gz"]
    summary = build_summary(ab, wall_seconds=2.0, run_info={"snapshot": SNAPSHOT})
    assert summary["kept_by_language_bucket"] == {"de": {"tail": 1}, "en": {"head": 7}}
    assert summary["throughput"]["docs_per_second"] == 7.0
    table = format_table(summary)
    assert "dropped: language_not_kept" in table and "a.wet.gz @ 0: file_not_found" in table


# -- the spool -------------------------------------------------------------------------------------


def test_spool_gives_documents_back_in_order(tmp_path):
    spool = DocumentSpool(str(tmp_path))
    docs = [{"url": f"u{i}", "raw_content": "é\n" * i, "line_ids": list(range(i))} for i in range(50)]
    for doc in docs:
        spool.append(doc)
    spool.finish()
    assert list(spool) == docs
    assert list(spool) == docs  # re-readable
    spool.remove()
    assert not list(tmp_path.iterdir())


# -- one shard, end to end -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mirror")
    build_corpus_mirror(root, files=3, docs_per_file=36, seed=1)
    return root


def _task(mirror: Path, shard: int, num_shards: int) -> ShardTask:
    paths = read_listing(str(mirror), SNAPSHOT)
    return ShardTask(SNAPSHOT, shard, tuple(resolve(str(mirror), p) for p in shard_paths(paths, num_shards, shard)))


@pytest.fixture(scope="module")
def processed(mirror, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    settings = StageSettings.create(output=str(out), min_len=300, languages=("en", "de", "fr"), minhash=True)
    processor = ShardProcessor(settings)
    stats = processor.process(_task(mirror, 0, 1))
    return out, stats


def test_every_document_is_kept_or_dropped_for_one_reason(processed):
    _, stats = processed
    assert stats.documents_read == 3 * 36
    assert stats.documents_read == stats.documents_kept + sum(stats.dropped.values())
    # the corpus has one too-short page and one boilerplate-only page per 12
    assert stats.dropped["too_short"] == 9
    assert stats.dropped["empty_after_line_dedup"] == 9
    assert stats.dropped["language_not_kept"] >= 1  # the Dutch pages


def _read_output(out: Path):
    files = sorted(out.rglob("*.parquet"))
    assert files
    return {f.relative_to(out).as_posix(): read_documents_file(f).to_pylist() for f in files}


def test_boilerplate_repeated_across_the_shard_is_removed(processed):
    out, _ = processed
    for rows in _read_output(out).values():
        for row in rows:
            lines = set(row["raw_content"].split("\n"))
            assert not lines & set(BOILERPLATE), row["url"]
            assert row["nlines"] == len(row["raw_content"].split("\n")) == len(row["line_ids"])
            assert row["length"] == len(row["raw_content"])


def test_rows_keep_shard_input_order_and_rpv2_ids(processed, mirror):
    out, stats = processed
    input_order = []
    for path in sorted(mirror.rglob("*.warc.wet.gz")):
        data = gzip.decompress(path.read_bytes()).decode("utf-8")
        input_order += [line.split(": ", 1)[1].strip() for line in data.split("\r\n") if line.startswith("WARC-Target-URI")]
    position = {url: i for i, url in enumerate(input_order)}
    total = 0
    for rel, rows in _read_output(out).items():
        _, snapshot, language, bucket, name = rel.split("/")
        assert snapshot == "snapshot=2023-06" and name == "0000.parquet"
        assert [position[r["url"]] for r in rows] == sorted(position[r["url"]] for r in rows)
        lang, bkt = language.split("=")[1], bucket.split("=")[1]
        for row_index, row in enumerate(rows):
            assert (row["language"], row["bucket"]) == (lang, bkt)
            assert row["id"] == f"2023-06/0000/{lang}_{bkt}.json.gz/{row_index}"
            assert row["id_int"] == document_id_int(row["id"])
            assert row["shard_id"] == f"2023-06/0000/{lang}_{bkt}.json.gz"
            assert row["language_score"] >= 0.5
        total += len(rows)
    assert total == stats.documents_kept
    assert sum(stats.kept_by_language_bucket.values()) == total


def test_minhash_columns_are_rpv2_bands(processed):
    out, _ = processed
    row = next(iter(_read_output(out).values()))[0]
    assert [len(row[f"signature_sim{t}"]) for t in (1.0, 0.9, 0.8, 0.7)] == [1, 5, 9, 14]
    assert len(row["signature_sim0.7"][0]) == 9 * 4


def test_a_missing_file_is_reported_and_the_shard_goes_on(mirror, tmp_path):
    task = _task(mirror, 0, 1)
    task = ShardTask(task.snapshot, task.shard, (task.files[0], resolve(str(mirror), "crawl-data/nope.warc.wet.gz")))
    settings = StageSettings.create(output=str(tmp_path), minhash=False)
    stats = ShardProcessor(settings).process(task)
    assert stats.files == 2 and stats.files_failed == 1
    assert stats.documents_read == 36
    assert [f["reason"] for f in stats.failures] == ["file_not_found"]
    assert stats.events["file_failure_file_not_found"] == 1


def test_warc_input_real_commoncrawl_html_through_the_stage(tmp_path):
    # Real CommonCrawl WARC excerpt (16 HTML responses, multilingual), extracted with resiliparse.
    from conftest import shared_path

    warc = shared_path("realdata", "warc", "resiliparse_CC-MAIN-2020-34_warcfile.warc.gz")
    settings = StageSettings.create(output=str(tmp_path), input_format="warc", languages="all", min_len=100, minhash=False)
    stats = ShardProcessor(settings).process(ShardTask("CC-MAIN-2020-34", 0, (str(warc),)))
    assert stats.documents_read == 16
    stats.check_accounting()
    assert stats.documents_kept > 0
    rows = [row for path in sorted(tmp_path.rglob("*.parquet")) for row in pq.read_table(path).to_pylist()]
    assert len(rows) == stats.documents_kept
    assert all(row["url"].startswith("http") and row["digest"].startswith("sha1:") for row in rows)


def test_a_shard_without_files_is_valid_and_writes_nothing(tmp_path):
    # More shards than files (CCNet's split): some shards are empty.
    stats = ShardProcessor(StageSettings.create(output=str(tmp_path))).process(ShardTask(SNAPSHOT, 42, ()))
    assert (stats.shards, stats.files, stats.documents_read, stats.documents_kept) == (1, 0, 0, 0)
    assert not list(tmp_path.rglob("*.parquet"))


def test_an_annotator_failing_on_one_page_keeps_it_with_null_columns_and_reports_it(mirror, tmp_path):
    from pipeline.shard.annotators import MinHashAnnotator

    class MinHashFailingOnGermanPages(MinHashAnnotator):
        def annotate(self, record, view):
            if record["language"] == "de":
                raise ValueError("odd page")
            return super().annotate(record, view)

    settings = StageSettings.create(output=str(tmp_path), languages=("en", "de"), signals=False)
    stats = ShardProcessor(settings, steps={"minhash": MinHashFailingOnGermanPages()}).process(_task(mirror, 0, 1))
    german = stats.kept_by_language_bucket["de/all"]
    assert german > 0
    assert stats.events["annotator_failed_MinHashFailingOnGermanPages"] == german
    assert sum(f["reason"] == "MinHashFailingOnGermanPages_failed" for f in stats.failures) == german
    rows = pq.read_table(next(tmp_path.rglob("language=de/*/*.parquet"))).to_pylist()
    assert all(row["signature_sim0.7"] is None for row in rows)
    english = pq.read_table(next(tmp_path.rglob("language=en/*/*.parquet"))).to_pylist()
    assert all(len(row["signature_sim0.7"]) == 14 for row in english)
