"""The Beam composition of ``rpv2 run``: CommonCrawl snapshot -> bucketed Parquet + run summary.

The top-level transform, :class:`CommonCrawlToParquet`, is ARCHITECTURE.md's data flow::

    listing (wet.paths.gz) -> N shards of contiguous files -> per shard: read -> line dedup -> LID
      -> perplexity -> bucket -> signals -> MinHash -> Parquet -> combined stats -> _run_summary.json

A shard is the unit of work (one DoFn call), because CCNet's line dedup needs the whole shard's line
hashes; the per-document steps inside it are :class:`pipeline.shard.processor.ShardProcessor`'s. Heavy
state (LID model, LMs, signal artifacts) is loaded once per worker in ``DoFn.setup``. Every drop reason
is a Beam counter ``rpv2:dropped_<reason>``; the summary is built from per-shard statistics combined
in the pipeline (CombineGlobally) and written by the pipeline, so it works on any runner.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.shard.processor import ShardProcessor, ShardTask, StageSettings, build_annotators
from pipeline.shard.stats import SUMMARY_FILE, ShardStats, build_summary, merge_stats, summary_json
from pipeline.transforms.runner import offline_direct_runner

logger = logging.getLogger(__name__)

METRICS_NAMESPACE = "rpv2"


# --------------------------------------------------------------------------------------------------
# Listing -> shards
# --------------------------------------------------------------------------------------------------


def shard_tasks(
    base_url: str, snapshot: str, paths: Sequence[str], num_shards: int, shards: Sequence[int]
) -> list[ShardTask]:
    """Cut a snapshot listing into CCNet/RPv2 shards (contiguous slices) and keep the chosen ones."""
    from pipeline.io.uris import resolve
    from pipeline.sources.listing import shard_paths

    return [
        ShardTask(snapshot=snapshot, shard=shard,
                  files=tuple(resolve(base_url, rel) for rel in shard_paths(paths, num_shards, shard)))
        for shard in shards
    ]


class ListShards(beam.PTransform):
    """PBegin -> ShardTask: the snapshot's listing (read on the launcher, so that a missing listing
    fails the run at once with its URL) cut into the chosen shards."""

    def __init__(
        self, base_url: str, snapshot: str, paths: Sequence[str], num_shards: int, shards: Sequence[int]
    ) -> None:
        super().__init__()
        self.tasks = shard_tasks(base_url, snapshot, paths, num_shards, shards)

    def expand(self, pbegin):
        return pbegin | "ShardTasks" >> beam.Create(self.tasks, reshuffle=False)


# --------------------------------------------------------------------------------------------------
# Per shard: the CCNet stage, the RPv2 signals and MinHash, Parquet
# --------------------------------------------------------------------------------------------------


class ProcessShardFn(beam.DoFn):
    """ShardTask -> ShardStats (as a dict). Writes the shard's Parquet files as a side effect, atomically,
    so that a retried bundle rewrites the same bytes."""

    def __init__(self, settings: StageSettings) -> None:
        self.settings = settings
        self.processor: ShardProcessor | None = None

    def setup(self) -> None:
        # LID model, LMs and signal artifacts: once per worker, not per shard.
        self.processor = ShardProcessor(self.settings, annotators=build_annotators(self.settings))
        self.processor.models.load()

    def process(self, task: ShardTask) -> Iterator[dict[str, Any]]:
        assert self.processor is not None
        stats = self.processor.process(task)
        count_stats(stats)
        logger.info(
            "shard %04d: %d files, %d read, %d kept, %d dropped in %.1fs",
            task.shard, stats.files, stats.documents_read, stats.documents_kept,
            stats.documents_dropped, stats.processing_seconds,
        )
        yield stats.to_dict()


def count_stats(stats: ShardStats) -> None:
    """Report a shard's accounting as Beam counters (namespace ``rpv2``)."""
    counter = Metrics.counter
    counter(METRICS_NAMESPACE, "shards").inc(stats.shards)
    counter(METRICS_NAMESPACE, "files").inc(stats.files)
    counter(METRICS_NAMESPACE, "files_failed").inc(stats.files_failed)
    counter(METRICS_NAMESPACE, "documents_read").inc(stats.documents_read)
    counter(METRICS_NAMESPACE, "documents_kept").inc(stats.documents_kept)
    for reason, count in sorted(stats.dropped.items()):
        counter(METRICS_NAMESPACE, f"dropped_{reason}").inc(count)
    for key, count in sorted(stats.kept_by_language_bucket.items()):
        counter(METRICS_NAMESPACE, f"kept_{key.replace('/', '_')}").inc(count)
    for name, count in sorted(stats.events.items()):
        counter(METRICS_NAMESPACE, name).inc(count)


# --------------------------------------------------------------------------------------------------
# Shard stats -> run summary
# --------------------------------------------------------------------------------------------------


class CombineShardStats(beam.CombineFn):
    """Sums ShardStats dicts (commutative and associative, as CombineFn requires)."""

    def create_accumulator(self) -> dict[str, Any]:
        return ShardStats().to_dict()

    def add_input(self, accumulator: dict[str, Any], element: dict[str, Any]) -> dict[str, Any]:
        return merge_stats([ShardStats.from_dict(accumulator), ShardStats.from_dict(element)]).to_dict()

    def merge_accumulators(self, accumulators) -> dict[str, Any]:
        return merge_stats(ShardStats.from_dict(a) for a in accumulators).to_dict()

    def extract_output(self, accumulator: dict[str, Any]) -> dict[str, Any]:
        return accumulator


def write_run_summary(
    stats: Mapping[str, Any], output: str, run_info: Mapping[str, Any], started_at: float
) -> dict[str, Any]:
    """Build the summary (accounting identity asserted) and write ``<output>/_run_summary.json``
    atomically through Beam FileSystems. Wall time runs from pipeline construction to now."""
    from pipeline.io.publish import publish_bytes

    summary = build_summary(ShardStats.from_dict(stats), wall_seconds=time.time() - started_at, run_info=run_info)
    publish_bytes(summary_json(summary).encode("utf-8"), f"{output.rstrip('/')}/{SUMMARY_FILE}")
    return summary


class SummarizeRun(beam.PTransform):
    """ShardStats dicts -> the run summary, written beside the output."""

    def __init__(self, output: str, run_info: Mapping[str, Any], started_at: float) -> None:
        super().__init__()
        self.output = output
        self.run_info = json.loads(json.dumps(dict(run_info)))  # plain data only
        self.started_at = started_at

    def expand(self, stats):
        return (
            stats
            | "CombineShardStats" >> beam.CombineGlobally(CombineShardStats())
            | "WriteRunSummary" >> beam.Map(write_run_summary, self.output, self.run_info, self.started_at)
        )


# --------------------------------------------------------------------------------------------------
# The whole stage
# --------------------------------------------------------------------------------------------------


class CommonCrawlToParquet(beam.PTransform):
    """CommonCrawl snapshot -> Parquet partitioned by snapshot/language/bucket, plus the run summary.

    Returns the PCollection holding the one summary dict.
    """

    def __init__(
        self,
        *,
        base_url: str,
        snapshot: str,
        listing: Sequence[str],
        num_shards: int,
        shards: Sequence[int],
        settings: StageSettings,
        run_info: Mapping[str, Any] | None = None,
        started_at: float | None = None,
    ) -> None:
        super().__init__()
        self.base_url = base_url
        self.snapshot = snapshot
        self.listing = tuple(listing)
        self.num_shards = num_shards
        self.shards = tuple(shards)
        self.settings = settings
        self.run_info = dict(run_info or {})
        self.started_at = time.time() if started_at is None else started_at

    def expand(self, pbegin):
        settings = self.settings
        shards = pbegin | "ListShards" >> ListShards(
            self.base_url, self.snapshot, self.listing, self.num_shards, self.shards
        )
        shard_stats = (
            shards
            # one shard per worker call, spread over the workers
            | "SpreadShards" >> beam.Reshuffle()
            # read -> line dedup -> LID -> keep language -> perplexity -> bucket -> signals -> MinHash
            #   -> Parquet per (language, bucket)
            | "CCNetStageToParquet" >> beam.ParDo(ProcessShardFn(settings))
        )
        return shard_stats | "SummarizeRun" >> SummarizeRun(settings.output, self.run_info, self.started_at)


# --------------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------------


def load_stage_cutoffs(path: str | None) -> dict[str, Any]:
    """Per-language bucket cutoffs, read on the launcher (workers get them inside StageSettings)."""
    from pipeline.ccnet.buckets import load_cutoffs

    return dict(load_cutoffs(path)) if path else dict(load_cutoffs())


def read_run_summary(output: str) -> dict[str, Any]:
    """``<output>/_run_summary.json`` through Beam FileSystems (local, gs://, s3://)."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(f"{output.rstrip('/')}/{SUMMARY_FILE}") as handle:
        return json.loads(handle.read().decode("utf-8"))


def pipeline_counters(result: Any) -> dict[str, int]:
    """The ``rpv2`` Beam counters of a finished pipeline, summed over steps (committed values where the
    runner reports them, else attempted)."""
    from apache_beam.metrics.metric import MetricsFilter

    counters: dict[str, int] = {}
    for counter in result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        counters[counter.key.metric.name] = counters.get(counter.key.metric.name, 0) + int(value or 0)
    return dict(sorted(counters.items()))




def run_pipeline(config: Any, beam_args: Sequence[str] = (), *, sample: bool = False) -> dict[str, Any]:
    """Build and run the pipeline for ``config`` (a RunConfig), wait for it, and return the run summary
    (as written to ``_run_summary.json``) with the Beam counters under ``"counters"``."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.sources.listing import parse_shard_spec, read_listing

    if config.snapshot is None:
        raise ValueError("run_pipeline needs a snapshot (the CLI substitutes the embedded sample)")
    shards = parse_shard_spec(config.shards, config.num_shards)
    # crawl-data/CC-MAIN-<id>/{wet,warc}.paths.gz; raises ListingError (with the URL) if unreadable
    listing = read_listing(config.base_url, config.snapshot, kind=config.input_format, retry=config.retry.policy())
    logger.info("%s: %d %s files in %d shards, %d selected", config.snapshot, len(listing), config.input_format,
                config.num_shards, len(shards))
    settings = StageSettings.from_config(config, load_stage_cutoffs(config.cutoffs))
    run_info = {
        "snapshot": config.snapshot,
        "base_url": config.base_url,
        "num_shards": config.num_shards,
        "listed_files": len(listing),
        "shards": config.shards or "all",
        "input_format": config.input_format,
        "languages": "all" if config.languages is None else list(config.languages),
        "output": config.output,
        "embedded_sample": sample,
    }
    args = config.beam_args(beam_args)
    options = PipelineOptions(args)
    started_at = time.time()
    pipeline = beam.Pipeline(runner=offline_direct_runner(options), options=options)
    _ = pipeline | "CommonCrawlToParquet" >> CommonCrawlToParquet(
        base_url=config.base_url,
        snapshot=config.snapshot,
        listing=listing,
        num_shards=config.num_shards,
        shards=shards,
        settings=settings,
        run_info=run_info,
        started_at=started_at,
    )
    result = pipeline.run()
    result.wait_until_finish()
    summary = read_run_summary(config.output)
    summary["counters"] = pipeline_counters(result)
    return summary
