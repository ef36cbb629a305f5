"""The run summary on Beam: shard statistics -> Beam counters and ``<output>/_run_summary.json``.

Every shard reports a :class:`pipeline.shard.stats.ShardStats`; :func:`count_stats` turns it into Beam
counters (namespace ``rpv2``: ``dropped_<reason>``, ``kept_<lang>_<bucket>``, events), and
:class:`SummarizeRun` combines the shards' statistics in the pipeline (CombineGlobally, so it works on
every runner) and writes the summary, with the accounting identity asserted, beside the output. The
driver reads it back (:func:`read_run_summary`) with the counters (:func:`pipeline_counters`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.shard.stats import SUMMARY_FILE, ShardStats, build_summary, merge_stats, summary_json

METRICS_NAMESPACE = "rpv2"


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


def read_run_summary(output: str) -> dict[str, Any]:
    """``<output>/_run_summary.json`` through Beam FileSystems (local, gs://, s3://)."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(f"{output.rstrip('/')}/{SUMMARY_FILE}") as handle:
        return json.loads(handle.read().decode("utf-8"))


def namespace_counters(result: Any, namespace: str) -> dict[str, int]:
    """The counters of one namespace of a finished pipeline, summed over steps (committed values where
    the runner reports them, else attempted)."""
    from apache_beam.metrics.metric import MetricsFilter

    counters: dict[str, int] = {}
    for counter in result.metrics().query(MetricsFilter().with_namespace(namespace))["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        counters[counter.key.metric.name] = counters.get(counter.key.metric.name, 0) + int(value or 0)
    return dict(sorted(counters.items()))


def pipeline_counters(result: Any) -> dict[str, int]:
    """The ``rpv2`` Beam counters of a finished pipeline (the CCNet stage's accounting)."""
    return namespace_counters(result, METRICS_NAMESPACE)
