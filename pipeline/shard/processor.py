"""One shard (or a group of shards), end to end: the declared steps, applied by one loop, to Parquet.

A shard (CCNet / RPv2: a contiguous slice of the snapshot's WET files) is the unit of output: one
Parquet file per (language, bucket) per shard. CCNet's line dedup needs the line-hash counts of the
whole shard before any document can be deduplicated, so shards are read in two passes, as cc_net's
``dedup`` step first computes the hash files of its shards, then removes the duplicated lines:

1. ``read``: stream the shard's files (pipeline/sources), count every line hash (numpy arrays,
   pipeline/ccnet/line_dedup.py) and spool the documents to a local zstd file (pipeline/shard/spool.py);
2. the declared per-document steps (pipeline/shard/plan.py, order from the config's ``pipeline`` list),
   by default::

       line_dedup -> lid -> keep_language -> perplexity -> bucket -> signals -> minhash

   each ``doc -> doc | Drop(reason)``, applied by :meth:`ShardProcessor._run_steps`, which counts the
   documents entering each step and times it; then ``write`` streams the rows into one Parquet file per
   (language, bucket) in the shard's input order.

Shards can be grouped (``hash_in_mem``, as cc_net's option of that name): the group's first passes fill
one line-hash set, so a line repeated across the group's shards is removed in all of them; the output
is still one set of files per shard. The default group is one shard.

Memory stays bounded by the hash arrays and one Parquet row group per open file, never by the number
of documents. Every document read ends kept or dropped for one named reason, and
:class:`~pipeline.shard.stats.ShardStats` checks ``read == kept + sum(dropped)`` before returning.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.ccnet.buckets import ALL as BUCKET_ALL
from pipeline.ccnet.steps import LINE_HASHES, Drop, LineDedup
from pipeline.config import RunConfig
from pipeline.dataset.completion import ShardRecord, file_entry, write_record
from pipeline.dataset.ids import document_id, document_id_int, shard_file_id
from pipeline.dataset.parquet_writer import ShardParquetWriter
from pipeline.dataset.schema import DOCUMENT_FIELDS, document_schema
from pipeline.io.remote import RetryPolicy
from pipeline.shard.annotators import VIEW
from pipeline.shard.plan import (
    LINE_DEDUP,
    READ,
    ModelSources,
    build_steps,
    fetch_models,
    resolve_sources,
    with_contamination,
)
from pipeline.shard.spool import DocumentSpool
from pipeline.shard.stats import ShardStats

logger = logging.getLogger(__name__)

WRITE = "write"  # the sink, timed beside the declared steps


@dataclass(frozen=True)
class ShardTask:
    """One shard to process: its snapshot, its index, and the absolute URLs of its input files."""

    snapshot: str
    shard: int
    files: tuple[str, ...]


@dataclass(frozen=True)
class StageSettings:
    """What a worker needs to process shards: picklable, resolved on the launcher (cutoffs are read
    there, so workers need no configs/ directory; models given by URI are planned there as ``sources``,
    URIs with their sha256s, and each worker fetches them when its ShardProcessor is built, in
    ``DoFn.setup``). Built from the run config, the one home of every default (:meth:`from_config`;
    :meth:`create` for a config with a few values changed)."""

    output: str
    input_format: str
    min_len: int
    languages: tuple[str, ...] | None
    lid_threshold: float
    lid_model: str | None
    models_dir: str | None
    cutoffs: Mapping[str, Any]
    artifacts: str | None
    steps: tuple[str, ...]
    hash_in_mem: int
    work_dir: str | None
    retry: RetryPolicy
    # digest of the settings that shape the output (pipeline.dataset.completion), in every shard record
    run_digest: str
    # lid_model / models_dir / artifacts given by URI: what workers fetch (pipeline/shard/plan.py)
    sources: ModelSources = dataclasses.field(default_factory=ModelSources)
    # the benchmark n-gram index of the contamination step (rpv2 contamination build); None: no step
    contamination: str | None = None

    @classmethod
    def from_config(cls, config: RunConfig, cutoffs: Mapping[str, Any]) -> StageSettings:
        """The settings of ``config``; models given by URI are resolved to their files and sha256s here
        (manifests read; no I/O for local paths), raising pipeline.io.fetch.FetchError if they cannot be."""
        steps = with_contamination(tuple(
            step for step in config.pipeline
            if not (step == "signals" and not config.signals) and not (step == "minhash" and not config.minhash)
        ), config.contamination)
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
            steps=steps,
            hash_in_mem=config.hash_in_mem,
            work_dir=config.work_dir,
            retry=config.retry,
            run_digest="",
            sources=resolve_sources(
                lid_model=config.lid_model, models_dir=config.models_dir, artifacts=config.artifacts,
                languages=config.languages, steps=steps, retry=config.retry, contamination=config.contamination,
            ),
            contamination=config.contamination,
        )

    @classmethod
    def create(cls, *, cutoffs: Mapping[str, Any] | None = None, **values: Any) -> StageSettings:
        """The default run config with ``values`` changed (config keys), and ``cutoffs`` (default: none)."""
        from pipeline.config import load_config

        return cls.from_config(load_config(None, values), cutoffs or {})

    def replace(self, **values: Any) -> StageSettings:
        return dataclasses.replace(self, **values)


def default_reader(input_format: str) -> Callable[..., Iterator[dict[str, Any]]]:
    """The document reader for ``wet`` (CommonCrawl's text) or ``warc`` (HTML extracted by us)."""
    if input_format == "warc":
        from pipeline.sources.warc import iter_warc_documents

        return iter_warc_documents
    from pipeline.sources.wet import iter_wet_documents

    return iter_wet_documents


class ShardProcessor:
    """Processes shards with the declared steps, models loaded once; see the module docstring."""

    def __init__(
        self,
        settings: StageSettings,
        *,
        steps: Mapping[str, Any] | None = None,
        reader: Callable[..., Iterator[dict[str, Any]]] | None = None,
    ) -> None:
        # models given by URI: fetched into this machine's cache and checked now (DoFn.setup builds the
        # processor), so the steps below open local files; a kept language's model that cannot be
        # fetched fails here, naming it
        settings = fetch_models(settings)
        self.settings = settings
        self.steps = build_steps(settings, steps)
        self.dedup_lines = LINE_DEDUP in settings.steps
        self.reader = reader or default_reader(settings.input_format)
        annotators = [s for s in self.steps if hasattr(s, "columns")]
        self.schema: pa.Schema = document_schema(
            [n for a in annotators for n in a.doc_signals],
            [n for a in annotators for n in a.line_signals],
            [t for a in annotators for t in a.minhash_thresholds],
        )

    def load(self) -> None:
        """Load every step's models now (DoFn.setup), not in the first shard.

        What is loaded by then (modules, models, word tables: ~150k objects with the RPv2 artifacts)
        lives as long as the process, so it is collected once and then frozen out of the cyclic garbage
        collector's full passes, which would otherwise re-scan all of it a few times per shard group
        (0.2 s in 16,000 documents, ten times what those passes cost without it). Nothing frozen is
        garbage (collected first); anything made later is collected as before.
        """
        for step in self.steps:
            load = getattr(step, "load", None)
            if load is not None:
                load()
        gc.collect()
        gc.freeze()

    # -- public ------------------------------------------------------------------------------------
    def process(self, task: ShardTask) -> ShardStats:
        """Process one shard; returns its statistics (accounting identity checked)."""
        return self.process_group([task])[0]

    def process_group(self, tasks: Sequence[ShardTask], selected: Collection[int] | None = None) -> list[ShardStats]:
        """Process shards that share one line-hash set (cc_net's ``hash_in_mem``); one ShardStats per
        selected shard. Shards of the group that are not ``selected`` are read for their line hashes
        only (so a selected shard's output does not depend on which other shards a run selects), and
        neither written nor counted."""
        from pipeline.ccnet.line_dedup import ShardLineHashes

        chosen = [task for task in tasks if selected is None or task.shard in selected]
        if not self.dedup_lines:  # no line hashes to pool: the other shards are not read at all
            tasks = chosen
        hashes = ShardLineHashes() if self.dedup_lines else None
        spools: dict[int, DocumentSpool] = {}
        stats = {task.shard: ShardStats(shards=1, files=len(task.files)) for task in chosen}
        try:
            for task in tasks:
                if task.shard in stats:
                    spools[task.shard] = DocumentSpool(self.settings.work_dir)
                    self._read(task, spools[task.shard], hashes, stats[task.shard])
                else:
                    self._read(task, None, hashes, ShardStats())
            line_dedup = LineDedup(hashes.duplicates()) if hashes is not None else None
            del hashes
            for task in chosen:
                files = self._process_spool(task, spools[task.shard], line_dedup, stats[task.shard])
                spools.pop(task.shard).remove()
                # written last, after every file of the shard: a rerun skips the shard only then
                record_stats = {k: v for k, v in stats[task.shard].to_dict().items() if k != "outputs"}
                write_record(self.settings.output, ShardRecord(task.snapshot, task.shard, self.settings.run_digest,
                                                               files, record_stats))
        finally:
            for spool in spools.values():
                spool.remove()
        return [stats[task.shard] for task in chosen]

    # -- pass 1: read ------------------------------------------------------------------------------
    def _read(self, task: ShardTask, spool: DocumentSpool | None, hashes: Any, stats: ShardStats) -> None:
        """Pass 1 of one shard: its documents into ``spool`` (None: hashes only), their lines into
        ``hashes`` (None: no line dedup)."""
        from pipeline.sources.read_report import ReadReport

        started = time.perf_counter()
        report = ReadReport()
        retry = self.settings.retry
        for url in task.files:
            before = report.kept
            for doc in self.reader(url, min_len=self.settings.min_len, report=report, retry=retry):
                if hashes is not None:  # the line hashes travel with the document to pass 2 (hashed once),
                    # as bytes: a numpy array costs ten times as much to pickle into the spool and back
                    doc[LINE_HASHES] = hashes.add(doc["raw_content"]).tobytes()
                if spool is None:
                    continue
                stats.text_bytes += len(doc["raw_content"].encode("utf-8")) + len(doc.get("title", "").encode("utf-8"))
                spool.append(doc)
            logger.debug("shard %d: %s: %d documents", task.shard, url, report.kept - before)
        if spool is None:
            return
        spool.finish()
        if spool.count != report.kept:
            raise AssertionError(f"reader yielded {spool.count} documents but reported {report.kept} kept")
        self._absorb_report(report, stats)
        stats.time_stage(READ, report.read, time.perf_counter() - started)

    @staticmethod
    def _absorb_report(report: Any, stats: ShardStats) -> None:
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

    # -- pass 2: the declared steps, then write ----------------------------------------------------
    def _process_spool(self, task: ShardTask, spool: DocumentSpool, line_dedup: LineDedup | None,
                       stats: ShardStats) -> list[dict[str, Any]]:
        """The declared steps over the spooled documents, the rows written; returns the published files
        as shard-record entries (path relative to the output, rows, bytes, sha256)."""
        started = time.perf_counter()
        steps = ([line_dedup] if line_dedup is not None else []) + self.steps
        # each step once: (index, step, the columns an annotation step fills, or None for a CCNet step)
        plan = [(index, step, getattr(step, "columns", None)) for index, step in enumerate(steps)]
        seconds = [0.0] * len(steps)
        entered = [0] * len(steps)
        write_seconds = 0.0
        clock = time.perf_counter
        with ShardParquetWriter(
            self.settings.output, task.snapshot, task.shard, self.schema, work_dir=self.settings.work_dir
        ) as writer:
            for doc in spool:
                for index, step, columns in plan:
                    entered[index] += 1
                    t0 = clock()
                    result = step(doc) if columns is None else self._annotate(step, columns, doc, stats)
                    seconds[index] += clock() - t0
                    if isinstance(result, Drop):
                        stats.drop(result.reason)
                        break
                    doc = result
                else:
                    t0 = clock()
                    self._write(task, doc, writer, stats)
                    write_seconds += clock() - t0
            t0 = clock()
            written = writer.close()
            write_seconds += clock() - t0
        for index, step in enumerate(steps):
            stats.time_stage(step.name, entered[index], seconds[index])
        stats.time_stage(WRITE, stats.documents_kept, write_seconds)
        stats.count_event("output_files", len(written))
        stats.outputs = [path for path, _ in written.values()]
        files = [file_entry(self.settings.output, path, rows, *writer.file_digests[path])
                 for path, rows in written.values()]
        for step in steps:
            drain = getattr(step, "drain_events", None)
            for name, count in (drain() if drain else {}).items():
                stats.count_event(name, count)
            model_time = getattr(step, "model_time", None)  # pipeline.ccnet.model_time.ModelTime
            for model, model_seconds in (model_time.drain() if model_time is not None else {}).items():
                stats.time_model(step.name, model, model_seconds)
        stats.processing_seconds += time.perf_counter() - started + stats.stage_seconds.get(READ, 0.0)
        stats.check_accounting()
        return files

    @staticmethod
    def _annotate(step: Any, columns: Sequence[str], doc: dict[str, Any], stats: ShardStats) -> Any:
        """One annotation step (one with ``columns``) on one document. One that fails on a document (a
        bug meeting odd input) keeps it with that step's columns null, counted and listed, so a
        crawl-scale run is not stopped by one page and nothing goes unreported; any other step's error
        (a CCNet step, called directly by the loop) is a bug that stops the shard."""
        try:
            return step(doc)
        except Exception as exc:  # noqa: BLE001 - reported, not swallowed
            name = type(step).__name__
            stats.count_event(f"annotator_failed_{name}")
            stats.add_failure({"file": doc.get("cc_segment"), "offset": None, "reason": f"{name}_failed",
                               "message": f"{doc.get('url')}: {type(exc).__name__}: {exc}"})
            logger.warning("%s failed on %s: %s", name, doc.get("url"), exc, exc_info=True)
            doc.update(dict.fromkeys(columns))
            return doc

    def _write(self, task: ShardTask, doc: dict[str, Any], writer: ShardParquetWriter, stats: ShardStats) -> None:
        """The output row of a kept document (CCNet's fields, RPv2's ids, the steps' columns), written."""
        language = doc["language"]
        bucket = doc.setdefault("bucket", BUCKET_ALL)
        if bucket == BUCKET_ALL:
            stats.count_event("kept_without_lm" if doc.get("perplexity") is None else "kept_without_cutoffs")
        doc.pop(VIEW, None)
        for name, _ in DOCUMENT_FIELDS:
            doc.setdefault(name, None)
        row = writer.rows_written(language, bucket)
        doc["id"] = document_id(task.snapshot, task.shard, language, bucket, row)
        doc["id_int"] = document_id_int(doc["id"])
        doc["shard_id"] = shard_file_id(task.snapshot, task.shard, language, bucket)
        writer.write(language, bucket, doc)
        stats.keep(language, bucket)
