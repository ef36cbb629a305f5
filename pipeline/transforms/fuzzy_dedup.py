"""Fuzzy dedup: MinHash LSH star edges and connected components on Beam, and the engines' drivers.

Data flow (ARCHITECTURE.md, "fuzzy dedup"); every element is a chunk of numpy arrays or an Arrow table,
never one tuple per document or band::

    documents file ─► (band fingerprint partition, [fingerprint, key bytes, node] arrays)
                   ─► per partition: min node per band key (first pass), star edges member→min (second)
                   ─► R × [large-star, small-star] (Kiveris et al. 2014) on (node partition, edge arrays)
                   ─► per node partition: node → component minimum, joined with each file's nodes
                   ─► per file: flags table (RPv2 clusters + is_representative) ─► one file per shard

Bounded memory: a documents file is read in record batches of ``batch_rows`` rows
(``pyarrow.parquet.ParquetFile.iter_batches``, :data:`DEFAULT_BATCH_ROWS`) and every per-file step works
on one batch: its table, bands and band rows, its refs, its labels and flags (each batch is its own
source key). A grouped step holds the distinct keys of one pass over its partition
(``dedup.components.KeyMins``: a first pass reduces the streamed chunks to a minimum per key, a second
streams them again to emit edges), never a list per band or per node, so a band shared by millions of
boilerplate pages costs one key, and gives one edge per member, not all pairs. A partition whose
distinct keys could exceed ``pass_rows`` is split into several passes by hash (``subpass_count``), and
its grouped values are iterated as the runner hands them over (a tagged ``GroupByKey``, not
``CoGroupByKey``, which lists each side of a key in memory), so no step holds all signatures of the
input, whatever its size. What is still bounded only by a unit larger than a batch: a band partition's
pass keeps its star edges until the pass has checked every key's bytes (at most ~``pass_rows`` edges),
and the writer holds one output file's flag rows (id, id_int, shard_id, cluster_id; no signatures) to
sort them.

Iteration: Beam graphs have no loops. :class:`StarRounds` unrolls a fixed number of rounds and counts,
per round, the edges a step moved (``cc_round_<i>_moves``); a round with 0 moves proves convergence (see
``dedup/components.py``), later rounds are then no-ops. :class:`FuzzyDedupFiles` (documents file paths
-> outputs) runs ``rounds_per_pass`` rounds inside the pipeline that applies it, ``rpv2 dedup fuzzy
--engine beam``'s (:func:`run_beam`) or ``rpv2 run``'s, and keeps the edge set and the input paths in
``<root>/_work/``. In practice LSH star graphs converge in 2-4 rounds, so that pipeline usually
finishes the job; when its last round still moved edges, :func:`finish_passes` continues with passes
of ``rounds_per_pass`` rounds as successive pipelines on the edge files (nothing recomputed) until one
converges, bounded by ``max_rounds`` (a non-converging input fails loudly instead of writing wrong
clusters), and rewrites the outputs.

Outputs under ``<out>/clusters_sim<t>/``:

* ``clusters/<snapshot>/<shard>/<lang>_<bucket>.clusters.parquet``: RPv2's clusters (``id, id_int,
  cluster_id, shard_id``; RPv2 ``run_lsh.py``) for documents in a component of two or more, plus
  ``is_representative``.
* ``documents/snapshot=<s>/language=<l>/bucket=<b>/<shard>.parquet``: every input document (``id,
  id_int, shard_id, cluster_id, is_representative``), singletons and short documents (no signature)
  included, in the input's partitioning so it joins by id.

``cluster_id`` is the minimum id_int of the component (RPv2); the kept representative of a cluster is
the document whose ``id_int == cluster_id``; every other member is a near duplicate to drop. The local
engine (numpy + scipy, :mod:`dedup.fuzzy_local`) writes the same files byte for byte: both build them
with the same functions.
"""

from __future__ import annotations

import functools
import logging
import posixpath
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from dedup.components import (
    KeyMins,
    distinct_edges,
    large_star_arrays,
    lookup,
    mix64,
    partition_of,
    small_star_arrays,
    subpass_count,
    subpass_of,
)
from dedup.fuzzy_local import (
    cluster_documents,
    cluster_table,
    complete_columns,
    flag_columns,
    flag_table,
    output_parts,
    prepare_batch,
)
from dedup.lsh import (
    NODE_OFFSET,
    band_rows,
    band_star_edges,
    band_star_edges_exact,
    parse_threshold,
    signature_column,
)
from pipeline.dataset.files import read_parquet
from pipeline.dataset.layout import document_files
from pipeline.io.publish import publish_table
from pipeline.progress import BEAM_NAMESPACE as PROGRESS_NAMESPACE
from pipeline.transforms.read_files import ReadEachFile
from pipeline.transforms.runner import new_pipeline, run_and_wait
from pipeline.transforms.summary import namespace_counters

log = logging.getLogger(__name__)

NAMESPACE = "rpv2.fuzzy_dedup"
DEFAULT_ROUNDS = 8  # FuzzyDedup's unrolled rounds when used alone
DEFAULT_ROUNDS_PER_PASS = 4  # rounds inside one pipeline: LSH star graphs converge in 2-4
DEFAULT_MAX_ROUNDS = 64  # give up (and write nothing final) after this many rounds
# Shuffle partitions of band keys and of nodes: the parallelism of the grouped steps. A file (or batch)
# sends one chunk per partition, so more partitions mean smaller chunks, not less memory per step.
DEFAULT_PARTITIONS = 16
# Distinct keys one pass of a grouped step may hold (~80 bytes each for band keys); a partition with
# more rows than this is processed in several passes by hash.
DEFAULT_PASS_ROWS = 1 << 20
# Rows of a documents file read at once: every per-file step holds one such batch, never a whole file, so
# a worker's memory does not grow with the size of an input file. 16,384 rows are ~8 MiB of signatures and
# ~12 MiB of band rows (fingerprint, key bytes, node) at 0.7; large enough that per-batch overhead is noise.
DEFAULT_BATCH_ROWS = 1 << 14
# Bytes read from a file at once: a buffered stream reads a column chunk page by page, where an unbuffered
# one reads the whole chunk (a file's whole row group, all of a 200,000-row file as pyarrow writes it).
_READ_BUFFER_BYTES = 1 << 20
_FLUSH_ROWS = 1 << 18  # edges per output chunk

Edges = tuple[np.ndarray, np.ndarray]  # (hi, lo) int64 node arrays, hi > lo


class FuzzyDedupError(RuntimeError):
    """Fuzzy dedup could not finish: the rounds did not converge, or convergence cannot be told."""


# ---------------------------------------------------------------------------------------------- input


def output_root(out_dir: str, threshold: float) -> str:
    return posixpath.join(out_dir.rstrip("/"), f"clusters_sim{parse_threshold(threshold)}")


def _dedup_columns(threshold: float) -> tuple[str, ...]:
    return ("id", "id_int", "shard_id", signature_column(threshold))


def read_dedup_columns(source: Any, threshold: float) -> pa.Table:
    """id, id_int, shard_id and the threshold's band column of one whole documents file (a seekable file
    object: only these columns' pages are read, never the text), for the local engine.

    id_int and shard_id are derived from id (RPv2's rules) where a file lacks them.
    """
    return complete_columns(read_parquet(source, _dedup_columns(threshold), missing_ok=True),
                            signature_column(threshold))


def iter_dedup_columns(source: Any, threshold: float, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.Table]:
    """:func:`read_dedup_columns` of one documents file as tables of at most ``batch_rows`` rows, read
    one record batch at a time (on the calling thread, as ``read_parquet`` explains), so the caller
    never holds the whole file. An empty file gives no table."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source, pre_buffer=False, buffer_size=_READ_BUFFER_BYTES)
    try:
        names = set(parquet.schema_arrow.names)
        wanted = [c for c in _dedup_columns(threshold) if c in names]
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=wanted, use_threads=False):
            yield complete_columns(pa.Table.from_batches([batch]), signature_column(threshold))
    finally:
        parquet.close()


# ---------------------------------------------------------------------------------------- Beam steps


def _dedup_batches(path: str, handle: Any, threshold: float, batch_rows: int) -> Iterator[tuple[str, pa.Table]]:
    """(``<path>#<batch>``, table of id, id_int, shard_id, signature_sim<t>) per record batch of at most
    ``batch_rows`` rows of one documents file: each batch is a source of its own downstream, so no step
    holds a whole file."""
    for index, table in enumerate(iter_dedup_columns(handle, threshold, batch_rows)):
        yield f"{path}#{index}", table


def _split(parts: np.ndarray, n_parts: int, *arrays: np.ndarray) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
    """(partition, the rows of ``arrays`` in it) for every non-empty partition."""
    order = np.argsort(parts, kind="stable")
    bounds = np.searchsorted(parts[order], np.arange(n_parts + 1))
    for p in range(n_parts):
        if bounds[p + 1] > bounds[p]:
            rows = order[bounds[p]:bounds[p + 1]]
            yield p, tuple(a[rows] for a in arrays)


class _KeyBatch(beam.DoFn):
    """Per documents table (a file or a batch, keyed by its source): its refs (id, id_int, shard_id),
    its nodes per node partition (for the labels join) and, unless ``with_bands`` is off, its band rows
    per band-fingerprint partition."""

    BANDS = "bands"
    NODES = "nodes"

    def __init__(self, threshold: float, parts: int, with_bands: bool = True):
        self._threshold = threshold
        self._parts = parts
        self._with_bands = with_bands
        self._counters = {name: Metrics.counter(NAMESPACE, name) for name in (
            "documents", "documents_without_signature", "documents_bad_signature", "documents_without_id")}

    def process(self, keyed: tuple[str, pa.Table]) -> Iterator[Any]:
        source, table = keyed
        batch = prepare_batch(table, self._threshold)
        if self._with_bands:
            for name, value in batch.counters.items():
                if value:
                    self._counters[name].inc(value)
            if batch.counters["documents_bad_signature"]:
                log.warning("fuzzy dedup: %s (batch): %d bad signatures (wrong band count or width); those documents "
                            "are their own clusters", source, batch.counters["documents_bad_signature"])
        yield source, batch.refs
        nodes = np.unique(batch.nodes)
        for p, (part_nodes,) in _split(partition_of(mix64(nodes), self._parts), self._parts, nodes):
            yield beam.pvalue.TaggedOutput(self.NODES, (p, (source, part_nodes)))
        if not self._with_bands or not len(batch.band_rows):
            return
        fp, keys, nodes = band_rows(batch.nodes[batch.band_rows], batch.bands)
        for p, chunk in _split(partition_of(fp, self._parts), self._parts, fp, keys, nodes):
            yield beam.pvalue.TaggedOutput(self.BANDS, (p, chunk))


class _EdgeBuffer:
    """Collects edge arrays and hands them out as distinct-edge chunks of ~``_FLUSH_ROWS``."""

    def __init__(self) -> None:
        self._hi: list[np.ndarray] = []
        self._lo: list[np.ndarray] = []
        self._rows = 0

    def add(self, hi: np.ndarray, lo: np.ndarray) -> Iterator[Edges]:
        if len(hi):
            self._hi.append(hi)
            self._lo.append(lo)
            self._rows += len(hi)
        if self._rows >= _FLUSH_ROWS:
            yield from self.flush()

    def flush(self) -> Iterator[Edges]:
        if self._rows:
            yield distinct_edges(np.concatenate(self._hi), np.concatenate(self._lo))
        self._hi, self._lo, self._rows = [], [], 0


def _passes(chunks: Iterable[tuple[np.ndarray, ...]], pass_rows: int) -> int:
    return subpass_count(sum(len(c[0]) for c in chunks), pass_rows)


def _subpass_rows(chunk: tuple[np.ndarray, ...], passes: int, subpass: int) -> tuple[np.ndarray, ...]:
    """The rows of a (fingerprints, keys, nodes) chunk in star pass ``subpass`` of ``passes`` (all of them
    in a single pass). Outside _BandStar.process: Beam warns of a DoFn whose process returns values."""
    fp, keys, nodes = chunk
    if passes == 1:
        return fp, keys, nodes
    sel = subpass_of(fp, passes) == subpass
    return fp[sel], keys[sel], nodes[sel]


class _BandStar(beam.DoFn):
    """One band-fingerprint partition -> star edges (member, minimum node of its band key), as RPv2's
    ``LSH.__build_edges`` but without a member list per band: a first pass over the streamed chunks
    keeps one (minimum, key bytes) per key, a second links every row to its key's minimum."""

    def __init__(self, pass_rows: int):
        self._pass_rows = pass_rows
        self._collisions = Metrics.counter(NAMESPACE, "band_fingerprint_collisions")

    def process(self, grouped: tuple[int, Iterable[tuple[np.ndarray, ...]]]) -> Iterator[Edges]:
        _, chunks = grouped
        passes = _passes(chunks, self._pass_rows)
        for j in range(passes):
            rows = functools.partial(_subpass_rows, passes=passes, subpass=j)
            state = KeyMins()
            for chunk in chunks:
                fp, keys, nodes = rows(chunk)
                state.add(fp, nodes, keys)
            found = state.finish()
            out = _EdgeBuffer()
            pending = []
            for chunk in chunks:
                fp, keys, nodes = rows(chunk)
                edges = band_star_edges(fp, keys, nodes, found)
                if edges is None:
                    break
                pending.append(edges)
            else:
                for hi, lo in pending:
                    yield from out.add(hi, lo)
                yield from out.flush()
                continue
            self._collisions.inc()  # two different band keys share a 64-bit fingerprint: exact slow path
            yield from out.add(*band_star_edges_exact([rows(c)[1:] for c in chunks]))
            yield from out.flush()


class _ByNode(beam.DoFn):
    """Edge chunks -> (node partition, (u, v)) keyed by u: u = hi (``both`` off), or both directions."""

    def __init__(self, parts: int, both: bool):
        self._parts = parts
        self._both = both

    def process(self, edges: Edges) -> Iterator[tuple[int, Edges]]:
        hi, lo = edges
        u, v = (np.concatenate([hi, lo]), np.concatenate([lo, hi])) if self._both else (hi, lo)
        yield from _split(partition_of(mix64(u), self._parts), self._parts, u, v)


def _node_rows(chunks: Iterable[Edges], passes: int, j: int) -> Iterator[Edges]:
    for u, v in chunks:
        if passes == 1:
            yield u, v
        else:
            sel = subpass_of(mix64(u), passes) == j
            yield u[sel], v[sel]


def _node_mins(chunks: Iterable[Edges], passes: int, j: int) -> tuple[np.ndarray, ...]:
    state = KeyMins()
    for u, v in _node_rows(chunks, passes, j):
        state.add(u, v)
    return state.finish()


class _StarStep(beam.DoFn):
    """Large-star (on both directions of the edges, keyed by u) or small-star (on canonical edges keyed
    by hi) over one node partition: per pass, the minimum neighbour of every node, then the step's edges
    (``dedup.components.large_star_arrays`` / ``small_star_arrays``)."""

    def __init__(self, kind: str, round_index: int, pass_rows: int):
        self._kind = kind
        self._pass_rows = pass_rows
        self._moves = Metrics.counter(NAMESPACE, f"cc_round_{round_index:03d}_moves")
        self._edges = Metrics.counter(NAMESPACE, f"cc_round_{round_index:03d}_{kind}_edges_out")

    def process(self, grouped: tuple[int, Iterable[Edges]]) -> Iterator[Edges]:
        _, chunks = grouped
        step = large_star_arrays if self._kind == "large_star" else small_star_arrays
        passes = _passes(chunks, self._pass_rows)
        for j in range(passes):
            mins = _node_mins(chunks, passes, j)
            out = _EdgeBuffer()
            moved = 0
            for u, v in _node_rows(chunks, passes, j):
                hi, lo, moves = step(u, v, mins)
                moved += moves
                keep = hi != lo
                yield from out.add(hi[keep], lo[keep])
            for edges in out.flush():
                self._edges.inc(len(edges[0]))
                yield edges
            if moved:
                self._moves.inc(moved)


class StarRound(beam.PTransform):
    """One Kiveris round (large-star, then small-star) over canonical edge chunks (hi, lo), hi > lo.

    Large-star at u: m = min(Γ(u) ∪ {u}); every larger neighbour is re-attached to m. Small-star at u:
    m = min of u's smaller neighbours; u and those neighbours are attached to m. Moves are counted in
    ``cc_round_<i>_moves``.
    """

    def __init__(self, round_index: int, parts: int = DEFAULT_PARTITIONS, pass_rows: int = DEFAULT_PASS_ROWS):
        super().__init__()
        self._round = round_index
        self._parts = parts
        self._pass_rows = pass_rows

    def expand(self, edges):
        return (
            edges
            | "Adjacency" >> beam.ParDo(_ByNode(self._parts, both=True))
            | "GroupLarge" >> beam.GroupByKey()
            | "LargeStar" >> beam.ParDo(_StarStep("large_star", self._round, self._pass_rows))
            | "ByHigher" >> beam.ParDo(_ByNode(self._parts, both=False))
            | "GroupSmall" >> beam.GroupByKey()
            | "SmallStar" >> beam.ParDo(_StarStep("small_star", self._round, self._pass_rows))
        )


class StarRounds(beam.PTransform):
    """``rounds`` unrolled :class:`StarRound`s, numbered from ``first_round``."""

    def __init__(self, rounds: int, first_round: int = 0, parts: int = DEFAULT_PARTITIONS,
                 pass_rows: int = DEFAULT_PASS_ROWS):
        super().__init__()
        self._rounds = rounds
        self._first = first_round
        self._parts = parts
        self._pass_rows = pass_rows

    def expand(self, edges):
        for i in range(self._first, self._first + self._rounds):
            edges = edges | f"Round{i:03d}" >> StarRound(i, self._parts, self._pass_rows)
        return edges


class _TaggedValues:
    """The values of one tag among a :class:`JoinByKey` group, re-iterable and lazy: each iteration walks
    the runner's grouped values again and keeps one tag's, so nothing is listed in memory. Built inside
    the consuming DoFn (:func:`tag_views`), never an element itself (a coder would materialise it)."""

    def __init__(self, tagged: Iterable[tuple[str, Any]], tag: str):
        self._tagged = tagged
        self._tag = tag

    def __iter__(self) -> Iterator[Any]:
        return (value for tag, value in self._tagged if tag == self._tag)


def tag_views(tagged: Iterable[tuple[str, Any]], tags: Iterable[str]) -> dict[str, Iterable[Any]]:
    """A :class:`JoinByKey` group's values -> ``{tag: lazy values}``."""
    return {tag: _TaggedValues(tagged, tag) for tag in tags}


def _tag(tag: str):
    return lambda key, value: (key, (tag, value))


class JoinByKey(beam.PTransform):
    """``{tag: PCollection of (key, value)}`` -> (key, iterable of (tag, value)), which the consuming
    DoFn reads through :func:`tag_views`: a join like ``beam.CoGroupByKey`` without its lists.
    CoGroupByKey lists every tag's values of a key in memory, which for a node partition would be its
    whole share of the edges and of the documents' nodes, whatever ``pass_rows`` says."""

    def expand(self, tagged):
        return (
            [pcoll | f"Tag{tag}" >> beam.MapTuple(_tag(tag)) for tag, pcoll in sorted(tagged.items())]
            | "Flatten" >> beam.Flatten()
            | "Group" >> beam.GroupByKey()
        )


class _Label(beam.DoFn):
    """One node partition: the edges' adjacency and every source's nodes -> (source, (nodes, labels))
    for the source's nodes that have an edge, labelled min(u, min Γ(u)) (the component minimum once the
    rounds converged). Both are streamed (:class:`JoinByKey`): a pass holds its nodes' minima only."""

    def __init__(self, pass_rows: int):
        self._pass_rows = pass_rows

    def process(self, grouped: tuple[int, Iterable[tuple[str, Any]]]) -> Iterator[tuple[str, Edges]]:
        _, tagged = grouped
        parts = tag_views(tagged, ("adj", "nodes"))
        adjacency, nodes = parts["adj"], parts["nodes"]
        passes = _passes(adjacency, self._pass_rows)
        for j in range(passes):
            keys, nb_min = _node_mins(adjacency, passes, j)[:2]
            if not len(keys):
                continue
            for source, part_nodes in nodes:
                if passes > 1:
                    part_nodes = part_nodes[subpass_of(mix64(part_nodes), passes) == j]
                idx, found = lookup(keys, part_nodes)
                if found.any():
                    labelled = part_nodes[found]
                    yield source, (labelled, np.minimum(labelled, nb_min[idx[found]]))


class _Flags(beam.DoFn):
    """One source: its refs and the labels of its nodes -> its flag table (``flag_columns``)."""

    def process(self, grouped: tuple[str, Mapping[str, Iterable[Any]]]) -> Iterator[pa.Table]:
        _, parts = grouped
        labels = list(parts["labels"])
        nodes = np.concatenate([n for n, _ in labels]) if labels else np.zeros(0, np.int64)
        cluster_nodes = np.concatenate([c for _, c in labels]) if labels else np.zeros(0, np.int64)
        order = np.argsort(nodes, kind="stable")
        nodes, cluster_nodes = nodes[order], cluster_nodes[order]
        for refs in parts["refs"]:
            id_ints = refs.column("id_int").to_numpy(zero_copy_only=False).astype(np.uint64)
            own = (id_ints ^ np.uint64(NODE_OFFSET)).view(np.int64)
            idx, found = lookup(nodes, own)
            cluster = np.where(found, cluster_nodes[idx] if len(nodes) else own, own)
            yield flag_columns(refs, (cluster.view(np.uint64) ^ np.uint64(NODE_OFFSET)), found)


class ClusterTables(beam.PTransform):
    """(source, documents table) -> one flag table per source (:func:`dedup.fuzzy_local.flag_columns`:
    id, id_int, shard_id, cluster_id, is_representative, in_cluster).

    ``rounds`` unrolled rounds; they converged when the counter ``cc_round_<rounds-1>_moves`` is 0
    (:func:`converged`). ``self.edges`` is then the edge set after the rounds, which
    :class:`FuzzyDedupFiles` keeps so that a driver can continue from it when they did not. Given
    ``edges`` (converged ones, from a driver), the bands are not keyed again and no round runs.
    """

    def __init__(self, threshold: float, rounds: int = DEFAULT_ROUNDS, *, edges: Any = None,
                 parts: int = DEFAULT_PARTITIONS, pass_rows: int = DEFAULT_PASS_ROWS):
        super().__init__()
        self._threshold = parse_threshold(threshold)
        self._rounds = rounds
        self._parts = parts
        self._pass_rows = pass_rows
        self.edges = edges

    def expand(self, tables):
        given = self.edges is not None
        keyed = tables | "KeyBatches" >> beam.ParDo(
            _KeyBatch(self._threshold, self._parts, with_bands=not given)
        ).with_outputs(_KeyBatch.BANDS, _KeyBatch.NODES, main="refs")
        if not given:
            self.edges = (
                keyed[_KeyBatch.BANDS]
                | "GroupBands" >> beam.GroupByKey()
                | "BandStar" >> beam.ParDo(_BandStar(self._pass_rows))
                | "Components" >> StarRounds(self._rounds, 0, self._parts, self._pass_rows)
            )
        adjacency = self.edges | "LabelAdjacency" >> beam.ParDo(_ByNode(self._parts, both=True))
        labels = (
            {"adj": adjacency, "nodes": keyed[_KeyBatch.NODES]}
            | "JoinNodes" >> JoinByKey()
            | "Label" >> beam.ParDo(_Label(self._pass_rows))
        )
        return {"refs": keyed.refs, "labels": labels} | "JoinLabels" >> beam.CoGroupByKey() | beam.ParDo(_Flags())


def _batch_table(docs: list[Mapping[str, Any]], field: str, column: str) -> tuple[str, pa.Table]:
    """A batch of document dicts -> (a unique source key, its table with the signatures in ``column``)."""
    schema = pa.schema([("id", pa.string()), ("id_int", pa.uint64()), ("shard_id", pa.string()),
                        (column, pa.list_(pa.binary()))])
    table = pa.Table.from_pylist([{**{k: d.get(k) for k in schema.names[:3]}, column: d.get(field)} for d in docs],
                                 schema)
    return uuid.uuid4().hex, complete_columns(table, column)


class FuzzyDedup(beam.PTransform):
    """Documents (dicts with id, id_int, shard_id and ``signature_sim<t>``) -> one flag record per
    document: ``{id, id_int, shard_id, cluster_id, is_representative, in_cluster}``, by
    :class:`ClusterTables` on batches of the documents. ``self.edges``: as there."""

    def __init__(self, threshold: float, rounds: int = DEFAULT_ROUNDS, signature_field: str | None = None, *,
                 parts: int = DEFAULT_PARTITIONS, pass_rows: int = DEFAULT_PASS_ROWS):
        super().__init__()
        self._threshold = parse_threshold(threshold)
        self._rounds = rounds
        self._field = signature_field or signature_column(self._threshold)
        self._sizes = {"parts": parts, "pass_rows": pass_rows}
        self.edges = None

    def expand(self, docs):
        cluster = ClusterTables(self._threshold, self._rounds, **self._sizes)
        field = self._field
        column = signature_column(self._threshold)
        flags = (
            docs
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=10_000)
            | "ToTable" >> beam.Map(lambda batch: _batch_table(batch, field, column))
            | "Cluster" >> cluster
        )
        self.edges = cluster.edges
        return flags | "Rows" >> beam.FlatMap(lambda t: t.to_pylist())


class _WriteGroup(beam.DoFn):
    def __init__(self, root: str):
        self._root = root

    def process(self, grouped: tuple[tuple[str, str], Iterable[pa.Table]]) -> Iterator[str]:
        (kind, relpath), parts = grouped
        table = cluster_table(parts) if kind == "clusters" else flag_table(parts)
        path = posixpath.join(self._root, kind, relpath)
        publish_table(table, path)
        if kind == "documents":  # one per input file: the units of the command's progress
            Metrics.counter(PROGRESS_NAMESPACE, "files_done").inc()
        yield path


class WriteFuzzyDedup(beam.PTransform):
    """Flag tables -> ``<out>/clusters_sim<t>/{clusters,documents}/...`` (one file per shard; a file's
    parts are grouped once, bounded by one shard's size, and sorted, so the bytes do not depend on the
    worker count)."""

    def __init__(self, out_dir: str, threshold: float):
        super().__init__()
        self._root = output_root(out_dir, threshold)

    def expand(self, flags):
        return (
            flags
            | "ByOutputFile" >> beam.FlatMap(lambda t: (((kind, name), rows) for kind, name, rows in output_parts(t)))
            | "GroupOutputFiles" >> beam.GroupByKey()
            | "WriteFiles" >> beam.ParDo(_WriteGroup(self._root))
        )


class ReadDedupDocuments(beam.PTransform):
    """Documents file paths -> (``<path>#<batch>``, table of id, id_int, shard_id and the threshold's
    signature column) per record batch of at most ``batch_rows`` rows. A file that cannot be read is
    counted (``unreadable_files``) and logged, the others go on; one that fails after some batches
    keeps those (counted in ``documents`` and flagged) and loses the rest, as the log says."""

    def __init__(self, threshold: float, batch_rows: int = DEFAULT_BATCH_ROWS):
        super().__init__()
        self._threshold = threshold
        self._batch_rows = batch_rows

    def expand(self, paths):
        read = functools.partial(_dedup_batches, threshold=self._threshold, batch_rows=self._batch_rows)
        return paths | "ReadFiles" >> ReadEachFile(read, namespace=NAMESPACE, counter="unreadable_files",
                                                   what="fuzzy dedup")


def _work_dir(root: str) -> str:
    return posixpath.join(root, "_work")


def _inputs_prefix(root: str) -> str:
    return posixpath.join(_work_dir(root), "inputs")


def _edges_prefix(root: str, pass_index: int) -> str:
    return posixpath.join(_work_dir(root), f"edges_pass_{pass_index:03d}")


def _edge_lines(edges: Edges) -> Iterator[str]:
    """One text element (lines ``hi lo``) per edge chunk."""
    hi, lo = edges
    if len(hi):
        yield "\n".join(f"{a} {b}" for a, b in zip(hi.tolist(), lo.tolist(), strict=True))


def _parse_edges(lines: list[str]) -> Edges:
    values = np.array(" ".join(lines).split(), dtype=np.int64).reshape(-1, 2)
    return values[:, 0].copy(), values[:, 1].copy()


class ReadEdges(beam.PTransform):
    """Edge text files (``hi lo`` lines) -> edge chunks."""

    def __init__(self, pattern: str):
        super().__init__()
        self._pattern = pattern

    def expand(self, p):
        return (
            p
            | "ReadEdgeLines" >> beam.io.ReadFromText(self._pattern)
            | "BatchEdgeLines" >> beam.BatchElements(min_batch_size=1, max_batch_size=_FLUSH_ROWS)
            | "ParseEdges" >> beam.Map(_parse_edges)
        )


class FuzzyDedupFiles(beam.PTransform):
    """Documents file paths -> ``<out>/clusters_sim<t>/`` written, after ``rounds_per_pass`` star rounds.

    The input paths and the edges after the rounds also go to ``<root>/_work/``, so that
    :func:`finish_passes` can continue when the rounds did not converge. Call :func:`prepare_outputs`
    before the pipeline runs.
    """

    def __init__(self, out_dir: str, threshold: float, rounds_per_pass: int = DEFAULT_ROUNDS_PER_PASS,
                 batch_rows: int = DEFAULT_BATCH_ROWS):
        super().__init__()
        self._out_dir = out_dir
        self._threshold = parse_threshold(threshold)
        self._rounds = rounds_per_pass
        self._batch_rows = batch_rows
        self._root = output_root(out_dir, threshold)

    def expand(self, paths):
        _ = paths | "KeepInputPaths" >> beam.io.WriteToText(_inputs_prefix(self._root))
        dedup = ClusterTables(self._threshold, rounds=self._rounds)
        flags = paths | "ReadDocuments" >> ReadDedupDocuments(self._threshold, self._batch_rows) | "Cluster" >> dedup
        _ = dedup.edges | "EdgeLines" >> beam.FlatMap(_edge_lines) | "KeepEdges" >> beam.io.WriteToText(
            _edges_prefix(self._root, 0)
        )
        return flags | "Write" >> WriteFuzzyDedup(self._out_dir, self._threshold)


# ----------------------------------------------------------------------------------- engines (drivers)


def converged(result: Any, rounds: int = DEFAULT_ROUNDS, first_round: int = 0) -> bool:
    """Whether the :class:`StarRounds` of a finished pipeline converged: its last round moved no edge."""
    return fuzzy_counters(result).get(f"cc_round_{first_round + rounds - 1:03d}_moves", 0) == 0


def fuzzy_counters(result: Any) -> dict[str, int]:
    """The fuzzy-dedup counters of a finished pipeline."""
    return namespace_counters(result, NAMESPACE)


def _clear(paths: Iterable[str]) -> None:
    existing = [p for p in paths if FileSystems.exists(p)]
    if existing:
        FileSystems.delete(existing)


def _outputs(root: str) -> list[str]:
    return [posixpath.join(root, "clusters"), posixpath.join(root, "documents")]


def prepare_outputs(out_dir: str, threshold: float) -> None:
    """Remove an earlier run's outputs and work files (a file per input shard: stale ones would stay)."""
    root = output_root(out_dir, threshold)
    _clear([*_outputs(root), _work_dir(root)])


def finish_passes(
    out_dir: str,
    threshold: float,
    options: Any,
    counters: Mapping[str, int],
    *,
    rounds_per_pass: int = DEFAULT_ROUNDS_PER_PASS,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> dict[str, int]:
    """After the pipeline that applied :class:`FuzzyDedupFiles` (its fuzzy ``counters``): if its last
    round moved edges, run passes of ``rounds_per_pass`` rounds on the kept edges as successive
    pipelines until one converges, then rewrite the outputs from the converged edges. Removes the work
    files. Raises :class:`FuzzyDedupError` when ``max_rounds`` rounds do not converge. Returns the
    counters with ``cc_rounds_run``.

    The rewrite reads the documents again; its counters are not added (they repeat the first read's).
    """
    threshold = parse_threshold(threshold)
    root = output_root(out_dir, threshold)
    totals = dict(counters)
    rounds = rounds_per_pass
    pass_index = 0
    while totals.get(f"cc_round_{rounds - 1:03d}_moves", 0):
        if rounds >= max_rounds:
            raise FuzzyDedupError(f"connected components did not converge in {max_rounds} rounds")
        pass_index += 1
        log.info("fuzzy dedup: not converged after %d rounds; pass %d", rounds, pass_index)
        p = new_pipeline(options)
        _ = (
            p
            | "ReadEdges" >> ReadEdges(_edges_prefix(root, pass_index - 1) + "*")
            | "Rounds" >> StarRounds(rounds_per_pass, rounds)
            | "EdgeLines" >> beam.FlatMap(_edge_lines)
            | "KeepEdges" >> beam.io.WriteToText(_edges_prefix(root, pass_index))
        )
        for name, value in fuzzy_counters(run_and_wait(p)).items():
            totals[name] = totals.get(name, 0) + value
        rounds += rounds_per_pass
    if pass_index:  # the first pipeline wrote its outputs from unconverged edges: rewrite them
        _clear(_outputs(root))
        p = new_pipeline(options)
        edges = p | "ReadEdges" >> ReadEdges(_edges_prefix(root, pass_index) + "*")
        _ = (
            p
            | "InputPaths" >> beam.io.ReadFromText(_inputs_prefix(root) + "*")
            | "ReadDocuments" >> ReadDedupDocuments(threshold, batch_rows)
            | "Flags" >> ClusterTables(threshold, edges=edges)
            | "Write" >> WriteFuzzyDedup(out_dir, threshold)
        )
        run_and_wait(p)
    _clear([_work_dir(root)])
    totals["cc_rounds_run"] = rounds
    return totals


def run_beam(
    in_dir: str,
    out_dir: str,
    threshold: float,
    beam_args: list[str] | None = None,
    rounds_per_pass: int = DEFAULT_ROUNDS_PER_PASS,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> dict[str, int]:
    """``rpv2 dedup fuzzy --engine beam`` on an existing dataset: one pipeline applying
    :class:`FuzzyDedupFiles` to its documents files, then :func:`finish_passes` (as ``rpv2 run`` does).
    ``batch_rows``: rows of a documents file read at once (:data:`DEFAULT_BATCH_ROWS`). Returns the
    summed Beam counters."""
    from apache_beam.options.pipeline_options import PipelineOptions

    threshold = parse_threshold(threshold)
    files = document_files([in_dir])
    if not files:
        raise FileNotFoundError(f"no documents Parquet files under {in_dir}")
    prepare_outputs(out_dir, threshold)
    options = PipelineOptions(beam_args or [])
    p = new_pipeline(options)
    _ = p | "DocumentFiles" >> beam.Create(files) | "FuzzyDedup" >> FuzzyDedupFiles(
        out_dir, threshold, rounds_per_pass, batch_rows)
    counters = fuzzy_counters(run_and_wait(p))
    if not counters:  # the convergence test reads counters; files were given, so some must be reported
        raise FuzzyDedupError(
            "no Beam metrics reported (a runner without metrics?): cannot tell whether the rounds converged"
        )
    return finish_passes(out_dir, threshold, options, counters, rounds_per_pass=rounds_per_pass,
                         max_rounds=max_rounds, batch_rows=batch_rows)


def run_local(in_dir: str, out_dir: str, threshold: float) -> dict[str, int]:
    """``rpv2 dedup fuzzy --engine local``: the same outputs (byte for byte) on one machine, with
    numpy banding and scipy connected components (:mod:`dedup.fuzzy_local`); for slices whose ids and
    bands fit in memory. This driver reads the Parquet and publishes the files."""
    threshold = parse_threshold(threshold)
    files = document_files([in_dir])
    if not files:
        raise FileNotFoundError(f"no documents Parquet files under {in_dir}")
    root = output_root(out_dir, threshold)
    _clear(_outputs(root))
    counters = {"documents": 0, "unreadable_files": 0, "documents_without_id": 0,
                "documents_without_signature": 0, "documents_bad_signature": 0}
    tables = []
    for path in files:
        try:
            with FileSystems.open(path, compression_type="uncompressed") as handle:
                tables.append(read_dedup_columns(handle, threshold))
        except Exception as exc:
            counters["unreadable_files"] += 1
            log.error("fuzzy dedup: cannot read %s: %s", path, exc)
    if not tables:
        return counters
    result = cluster_documents(pa.concat_tables(tables), threshold)
    counters.update(result.counters)
    for rel, table in result.documents.items():
        publish_table(table, posixpath.join(root, "documents", rel))
    for rel, table in result.clusters.items():
        publish_table(table, posixpath.join(root, "clusters", rel))
    counters["clusters_files"] = len(result.clusters)
    counters["documents_files"] = len(result.documents)
    return counters


def cluster_counts(root: str) -> tuple[int, int]:
    """(documents in clusters, clusters) from the clusters files under ``root`` (``clusters_sim<t>``)."""
    clustered = representatives = 0
    for match in FileSystems.match([f"{root.rstrip('/')}/clusters/**.parquet"])[0].metadata_list:
        with FileSystems.open(match.path) as handle:
            column = read_parquet(handle, ["is_representative"]).column("is_representative")
        clustered += len(column)
        representatives += sum(bool(v) for v in column.to_pylist())
    return clustered, representatives
