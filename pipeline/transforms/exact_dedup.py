"""Beam transforms for cross-snapshot exact dedup with partitioned, persisted Bloom filters.

Data flow (dedup/exact.py holds the logic; these transforms only move data)::

    documents file paths ─► ReadExactDocuments (id, id_int, digest [, raw_content])
            ─► KeyDocs (key: CCNet digest or sha1 of the text)
            ─► GroupByKey(key) ─► SplitFirstOccurrence: later occurrences are duplicates; the first one
                                   goes on, routed to partition sha1(key) prefix mod P
            ─► GroupByKey(partition) ─► DedupPartition (load the partition's filter from the state,
                                   flag first occurrences seen by earlier runs, insert the run's keys,
                                   persist the filter)
            ─► flags ─► GroupByKey(source file) ─► WriteShardResults (duplicates_exact/, is_duplicate_exact/)
            ─► CommitState (all partitions done: rewrite the state manifest; write the run summary)

:class:`ExactDedupFiles` is that whole flow on a PCollection of documents file paths: the files the
CCNet stage just wrote (``rpv2 run``), or an existing dataset's (``rpv2 dedup exact``).

Every step streams its group (GroupByKey values are iterated, twice at most, never copied into a
list), so a worker holds one partition's Bloom filter, and the writer one source file's rows: memory
per worker stays bounded as the crawl grows, and P (``--partitions``) sizes the filters. Flags do not
depend on the order in which elements arrive (see dedup/exact.py), so any runner and worker count gives
the same output.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics import Metrics

from dedup.bloom import partition_of
from dedup.exact import (
    ExactDedupState,
    KeyedDoc,
    commit_and_summarize,
    keyed_doc,
    merge_counts,
    query_then_insert,
    read_exact_columns,
    split_key_group,
    summary_uri,
    write_shard_outputs,
)
from pipeline.dataset.ids import shard_id_of
from pipeline.progress import BEAM_NAMESPACE as PROGRESS_NAMESPACE
from pipeline.transforms.read_files import ReadEachFile

NAMESPACE = "exact_dedup"


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
        Metrics.counter(PROGRESS_NAMESPACE, "files_done").inc()  # units done, as the command's progress
        self.documents.inc(counts["documents"])
        self.duplicates.inc(counts["duplicates"])
        yield counts


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


def _exact_records(path: str, handle: Any, key_mode: str) -> list:
    """One documents file's records (:func:`read_exact_columns`; read whole before any is given, so an
    unreadable file gives none)."""
    return read_exact_columns(handle, key_mode)


class ReadExactDocuments(beam.PTransform):
    """Documents file paths -> records with id, id_int, digest (and raw_content for the text-sha1 key);
    an unreadable file is counted (``bad_files``) and logged, the others go on."""

    def __init__(self, key_mode: str):
        super().__init__()
        self.key_mode = key_mode

    def expand(self, paths):
        return paths | "ReadFiles" >> ReadEachFile(
            functools.partial(_exact_records, key_mode=self.key_mode), namespace=NAMESPACE, counter="bad_files",
            what="exact dedup", compression_type=CompressionTypes.AUTO)


# ------------------------------------------------------------------------------------ files -> results


class ExactDedupFiles(beam.PTransform):
    """Documents file paths -> exact-dedup results written beside them (``out_uri``) and the state
    committed; returns the one-element summary PCollection.

    ``state`` is opened (or created) by the caller before the pipeline is built (see :class:`ExactDedup`).
    """

    def __init__(self, state: ExactDedupState, out_uri: str | None):
        super().__init__()
        self.state = state
        self.out_uri = out_uri

    def expand(self, paths):
        dedup = ExactDedup(self.state, self.out_uri)
        _ = paths | "ReadDocuments" >> ReadExactDocuments(self.state.key_mode) | "Flag" >> dedup
        return dedup.summary


def read_exact_summary(out_uri: str | None, result: Any) -> dict:
    """The summary a finished pipeline's :class:`CommitState` wrote (the driver cannot see PCollection
    contents; empty without ``out_uri``), with the pipeline's ``exact_dedup`` counters."""
    from pipeline.io.publish import read_bytes
    from pipeline.transforms.summary import namespace_counters

    summary = json.loads(read_bytes(summary_uri(out_uri))) if out_uri is not None else {}
    summary["counters"] = namespace_counters(result, NAMESPACE)
    return summary


def run_exact_dedup_beam(
    files: list[str], state: ExactDedupState, out_uri: str | None, beam_args: list[str] | None = None
) -> dict:
    """``rpv2 dedup exact --engine beam``: build and run the pipeline on existing documents files;
    returns the run summary plus the Beam counters."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.transforms.runner import new_pipeline, run_and_wait

    p = new_pipeline(PipelineOptions(beam_args or []))
    _ = p | "DocumentFiles" >> beam.Create(files) | "ExactDedup" >> ExactDedupFiles(state, out_uri)
    return read_exact_summary(out_uri, run_and_wait(p))
