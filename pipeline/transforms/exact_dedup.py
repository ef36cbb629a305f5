"""Beam transforms for cross-snapshot exact dedup with partitioned, persisted Bloom filters.

Data flow (dedup/exact.py holds the logic; these transforms only move data):

    records ─► KeyDocs (key: CCNet digest or sha1 of the text)
            ─► GroupByKey(key) ─► SplitFirstOccurrence: later occurrences are duplicates; the first one
                                   goes on, routed to partition sha1(key) prefix mod P
            ─► GroupByKey(partition) ─► DedupPartition (load the partition's filter from the state,
                                   flag first occurrences seen by earlier runs, insert the run's keys,
                                   persist the filter)
            ─► flags ─► GroupByKey(source file) ─► WriteShardResults (duplicates_exact/, is_duplicate_exact/)
            ─► CommitState (all partitions done: rewrite the state manifest; write the run summary)

Every step streams its group (GroupByKey values are iterated, twice at most, never copied into a
list), so a worker holds one partition's Bloom filter, and the writer one source file's rows: memory
per worker stays bounded as the crawl grows, and P (``--partitions``) sizes the filters. Flags do not
depend on the order in which elements arrive (see dedup/exact.py), so any runner and worker count gives
the same output.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.metrics import Metrics

from dedup.bloom import partition_of
from dedup.exact import (
    DUPLICATES_DATASET,
    ExactDedupState,
    KeyedDoc,
    keyed_doc,
    query_then_insert,
    split_key_group,
    write_shard_outputs,
)
from pipeline.dataset.ids import shard_id_of
from pipeline.io.publish import publish_bytes
from pipeline.transforms.runner import offline_direct_runner

NAMESPACE = "exact_dedup"
SUMMARY_NAME = "_summary.json"


class KeyDocs(beam.DoFn):
    """record -> (key, KeyedDoc); records that cannot be keyed are counted by reason and dropped."""

    def __init__(self, key_mode: str):
        self.key_mode = key_mode

    def setup(self):
        self.read = Metrics.counter(NAMESPACE, "documents_read")

    def process(self, record):
        self.read.inc()
        doc, reason = keyed_doc(record, self.key_mode)
        if doc is None:
            Metrics.counter(NAMESPACE, f"bad_record_{reason}").inc()
            return
        yield doc.key, doc


@beam.typehints.with_output_types(tuple[int, Any])  # main output; the tagged one is (doc, True)
class SplitFirstOccurrence(beam.DoFn):
    """(key, docs) -> (partition, first occurrence) on the main output, (doc, True) for the others."""

    LATER = "later"

    def __init__(self, num_partitions: int):
        self.num_partitions = num_partitions

    def process(self, element):
        key, docs = element
        first, later = split_key_group(docs)
        yield partition_of(key, self.num_partitions), first
        for doc in later:
            yield beam.pvalue.TaggedOutput(self.LATER, (doc, True))


@beam.typehints.with_output_types(dict)  # main output: partition summaries; flags are tagged
class DedupPartition(beam.DoFn):
    """(partition, first occurrences) -> partition summary; flags of first occurrences as a tagged output."""

    FLAGS = "flags"

    def __init__(self, state: ExactDedupState, generation: int):
        self.state = state
        self.generation = generation

    def setup(self):
        self.partitions = Metrics.counter(NAMESPACE, "partitions_processed")
        self.seen_before = Metrics.counter(NAMESPACE, "seen_in_earlier_runs")

    def process(self, element):
        index, firsts = element
        bloom = self.state.partition(index)
        run_keys = seen_before = 0
        # streams: flags are emitted during the query pass, the keys inserted after it (query_then_insert)
        for doc, flag in query_then_insert(firsts, bloom):
            run_keys += 1
            seen_before += flag
            yield beam.pvalue.TaggedOutput(self.FLAGS, (doc, flag))
        rel_path = self.state.save_partition(index, bloom, self.generation)
        self.partitions.inc()
        self.seen_before.inc(seen_before)
        stats = bloom.stats() | {"partition": index, "run_keys": run_keys, "seen_before": seen_before}
        yield {"partition": index, "rel_path": rel_path, "stats": stats}


class WriteShardResults(beam.DoFn):
    """(source shard id, flags) -> that file's two result files; emits its counts for the summary."""

    def __init__(self, out_uri: str):
        self.out_uri = out_uri

    def setup(self):
        self.documents = Metrics.counter(NAMESPACE, "documents")
        self.duplicates = Metrics.counter(NAMESPACE, "duplicates")

    def process(self, element):
        shard_id, flags = element
        counts = write_shard_outputs(self.out_uri, shard_id, flags)
        self.documents.inc(counts["documents"])
        self.duplicates.inc(counts["duplicates"])
        yield counts


def merge_counts(counts: Iterable[dict]) -> dict[str, dict[str, int]]:
    """Per-snapshot documents and duplicates from the per-file counts."""
    per_snapshot: dict[str, dict[str, int]] = {}
    for c in counts:
        entry = per_snapshot.setdefault(c["snapshot"], {"documents": 0, "duplicates": 0})
        entry["documents"] += c["documents"]
        entry["duplicates"] += c["duplicates"]
    return dict(sorted(per_snapshot.items()))


def summarize(partition_results: Iterable[dict], per_snapshot: dict, state: ExactDedupState) -> dict:
    """Run summary: per-snapshot counts, and memory per partition against the optimum."""
    stats = [r["stats"] for r in sorted(partition_results, key=lambda r: r["partition"])]
    return {
        "documents": sum(v["documents"] for v in per_snapshot.values()),
        "duplicates": sum(v["duplicates"] for v in per_snapshot.values()),
        "per_snapshot": per_snapshot,
        "distinct_keys": sum(s["run_keys"] for s in stats),
        "seen_in_earlier_runs": sum(s["seen_before"] for s in stats),
        "num_partitions": state.num_partitions,
        "partitions_processed": len(stats),
        "capacity_per_partition": state.capacity_per_partition,
        "error_rate": state.error_rate,
        "key_mode": state.key_mode,
        "max_partition_memory_bytes": max((s["memory_bytes"] for s in stats), default=0),
        "max_partition_keys": max((s["keys"] for s in stats), default=0),
        "overflowed_partitions": sum(s["filters"] > 1 for s in stats),
        "bits_per_key": stats[0]["bits_per_key"] if stats else None,
        "optimal_bits_per_key": stats[0]["optimal_bits_per_key"] if stats else None,
        "partitions": stats,
    }


def commit_and_summarize(
    partition_results: list[dict], per_snapshot: dict, state: ExactDedupState, generation: int, out_uri: str | None
) -> dict:
    """Point the state manifest at the run's partition files (the commit) and write the run summary."""
    summary = summarize(partition_results, per_snapshot, state)
    state.commit(generation, {r["partition"]: r["rel_path"] for r in partition_results}, per_snapshot.keys())
    summary["state_generation"] = generation
    summary["state_snapshots"] = state.snapshots
    if out_uri is not None:
        data = json.dumps(summary, indent=1, sort_keys=True).encode("utf-8")
        publish_bytes(data, f"{out_uri.rstrip('/')}/{DUPLICATES_DATASET}/{SUMMARY_NAME}")
    return summary


class CommitState(beam.DoFn):
    """After every partition and every output file: commit the state, write the run summary."""

    def __init__(self, state: ExactDedupState, generation: int, out_uri: str | None):
        self.state = state
        self.generation = generation
        self.out_uri = out_uri

    def process(self, partition_results: list[dict], file_counts: list[dict]):
        yield commit_and_summarize(partition_results, merge_counts(file_counts), self.state, self.generation,
                                   self.out_uri)


class ExactDedup(beam.PTransform):
    """Flag exact duplicates across snapshots: PCollection[record dict] -> PCollection[(KeyedDoc, bool)].

    ``state`` is opened (or created) by the caller before the pipeline is built, so every worker sees the
    same settings and generation. With ``out_uri`` the results are written beside the documents and a
    summary is committed; ``self.summary`` is then the one-element summary PCollection.
    """

    def __init__(self, state: ExactDedupState, out_uri: str | None = None):
        super().__init__()
        self.state = state
        self.generation = state.next_generation
        self.out_uri = out_uri
        self.summary = None

    def expand(self, records):
        split = (
            records
            | "KeyDocs" >> beam.ParDo(KeyDocs(self.state.key_mode))
            | "GroupByKey" >> beam.GroupByKey()
            | "SplitFirstOccurrence"
            >> beam.ParDo(SplitFirstOccurrence(self.state.num_partitions)).with_outputs(
                SplitFirstOccurrence.LATER, main="firsts"
            )
        )
        partitions = (
            split.firsts
            | "GroupByPartition" >> beam.GroupByKey()
            | "DedupPartition"
            >> beam.ParDo(DedupPartition(self.state, self.generation)).with_outputs(
                DedupPartition.FLAGS, main="partitions"
            )
        )
        flags = (split[SplitFirstOccurrence.LATER], partitions[DedupPartition.FLAGS]) | "AllFlags" >> beam.Flatten()
        if self.out_uri is None:
            file_counts = flags | "NoFiles" >> beam.FlatMap(lambda _: [])
        else:
            file_counts = (
                flags
                | "KeyBySourceFile" >> beam.Map(lambda item: (shard_id_of(item[0].doc_id), item))
                | "GroupBySourceFile" >> beam.GroupByKey()
                | "WriteShardResults" >> beam.ParDo(WriteShardResults(self.out_uri))
            )
        self.summary = (
            partitions.partitions
            | "CollectPartitions" >> beam.combiners.ToList()
            | "CommitState"
            >> beam.ParDo(
                CommitState(self.state, self.generation, self.out_uri),
                beam.pvalue.AsSingleton(file_counts | "CollectCounts" >> beam.combiners.ToList()),
            )
        )
        return flags


def flags_to_rows(item: tuple[KeyedDoc, bool]) -> dict:
    """(KeyedDoc, flag) -> {"id", "id_int", "is_duplicate_exact"}: the column a documents table joins on."""
    doc, flag = item
    return {"id": doc.doc_id, "id_int": doc.id_int, "is_duplicate_exact": bool(flag)}


# ------------------------------------------------------------------------------------------ reading input


def exact_columns(key_mode: str) -> list[str]:
    return ["id", "id_int", "digest", "raw_content"] if key_mode == "text-sha1" else ["id", "id_int", "digest"]


def read_exact_columns(source, key_mode: str) -> list[dict]:
    """The columns exact dedup needs from one documents file, as dicts (missing columns are None,
    so the records are counted as bad by reason rather than failing the file)."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source)
    names = set(parquet.schema_arrow.names)
    wanted = [c for c in exact_columns(key_mode) if c in names]
    table = parquet.read(columns=wanted)
    rows = table.to_pylist()
    for row in rows:
        for column in exact_columns(key_mode):
            row.setdefault(column, None)
    return rows


class ReadExactColumns(beam.DoFn):
    """A readable file -> its records; an unreadable file is counted and logged, the others go on."""

    def __init__(self, key_mode: str):
        self.key_mode = key_mode

    def process(self, readable):
        import logging

        try:
            with readable.open() as handle:
                rows = read_exact_columns(handle, self.key_mode)
        except Exception as exc:  # noqa: BLE001 - bad input is counted, never fatal
            logging.getLogger(__name__).error("exact dedup: cannot read %s: %s", readable.metadata.path, exc)
            Metrics.counter(NAMESPACE, "bad_files").inc()
            return
        yield from rows


class ReadExactDocuments(beam.PTransform):
    """Documents files -> records with id, id_int, digest (and raw_content for the text-sha1 key)."""

    def __init__(self, files: list[str], key_mode: str):
        super().__init__()
        self.files = files
        self.key_mode = key_mode

    def expand(self, pbegin):
        return (
            pbegin
            | "Files" >> beam.Create(self.files)
            | "Match" >> fileio.MatchAll()
            | "Open" >> fileio.ReadMatches()
            | "ReadColumns" >> beam.ParDo(ReadExactColumns(self.key_mode))
        )


def run_exact_dedup_beam(
    files: list[str], state: ExactDedupState, out_uri: str | None, beam_args: list[str] | None = None
) -> dict:
    """Build and run the exact-dedup pipeline; returns the run summary plus the Beam counters."""
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions

    summaries: list[dict] = []
    options = PipelineOptions(beam_args or [])
    with beam.Pipeline(runner=offline_direct_runner(options), options=options) as p:
        dedup = ExactDedup(state, out_uri)
        _ = p | "Read" >> ReadExactDocuments(files, state.key_mode) | "ExactDedup" >> dedup
    result = p.result
    counters: dict[str, int] = {}
    for c in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        counters[c.key.metric.name] = counters.get(c.key.metric.name, 0) + int(value or 0)
    # the summary was written by CommitState; read it back (the driver cannot see PCollection contents)
    if out_uri is not None:
        from pipeline.io.publish import read_bytes

        summaries.append(json.loads(read_bytes(f"{out_uri.rstrip('/')}/{DUPLICATES_DATASET}/{SUMMARY_NAME}")))
    summary = summaries[0] if summaries else {}
    summary["counters"] = counters
    return summary
