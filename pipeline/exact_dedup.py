"""Beam transforms for cross-snapshot exact dedup with partitioned, persisted Bloom filters.

Data flow (dedup/exact.py holds the logic; these transforms only move data):

    records ─► KeyByPartition (key: digest or sha1(text); partition: sha1 prefix of the key mod P)
            ─► GroupByKey (one group per partition)
            ─► DedupPartition (load the partition's filter from the state, flag in RPv2 order, persist it,
                               write that partition's output files)
            ─► CommitState (all partitions done: rewrite the state manifest; write the run summary)

A worker holds one partition's filter and that partition's small (key, id) tuples for the run; P comes
from the command line / config, so memory per worker stays bounded as the crawl grows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.metrics import Metrics

from dedup.bloom import partition_of
from dedup.exact import (
    DUPLICATES_DATASET,
    ExactDedupState,
    KeyedDoc,
    dedup_partition,
    keyed_doc,
    write_bytes,
    write_partition_outputs,
)

NAMESPACE = "exact_dedup"
SUMMARY_NAME = "_summary.json"


class KeyByPartition(beam.DoFn):
    """record -> (partition, KeyedDoc); records that cannot be keyed are counted by reason and dropped."""

    def __init__(self, key_mode: str, num_partitions: int):
        self.key_mode = key_mode
        self.num_partitions = num_partitions

    def setup(self):
        self.read = Metrics.counter(NAMESPACE, "documents_read")

    def process(self, record):
        self.read.inc()
        doc, reason = keyed_doc(record, self.key_mode)
        if doc is None:
            Metrics.counter(NAMESPACE, f"bad_record_{reason}").inc()
            return
        yield partition_of(doc.key, self.num_partitions), doc


class DedupPartition(beam.DoFn):
    """(partition, docs) -> flags; persists the partition's filter and writes its output files."""

    FLAGS = "flags"

    def __init__(self, state: ExactDedupState, generation: int, out_uri: str | None):
        self.state = state
        self.generation = generation
        self.out_uri = out_uri

    def setup(self):
        self.documents = Metrics.counter(NAMESPACE, "documents")
        self.duplicates = Metrics.counter(NAMESPACE, "duplicates")
        self.partitions = Metrics.counter(NAMESPACE, "partitions_processed")

    def process(self, element):
        index, docs = element
        result = dedup_partition(index, docs, self.state, self.generation)
        if self.out_uri is not None:
            write_partition_outputs(self.out_uri, index, self.state.num_partitions, result.flags)
        per_snapshot: dict[str, list[int]] = {}
        for doc, flag in result.flags:
            counts = per_snapshot.setdefault(doc.snapshot, [0, 0])
            counts[0] += 1
            counts[1] += int(flag)
        self.documents.inc(result.stats["documents"])
        self.duplicates.inc(result.stats["duplicates"])
        self.partitions.inc()
        yield {"partition": index, "rel_path": result.rel_path, "stats": result.stats, "per_snapshot": per_snapshot}
        for doc, flag in result.flags:
            yield beam.pvalue.TaggedOutput(self.FLAGS, (doc, flag))


def summarize(partition_results: Iterable[dict], state: ExactDedupState) -> dict:
    """Run summary from the partitions' results: per-snapshot counts and memory per partition."""
    results = sorted(partition_results, key=lambda r: r["partition"])
    per_snapshot: dict[str, list[int]] = {}
    for r in results:
        for snapshot, (docs, dups) in r["per_snapshot"].items():
            counts = per_snapshot.setdefault(snapshot, [0, 0])
            counts[0] += docs
            counts[1] += dups
    stats = [r["stats"] for r in results]
    return {
        "documents": sum(s["documents"] for s in stats),
        "duplicates": sum(s["duplicates"] for s in stats),
        "per_snapshot": {k: {"documents": v[0], "duplicates": v[1]} for k, v in sorted(per_snapshot.items())},
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


class CommitState(beam.DoFn):
    """After every partition: point the state manifest at the new files and write the run summary."""

    def __init__(self, state: ExactDedupState, generation: int, out_uri: str | None):
        self.state = state
        self.generation = generation
        self.out_uri = out_uri

    def process(self, partition_results: list[dict]):
        summary = summarize(partition_results, self.state)
        self.state.commit(
            self.generation,
            {r["partition"]: r["rel_path"] for r in partition_results},
            summary["per_snapshot"].keys(),
        )
        summary["state_generation"] = self.generation
        summary["state_snapshots"] = self.state.snapshots
        if self.out_uri is not None:
            data = json.dumps(summary, indent=1, sort_keys=True).encode("utf-8")
            write_bytes(f"{self.out_uri.rstrip('/')}/{DUPLICATES_DATASET}/{SUMMARY_NAME}", data)
        yield summary


class ExactDedup(beam.PTransform):
    """Flag exact duplicates across snapshots: PCollection[record dict] -> PCollection[(KeyedDoc, bool)].

    ``state`` is opened (or created) by the caller before the pipeline is built, so every worker sees the
    same settings and generation. The summary PCollection is available as ``self.summary`` after apply.
    """

    def __init__(self, state: ExactDedupState, out_uri: str | None = None):
        super().__init__()
        self.state = state
        self.generation = state.next_generation
        self.out_uri = out_uri
        self.summary = None

    def expand(self, records):
        results = (
            records
            | "KeyByPartition" >> beam.ParDo(KeyByPartition(self.state.key_mode, self.state.num_partitions))
            | "GroupByPartition" >> beam.GroupByKey()
            | "DedupPartition"
            >> beam.ParDo(DedupPartition(self.state, self.generation, self.out_uri)).with_outputs(
                DedupPartition.FLAGS, main="partitions"
            )
        )
        self.summary = (
            results.partitions
            | "CollectPartitions" >> beam.combiners.ToList()
            | "CommitState" >> beam.ParDo(CommitState(self.state, self.generation, self.out_uri))
        )
        return results[DedupPartition.FLAGS]


def flags_to_rows(item: tuple[KeyedDoc, bool]) -> dict:
    """(KeyedDoc, flag) -> {"id", "id_int", "is_duplicate_exact"}: the column a documents table joins on."""
    doc, flag = item
    return {"id": doc.doc_id, "id_int": doc.id_int, "is_duplicate_exact": bool(flag)}


# ------------------------------------------------------------------------------------------ reading input


def document_files(inputs: Iterable[str]) -> list[str]:
    """The documents Parquet files of each input (a run's output dir, its ``documents/`` dir, or a file),
    sorted and de-duplicated; any Beam filesystem URI."""
    import posixpath

    from apache_beam.io.filesystems import FileSystems

    found: set[str] = set()
    for uri in inputs:
        root = uri.rstrip("/")
        if root.endswith(".parquet"):
            found.update(m.path for r in FileSystems.match([root]) for m in r.metadata_list)
            continue
        for base in (posixpath.join(root, "documents"), root):
            pattern = posixpath.join(base, "snapshot=*", "language=*", "bucket=*", "*.parquet")
            matched = [m.path for r in FileSystems.match([pattern]) for m in r.metadata_list]
            if matched:
                found.update(matched)
                break
    return sorted(found)


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
    with beam.Pipeline(options=PipelineOptions(beam_args or [])) as p:
        dedup = ExactDedup(state, out_uri)
        _ = p | "Read" >> ReadExactDocuments(files, state.key_mode) | "ExactDedup" >> dedup
    result = p.result
    counters: dict[str, int] = {}
    for c in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        counters[c.key.metric.name] = counters.get(c.key.metric.name, 0) + int(value or 0)
    # the summary was written by CommitState; read it back (the driver cannot see PCollection contents)
    if out_uri is not None:
        from dedup.exact import read_bytes

        summaries.append(json.loads(read_bytes(f"{out_uri.rstrip('/')}/{DUPLICATES_DATASET}/{SUMMARY_NAME}")))
    summary = summaries[0] if summaries else {}
    summary["counters"] = counters
    return summary
