"""Cross-snapshot exact dedup: keys, RPv2's keep-first rule, and the persisted partitioned Bloom state.

Reproduces RPv2's exact dedup (app/src/bloomfilter.py): a document's key is its CCNet digest (the WET
record's sha1, with the ``sha1:`` prefix removed); snapshots are processed newest first; the first
occurrence of a key is kept and every later one is flagged (``bloomfilter.add(digest)`` returned True).
How it is computed, and where it deliberately differs:

- Inside one run the rule is applied *exactly*: documents are grouped by key, the first in processing
  order (newest snapshot, then shard path, then row; RPv2 shuffled its files, so its choice changed
  from run to run) is kept and the others are flagged. No Bloom false positive can hit two documents
  of the same run, and the result does not depend on the order in which documents arrive, so any
  number of workers gives the same flags.
- Against earlier runs, the first occurrence is flagged when its key is in the persisted filter
  (:class:`ExactDedupState`): one pybloom-live filter per key partition (see dedup.bloom), queried for
  every key of the run *before* the run's keys are inserted, so false positives (rate p, as RPv2) do
  not depend on insertion order either. Across runs the copy processed first is the one kept.
- A partition's worker streams the run's first occurrences twice (query, then insert): its memory is
  the partition's filter, whatever the crawl size.

This module is pure Python (no Beam); pipeline/transforms/exact_dedup.py runs the same functions as
PTransforms, and the run's summary (:func:`summarize`) is built here for both engines.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from dedup.bloom import BloomPartition, partition_capacity, partition_of
from pipeline.dataset.ids import shard_id_of, snapshot_of
from pipeline.io.publish import exists, publish_bytes, read_bytes
from pipeline.io.uris import join as _join

log = logging.getLogger(__name__)

KEY_MODES = ("digest", "text-sha1")
STATE_FORMAT = "rpv2-exact-bloom/1"
MANIFEST = "MANIFEST.json"

# Settings of a new state (an existing state keeps its own). RPv2's Bloom error rate; P partitions bound
# a worker's memory to one partition's filter.
DEFAULT_PARTITIONS = 64
DEFAULT_ERROR_RATE = 0.01
# A new state is sized for this many times the documents of the run that creates it, leaving room for
# the snapshots that later runs add to it (give an explicit expected count for a crawl-scale state).
DEFAULT_GROWTH = 4


@dataclass(frozen=True, order=True)
class KeyedDoc:
    """What exact dedup needs of a document (small, so a partition's batch stays small in memory)."""

    snapshot: str
    doc_id: str
    id_int: int | None
    key: str
    digest: str  # the CCNet digest without "sha1:", as in RPv2's duplicates parquet


@dataclass
class DedupCounts:
    documents: int = 0
    duplicates: int = 0
    bad_records: int = 0
    bad_reasons: dict[str, int] = field(default_factory=dict)

    def bad(self, reason: str) -> None:
        self.bad_records += 1
        self.bad_reasons[reason] = self.bad_reasons.get(reason, 0) + 1


def strip_digest(digest: str) -> str:
    """RPv2's ``str(digest).replace("sha1:", "")``."""
    return str(digest).replace("sha1:", "")


def text_sha1(raw_content: str) -> str:
    """sha1 of the final raw_content (utf-8), hex: the key for ``--exact-key text-sha1``."""
    return hashlib.sha1(raw_content.encode("utf-8", "surrogatepass")).hexdigest()


def keyed_doc(record: Mapping, key_mode: str = "digest") -> tuple[KeyedDoc | None, str | None]:
    """Build the KeyedDoc of a pipeline record, or (None, reason) when the record cannot be keyed.

    ``record`` needs ``id`` and ``digest`` (key_mode "digest") or ``raw_content`` ("text-sha1");
    ``id_int`` and ``snapshot`` are used when present.
    """
    if key_mode not in KEY_MODES:
        raise ValueError(f"unknown exact key {key_mode!r}; choose one of {KEY_MODES}")
    doc_id = record.get("id")
    if not doc_id or not isinstance(doc_id, str):
        return None, "missing_id"
    snapshot = snapshot_of(doc_id, record.get("snapshot"))
    if snapshot is None:
        return None, "no_snapshot_in_id"
    digest = record.get("digest")
    digest = strip_digest(digest) if digest else ""
    if key_mode == "digest":
        if not digest:
            return None, "missing_digest"
        key = digest
    else:
        raw = record.get("raw_content")
        if not isinstance(raw, str):
            return None, "missing_raw_content"
        key = text_sha1(raw)
    id_int = record.get("id_int")
    if id_int is not None:
        try:
            id_int = int(id_int)
        except (TypeError, ValueError):
            return None, "bad_id_int"
    return KeyedDoc(snapshot, doc_id, id_int, key, digest or key), None


def _row_number(doc_id: str) -> tuple[str, int, str]:
    shard, _, row = doc_id.rpartition("/")
    return (shard, int(row), "") if row.isdigit() else (shard, -1, row)


def processing_order(docs: Iterable[KeyedDoc]) -> list[KeyedDoc]:
    """RPv2's order made deterministic: snapshots newest first; inside one, by shard path then row."""
    by_position = sorted(docs, key=lambda d: _row_number(d.doc_id))
    return sorted(by_position, key=lambda d: d.snapshot, reverse=True)  # stable: keeps position order


def comes_before(a: KeyedDoc, b: KeyedDoc) -> bool:
    """True when ``a`` precedes ``b`` in :func:`processing_order`."""
    if a.snapshot != b.snapshot:
        return a.snapshot > b.snapshot
    return _row_number(a.doc_id) < _row_number(b.doc_id)


def first_occurrence(docs: Iterable[KeyedDoc]) -> KeyedDoc | None:
    """The document of a key group that RPv2's rule keeps (first in processing order); one pass."""
    first = None
    for doc in docs:
        if first is None or comes_before(doc, first):
            first = doc
    return first


def split_key_group(docs: Iterable[KeyedDoc]) -> tuple[KeyedDoc | None, Iterator[KeyedDoc]]:
    """(first occurrence, the later occurrences): the later ones are duplicates whatever the state says.

    ``docs`` is iterated twice (a list, or a re-iterable such as a Beam GroupByKey value), so a key
    shared by millions of documents is never held as a list here.
    """
    first = first_occurrence(docs)
    return first, (doc for doc in docs if doc != first)


def query_then_insert(firsts: Iterable[KeyedDoc], bloom: BloomPartition) -> Iterator[tuple[KeyedDoc, bool]]:
    """Flag each first occurrence whose key the filter already holds, *then* insert all the keys.

    Querying before inserting makes every answer depend on the earlier runs' keys only, so the flags do
    not depend on the order of ``firsts`` (iterated twice; re-iterable).
    """
    for doc in firsts:
        yield doc, doc.key in bloom
    for doc in firsts:
        bloom.add(doc.key)


# ---------------------------------------------------------------------------------------------------------
# persisted state




@dataclass
class ExactDedupState:
    """The persisted partitioned filter: ``<state>/MANIFEST.json`` + ``<state>/gen-<g>/partition-<i>.bloom``.

    The manifest is the commit point: a run writes its partitions under a new generation directory and
    then rewrites the manifest, so a crash leaves the previous state intact. A partition that received
    no key in a run keeps pointing at its older file.
    """

    uri: str | None
    num_partitions: int
    capacity_per_partition: int
    error_rate: float
    key_mode: str
    generation: int = 0
    snapshots: list[str] = field(default_factory=list)
    partition_files: dict[int, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        uri: str | None,
        num_partitions: int,
        expected_count: int,
        error_rate: float = 0.01,
        key_mode: str = "digest",
    ) -> ExactDedupState:
        if num_partitions < 1:
            raise ValueError("num_partitions must be >= 1")
        return cls(uri, num_partitions, partition_capacity(expected_count, num_partitions), error_rate, key_mode)

    @classmethod
    def load(cls, uri: str) -> ExactDedupState:
        manifest = json.loads(read_bytes(_join(uri, MANIFEST)).decode("utf-8"))
        if manifest.get("format") != STATE_FORMAT:
            raise ValueError(f"{uri}: not an rpv2 exact-dedup state (format {manifest.get('format')!r})")
        return cls(
            uri=uri,
            num_partitions=manifest["num_partitions"],
            capacity_per_partition=manifest["capacity_per_partition"],
            error_rate=manifest["error_rate"],
            key_mode=manifest["key_mode"],
            generation=manifest["generation"],
            snapshots=list(manifest["snapshots"]),
            partition_files={int(k): v for k, v in manifest["partition_files"].items()},
        )

    @classmethod
    def open_or_create(
        cls, uri: str | None, num_partitions: int, expected_count: int, error_rate: float, key_mode: str
    ) -> ExactDedupState:
        """Load the state at ``uri`` when it exists (its settings win), else a fresh one."""
        if uri and exists(_join(uri, MANIFEST)):
            state = cls.load(uri)
            if state.key_mode != key_mode:
                raise ValueError(f"state {uri} was built with key {state.key_mode!r}, not {key_mode!r}")
            return state
        return cls.create(uri, num_partitions, expected_count, error_rate, key_mode)

    @property
    def next_generation(self) -> int:
        return self.generation + 1

    def partition(self, index: int) -> BloomPartition:
        """The partition's filter: loaded from the state when persisted, else a new empty one."""
        rel = self.partition_files.get(index)
        if rel is None or self.uri is None:
            return BloomPartition(self.capacity_per_partition, self.error_rate)
        return BloomPartition.from_bytes(read_bytes(_join(self.uri, rel)))

    def partition_rel_path(self, index: int, generation: int) -> str:
        return f"gen-{generation:06d}/partition-{index:05d}-of-{self.num_partitions:05d}.bloom"

    def save_partition(self, index: int, bloom: BloomPartition, generation: int) -> str:
        """Write one partition under ``generation``; returns its path relative to the state dir."""
        rel = self.partition_rel_path(index, generation)
        if self.uri is not None:
            publish_bytes(bloom.to_bytes(), _join(self.uri, rel))
        return rel

    def commit(self, generation: int, new_files: Mapping[int, str], snapshots: Iterable[str]) -> None:
        """Point the manifest at the partitions written by a run (the atomic step)."""
        self.partition_files.update(new_files)
        self.generation = generation
        self.snapshots = sorted(set(self.snapshots) | set(snapshots), reverse=True)
        if self.uri is None:
            return
        manifest = {
            "format": STATE_FORMAT,
            "num_partitions": self.num_partitions,
            "capacity_per_partition": self.capacity_per_partition,
            "error_rate": self.error_rate,
            "key_mode": self.key_mode,
            "generation": self.generation,
            "snapshots": self.snapshots,
            "partition_files": {str(k): v for k, v in sorted(self.partition_files.items())},
        }
        publish_bytes(json.dumps(manifest, indent=1).encode("utf-8"), _join(self.uri, MANIFEST))

    def already_seen(self, snapshots: Iterable[str]) -> list[str]:
        """Snapshots of this input that earlier runs already put in the state (rerunning them would flag
        every document)."""
        return sorted(set(snapshots) & set(self.snapshots))


class SeenSnapshotsError(ValueError):
    """The input holds snapshots the state already has: rerunning them would flag every document."""


def refuse_seen_snapshots(state: ExactDedupState, snapshots: Iterable[str], hint: str) -> None:
    """Raise :class:`SeenSnapshotsError` (one line; ``hint`` says how to proceed) when ``state`` already
    holds any of ``snapshots``. Checked before a run starts, so nothing is written."""
    seen = state.already_seen(snapshots)
    if seen:
        raise SeenSnapshotsError(
            f"state {state.uri} already holds snapshot(s) {', '.join(seen)}: rerunning them would flag every "
            f"document; {hint}"
        )


@dataclass
class PartitionResult:
    index: int
    flags: list[tuple[KeyedDoc, bool]]
    stats: dict
    rel_path: str


def dedup_partition(
    index: int, firsts: Iterable[KeyedDoc], state: ExactDedupState, generation: int
) -> PartitionResult:
    """Load partition ``index``, flag the run's first occurrences seen by earlier runs, insert the run's
    keys, persist the updated filter. ``firsts`` holds one document per distinct key (re-iterable)."""
    bloom = state.partition(index)
    flags = list(query_then_insert(firsts, bloom))
    rel = state.save_partition(index, bloom, generation)
    stats = bloom.stats() | {"partition": index, "run_keys": len(flags), "seen_before": sum(f for _, f in flags)}
    return PartitionResult(index, flags, stats, rel)


def run_exact_dedup(
    records: Iterable[Mapping], state: ExactDedupState, key_mode: str | None = None
) -> tuple[list[tuple[KeyedDoc, bool]], list[dict], DedupCounts]:
    """Single-process exact dedup of ``records`` against (and into) ``state``; commits the state.

    Returns every keyed document with its flag (sorted by id), per-partition stats, and counts
    (documents, duplicates, bad records by reason). The Beam transform computes the same flags.
    """
    key_mode = key_mode or state.key_mode
    counts = DedupCounts()
    groups: dict[str, list[KeyedDoc]] = defaultdict(list)
    for record in records:
        doc, reason = keyed_doc(record, key_mode)
        if doc is None:
            counts.bad(reason or "unknown")
            continue
        groups[doc.key].append(doc)
    flags: list[tuple[KeyedDoc, bool]] = []
    partitions: dict[int, list[KeyedDoc]] = defaultdict(list)
    for docs in groups.values():
        first, later = split_key_group(docs)
        flags.extend((doc, True) for doc in later)
        partitions[partition_of(first.key, state.num_partitions)].append(first)
    del groups
    generation = state.next_generation
    stats: list[dict] = []
    new_files: dict[int, str] = {}
    for index in sorted(partitions):
        result = dedup_partition(index, partitions.pop(index), state, generation)
        flags.extend(result.flags)
        stats.append(result.stats)
        new_files[index] = result.rel_path
    flags.sort(key=lambda item: _row_number(item[0].doc_id))
    state.commit(generation, new_files, {doc.snapshot for doc, _ in flags})
    counts.documents = len(flags)
    counts.duplicates = sum(flag for _, flag in flags)
    return flags, stats, counts


# ---------------------------------------------------------------------------------------------------------
# input: the columns exact dedup reads from a documents file


def exact_columns(key_mode: str) -> list[str]:
    return ["id", "id_int", "digest", "raw_content"] if key_mode == "text-sha1" else ["id", "id_int", "digest"]


def read_exact_columns(source, key_mode: str) -> list[dict]:
    """The columns exact dedup needs from one documents file (a path or a file object), as dicts; missing
    columns are None, so the records are counted as bad by reason rather than failing the file."""
    from pipeline.dataset.files import read_parquet

    rows = read_parquet(source, exact_columns(key_mode), missing_ok=True).to_pylist()
    for row in rows:
        for column in exact_columns(key_mode):
            row.setdefault(column, None)
    return rows


# ---------------------------------------------------------------------------------------------------------
# outputs: sibling datasets of <out>/documents

DUPLICATES_DATASET = "duplicates_exact"  # RPv2's duplicates parquet schema, flagged documents only
FLAGS_DATASET = "is_duplicate_exact"  # every document: id, id_int, is_duplicate_exact
SUMMARY_NAME = "_summary.json"  # the run summary, in DUPLICATES_DATASET


def duplicates_schema():
    """RPv2's duplicates parquet schema (bloomfilter.py): shard_id, doc_id, digest (all strings)."""
    import pyarrow as pa

    return pa.schema([("shard_id", pa.string()), ("doc_id", pa.string()), ("digest", pa.string())])


def flags_schema():
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("id_int", pa.uint64()), ("is_duplicate_exact", pa.bool_())])

def output_rel_path(dataset: str, shard_id: str) -> str:
    """``<dataset>/<rel path of shard_id>`` (pipeline.dataset.layout)."""
    from pipeline.dataset.layout import rel_path_of_shard_id

    return f"{dataset}/{rel_path_of_shard_id(shard_id)}"


def shard_tables(flags: Iterable[tuple[KeyedDoc, bool]]):
    """The two result tables of one source file: RPv2's duplicates (flagged rows only) and every row's
    flag; rows sorted by (shard, row)."""
    import pyarrow as pa

    rows = sorted(flags, key=lambda item: _row_number(item[0].doc_id))
    dups = [d for d, flag in rows if flag]
    dup_table = pa.Table.from_pydict(
        {
            "shard_id": [shard_id_of(d.doc_id) for d in dups],
            "doc_id": [d.doc_id for d in dups],
            "digest": [d.digest for d in dups],
        },
        schema=duplicates_schema(),
    )
    flag_table = pa.Table.from_pydict(
        {
            "id": [d.doc_id for d, _ in rows],
            "id_int": [d.id_int for d, _ in rows],
            "is_duplicate_exact": [bool(flag) for _, flag in rows],
        },
        schema=flags_schema(),
    )
    return dup_table, flag_table


def write_shard_outputs(out_uri: str, shard_id: str, flags: Iterable[tuple[KeyedDoc, bool]]) -> dict:
    """Write one source file's results to both datasets (zstd Parquet, atomic when local).

    The file names come from the source shard, so a rerun or a Beam retry overwrites the same files with
    the same bytes. Returns {"snapshot", "documents", "duplicates"} for the run summary.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    dup_table, flag_table = shard_tables(flags)
    for dataset, table in ((DUPLICATES_DATASET, dup_table), (FLAGS_DATASET, flag_table)):
        buf = pa.BufferOutputStream()
        pq.write_table(table, buf, compression="zstd")
        publish_bytes(buf.getvalue().to_pybytes(), _join(out_uri, output_rel_path(dataset, shard_id)))
    return {
        "snapshot": snapshot_of(shard_id) or "unknown",
        "documents": flag_table.num_rows,
        "duplicates": dup_table.num_rows,
    }


def write_outputs(out_uri: str, flags: Iterable[tuple[KeyedDoc, bool]]) -> list[dict]:
    """Write every source file's results (single-process path); returns the per-file counts."""
    by_shard: dict[str, list[tuple[KeyedDoc, bool]]] = defaultdict(list)
    for doc, flag in flags:
        by_shard[shard_id_of(doc.doc_id)].append((doc, flag))
    return [write_shard_outputs(out_uri, shard, by_shard[shard]) for shard in sorted(by_shard)]


# ---------------------------------------------------------------------------------------------------------
# the run summary


def merge_counts(counts: Iterable[Mapping]) -> dict[str, dict[str, int]]:
    """Per-snapshot documents and duplicates from the per-file counts of :func:`write_shard_outputs`."""
    per_snapshot: dict[str, dict[str, int]] = {}
    for c in counts:
        entry = per_snapshot.setdefault(c["snapshot"], {"documents": 0, "duplicates": 0})
        entry["documents"] += c["documents"]
        entry["duplicates"] += c["duplicates"]
    return dict(sorted(per_snapshot.items()))


def summarize(partition_results: Iterable[Mapping], per_snapshot: Mapping, state: ExactDedupState) -> dict:
    """Run summary: per-snapshot counts, and memory per partition against the optimum.

    ``partition_results`` holds one ``{"partition", "stats"}`` per partition the run touched (any order).
    """
    stats = [r["stats"] for r in sorted(partition_results, key=lambda r: r["partition"])]
    return {
        "documents": sum(v["documents"] for v in per_snapshot.values()),
        "duplicates": sum(v["duplicates"] for v in per_snapshot.values()),
        "per_snapshot": dict(per_snapshot),
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


def with_state(summary: dict, state: ExactDedupState) -> dict:
    """The summary with the state's generation and snapshots after the commit."""
    summary["state_generation"] = state.generation
    summary["state_snapshots"] = state.snapshots
    return summary


def summary_uri(out_uri: str) -> str:
    return _join(out_uri, f"{DUPLICATES_DATASET}/{SUMMARY_NAME}")


def write_summary(summary: Mapping, out_uri: str) -> None:
    """``<out>/duplicates_exact/_summary.json``, atomically."""
    publish_bytes(json.dumps(summary, indent=1, sort_keys=True).encode("utf-8"), summary_uri(out_uri))


def commit_and_summarize(
    partition_results: list[dict], per_snapshot: dict, state: ExactDedupState, generation: int, out_uri: str | None
) -> dict:
    """Write the run summary, then point the state manifest at the run's partition files (the commit).

    The summary comes first and names the generation it commits (``committed_generation``): a run killed
    between the two left a summary the state does not hold (the rerun redoes exact dedup), and a run
    killed after the commit left both, so a resumed ``rpv2 run`` sees its exact dedup done and goes on."""
    summary = summarize(partition_results, per_snapshot, state)
    summary["committed_generation"] = generation
    summary["state_generation"] = generation
    summary["state_snapshots"] = sorted(set(state.snapshots) | set(per_snapshot), reverse=True)
    if out_uri is not None:
        write_summary(summary, out_uri)
    state.commit(generation, {r["partition"]: r["rel_path"] for r in partition_results}, per_snapshot.keys())
    return summary
