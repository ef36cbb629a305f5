"""Fuzzy dedup: MinHash LSH star edges and connected components, on Beam and on one machine.

Data flow (ARCHITECTURE.md, "fuzzy dedup")::

    documents ─► (band index + band bytes, node) ─► min per band (combiner) ─► star edges member→min
              ─► R × [large-star, small-star] (Kiveris et al. 2014) ─► node → component minimum
              ─► join with (id, shard_id) ─► clusters (RPv2 schema + is_representative) and per-document flags

No step holds a list per band or per node: band groups and node neighbourhoods are reduced with
``min`` combiners, then streamed once through a CoGroupByKey against that single value (lazily paged
on Dataflow), so a band shared by millions of boilerplate pages costs a worker one value, not a
list, and gives one edge per member, not all pairs. The only grouping that materializes rows is the
writer's, one output file (one input shard) at a time.

Iteration: Beam graphs have no loops. :class:`StarRounds` unrolls a fixed number of rounds
and counts, per round, the edges a step moved (``cc_round_<i>_moves``); a round with 0 moves proves
convergence (see ``dedup/components.py``), later rounds are then no-ops. ``rpv2 dedup fuzzy --engine
beam`` (:func:`run_beam`) runs passes of ``rounds_per_pass`` rounds as successive pipelines that write
and read the edge set as files, and stops at the first pass that converged (bounded by
``max_rounds``): each pass costs one shuffle per step over the *current* edge set, nothing is
recomputed, and a non-converging input fails loudly instead of writing wrong clusters. In practice
LSH star graphs converge in 2-4 rounds, so the first pass usually finishes the job.

Outputs under ``<out>/clusters_sim<t>/``:

* ``clusters/<snapshot>/<shard>/<lang>_<bucket>.clusters.parquet``: RPv2's clusters (``id, id_int,
  cluster_id, shard_id``; RPv2 ``run_lsh.py``) for documents in a component of two or more, plus
  ``is_representative``.
* ``documents/snapshot=<s>/language=<l>/bucket=<b>/<shard>.parquet``: every input document (``id,
  id_int, shard_id, cluster_id, is_representative``), singletons and short documents (no signature)
  included, in the input's partitioning so it joins by id.

``cluster_id`` is the minimum id_int of the component (RPv2); the kept representative of a cluster is
the document whose ``id_int == cluster_id``; every other member is a near duplicate to drop.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from dedup.components import components_local, large_star, small_star
from dedup.lsh import (
    band_keys,
    band_shape,
    check_bands,
    from_node,
    parse_threshold,
    signature_column,
    star_edges,
    to_node,
)
from pipeline.dataset.ids import document_id_int, shard_id_of
from pipeline.dataset.layout import document_files, rel_path_of_shard_id
from pipeline.io.publish import publish_table
from pipeline.transforms.runner import offline_direct_runner

log = logging.getLogger(__name__)

NAMESPACE = "rpv2.fuzzy_dedup"
DEFAULT_ROUNDS = 8

CLUSTER_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("id_int", pa.uint64()),
        ("cluster_id", pa.uint64()),
        ("shard_id", pa.string()),
        ("is_representative", pa.bool_()),
    ]
)
DOCUMENT_FLAG_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("id_int", pa.uint64()),
        ("shard_id", pa.string()),
        ("cluster_id", pa.uint64()),
        ("is_representative", pa.bool_()),
    ]
)

# ---------------------------------------------------------------------------------------------- input


def output_root(out_dir: str, threshold: float) -> str:
    return posixpath.join(out_dir.rstrip("/"), f"clusters_sim{parse_threshold(threshold)}")


def read_dedup_columns(source: Any, threshold: float) -> pa.Table:
    """id, id_int, shard_id and the threshold's band column of one documents file (a seekable file
    object: only these columns' pages are read, never the text).

    id_int and shard_id are derived from id (RPv2's rules) where a file lacks them.
    """
    column = signature_column(threshold)
    parquet = pq.ParquetFile(source)
    names = set(parquet.schema_arrow.names)
    if "id" not in names:
        raise ValueError("no 'id' column")
    wanted = [c for c in ("id", "id_int", "shard_id", column) if c in names]
    table = parquet.read(columns=wanted)
    ids = table.column("id").to_pylist()
    if "id_int" not in names or table.column("id_int").null_count:
        given = table.column("id_int").to_pylist() if "id_int" in names else [None] * len(ids)
        derived = [g if g is not None or i is None else document_id_int(i) for g, i in zip(given, ids, strict=True)]
        if "id_int" in names:
            table = table.drop_columns(["id_int"])
        table = table.append_column("id_int", pa.array(derived, pa.uint64()))
    if "shard_id" not in names:
        table = table.append_column("shard_id", pa.array([None if i is None else shard_id_of(i) for i in ids]))
    if column not in names:
        table = table.append_column(column, pa.nulls(len(table), pa.list_(pa.binary())))
    return table.select(["id", "id_int", "shard_id", column])


def _shard_of(doc: Mapping[str, Any]) -> str:
    return doc.get("shard_id") or shard_id_of(doc["id"])


def clusters_path(shard_id: str) -> str:
    """RPv2's clusters file of a shard: ``2023-06/0000/en_head.clusters.parquet``."""
    stem = shard_id[: -len(".json.gz")] if shard_id.endswith(".json.gz") else shard_id
    return stem + ".clusters.parquet"


def _row_order(doc_id: str) -> tuple[str, int, str]:
    prefix, _, row = doc_id.rpartition("/")
    return (prefix, int(row), "") if row.isdigit() else (prefix, -1, row)


def flag_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """One documents-flags file: rows in input order (by shard, then row number)."""
    ordered = sorted(rows, key=lambda r: (_row_order(r["id"]), r["id_int"]))
    return pa.Table.from_pylist([{k: r[k] for k in DOCUMENT_FLAG_SCHEMA.names} for r in ordered], DOCUMENT_FLAG_SCHEMA)


def cluster_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """One clusters file: rows by cluster, representative first."""
    ordered = sorted(rows, key=lambda r: (r["cluster_id"], r["id_int"], r["id"]))
    return pa.Table.from_pylist([{k: r[k] for k in CLUSTER_SCHEMA.names} for r in ordered], CLUSTER_SCHEMA)


# ---------------------------------------------------------------------------------------- Beam steps


class _ReadDedupColumns(beam.DoFn):
    """Rows (id, id_int, shard_id, bands) of one documents file; a file that cannot be read is
    counted and logged, the others go on."""

    def __init__(self, threshold: float):
        self._threshold = threshold
        self._column = signature_column(threshold)
        self._bad_files = Metrics.counter(NAMESPACE, "unreadable_files")

    def process(self, metadata: Any) -> Iterator[dict[str, Any]]:
        try:
            with FileSystems.open(metadata.path, compression_type="uncompressed") as handle:
                table = read_dedup_columns(handle, self._threshold)
        except Exception as exc:  # a corrupt file must not stop the job
            self._bad_files.inc()
            log.error("fuzzy dedup: cannot read %s: %s", metadata.path, exc)
            return
        for row in table.to_pylist():
            row["bands"] = row.pop(self._column)
            yield row


class _KeyBands(beam.DoFn):
    """Per document: its reference (node, id, shard_id) and one (band key, node) per band."""

    BANDS = "bands"

    def __init__(self, threshold: float, column: str | None = None):
        self._threshold = threshold
        self._column = column
        self._docs = Metrics.counter(NAMESPACE, "documents")
        self._no_sig = Metrics.counter(NAMESPACE, "documents_without_signature")
        self._bad_sig = Metrics.counter(NAMESPACE, "documents_bad_signature")
        self._no_id = Metrics.counter(NAMESPACE, "documents_without_id")

    def process(self, doc: Mapping[str, Any]) -> Iterator[Any]:
        doc_id = doc.get("id")
        if not doc_id:
            self._no_id.inc()
            return
        id_int = doc.get("id_int")
        node = to_node(id_int if id_int is not None else document_id_int(doc_id))
        self._docs.inc()
        yield node, (doc_id, _shard_of(doc))
        bands = doc["bands"] if self._column is None else doc.get(self._column)
        if bands is None:
            self._no_sig.inc()
            return
        problem = check_bands(bands, self._threshold)
        if problem:
            self._bad_sig.inc()
            log.warning("fuzzy dedup: %s: bad signature (%s); kept as its own cluster", doc_id, problem)
            return
        for key in band_keys(bands):
            yield beam.pvalue.TaggedOutput(self.BANDS, (key, node))


def _min_then_stream(grouped: tuple[Any, Mapping[str, Iterable[int]]]) -> tuple[Any, int | None, Iterable[int]]:
    key, parts = grouped
    mins = list(parts["min"])  # one value (a combiner's output), never a member list
    return key, (mins[0] if mins else None), parts["rest"]


def _band_star(grouped: tuple[bytes, Mapping[str, Iterable[int]]]) -> Iterator[tuple[int, int]]:
    _, m, members = _min_then_stream(grouped)
    for v in members:  # streamed once
        if v != m:
            yield v, m


class LshStarEdges(beam.PTransform):
    """(band key, node) -> distinct canonical edges (member, band minimum), member > minimum.

    As RPv2's ``LSH.__build_edges`` but without a member list per band: the band minimum comes from a
    combiner and the members stream past it once.
    """

    def expand(self, keyed):
        band_min = keyed | "BandMin" >> beam.CombinePerKey(min)
        return (
            {"min": band_min, "rest": keyed}
            | "JoinBandMin" >> beam.CoGroupByKey()
            | "StarEdges" >> beam.FlatMap(_band_star)
            | "DistinctEdges" >> beam.Distinct()
        )


class _Step(beam.DoFn):
    def __init__(self, kind: str, round_index: int):
        self._kind = kind
        self._moves = Metrics.counter(NAMESPACE, f"cc_round_{round_index:03d}_moves")
        self._edges = Metrics.counter(NAMESPACE, f"cc_round_{round_index:03d}_{kind}_edges_out")

    def process(self, grouped):
        u, m, neighbours = _min_then_stream(grouped)
        if m is None:
            return
        step = large_star if self._kind == "large_star" else small_star
        moved = 0
        for hi, lo, is_move in step(u, m, neighbours):
            if hi != lo:
                moved += is_move
                self._edges.inc()
                yield hi, lo
        if moved:
            self._moves.inc(moved)


def _both_directions(edge: tuple[int, int]) -> Iterator[tuple[int, int]]:
    hi, lo = edge
    yield hi, lo
    yield lo, hi


class StarRound(beam.PTransform):
    """One Kiveris round (large-star, then small-star) over canonical edges (hi, lo), hi > lo.

    Large-star at u: m = min(Γ(u) ∪ {u}) from a combiner over both directions of u's edges; every
    larger neighbour is re-attached to m. Small-star at u: m = min of u's smaller neighbours (a
    combiner); u and those neighbours are attached to m. Moves are counted in ``cc_round_<i>_moves``.
    """

    def __init__(self, round_index: int):
        super().__init__()
        self._round = round_index

    def expand(self, edges):
        adjacency = edges | "Adjacency" >> beam.FlatMap(_both_directions)
        neighbourhood_min = adjacency | "NeighbourhoodMin" >> beam.CombinePerKey(min)
        larger = edges | "KeyByLower" >> beam.Map(lambda e: (e[1], e[0]))
        after_large = (
            {"min": neighbourhood_min, "rest": larger}
            | "JoinLarge" >> beam.CoGroupByKey()
            | "LargeStar" >> beam.ParDo(_Step("large_star", self._round))
        )  # no Distinct here: small-star's min and its emitted edges do not change with repeats, and
        # DistinctSmall below removes them, saving one shuffle per round
        smaller_min = after_large | "SmallerMin" >> beam.CombinePerKey(min)
        return (
            {"min": smaller_min, "rest": after_large}
            | "JoinSmall" >> beam.CoGroupByKey()
            | "SmallStar" >> beam.ParDo(_Step("small_star", self._round))
            | "DistinctSmall" >> beam.Distinct()
        )


class StarRounds(beam.PTransform):
    """``rounds`` unrolled :class:`StarRound`s, numbered from ``first_round``."""

    def __init__(self, rounds: int, first_round: int = 0):
        super().__init__()
        self._rounds = rounds
        self._first = first_round

    def expand(self, edges):
        for i in range(self._first, self._first + self._rounds):
            edges = edges | f"Round{i:03d}" >> StarRound(i)
        return edges


class ComponentLabels(beam.PTransform):
    """Converged edges -> (node, component minimum) for every node that has an edge."""

    def expand(self, edges):
        return (
            edges
            | "LabelAdjacency" >> beam.FlatMap(_both_directions)
            | "LabelMin" >> beam.CombinePerKey(min)
            | "WithSelf" >> beam.MapTuple(lambda u, m: (u, min(u, m)))
        )


def _flag(grouped: tuple[int, Mapping[str, Iterable[Any]]]) -> Iterator[dict[str, Any]]:
    node, parts = grouped
    labels = list(parts["label"])  # at most one
    id_int = from_node(node)
    cluster = from_node(labels[0]) if labels else id_int
    for doc_id, shard_id in parts["doc"]:
        yield {
            "id": doc_id,
            "id_int": id_int,
            "shard_id": shard_id,
            "cluster_id": cluster,
            "is_representative": cluster == id_int,
            "in_cluster": bool(labels),
        }


class DocumentFlags(beam.PTransform):
    """(node, (id, shard_id)) references joined with component labels -> one flag record per document."""

    def __init__(self, labels):
        super().__init__()
        self._labels = labels

    def expand(self, refs):
        return {"doc": refs, "label": self._labels} | "JoinLabels" >> beam.CoGroupByKey() | beam.FlatMap(_flag)


class FuzzyDedup(beam.PTransform):
    """Documents (dicts with id, id_int, shard_id and ``signature_sim<t>``) -> one flag record per
    document: ``{id, id_int, shard_id, cluster_id, is_representative, in_cluster}``.

    Single-pipeline form for ``rpv2 run``: ``rounds`` unrolled rounds; the counter
    ``cc_round_<rounds-1>_moves`` must be 0 (otherwise the run is not converged: rerun with more
    rounds or use ``rpv2 dedup fuzzy --engine beam``, which loops until convergence).
    """

    def __init__(self, threshold: float, rounds: int = DEFAULT_ROUNDS, signature_field: str | None = None):
        super().__init__()
        self._threshold = parse_threshold(threshold)
        self._rounds = rounds
        self._field = signature_field or signature_column(self._threshold)

    def expand(self, docs):
        keyed = docs | "KeyBands" >> beam.ParDo(_KeyBands(self._threshold, self._field)).with_outputs(
            _KeyBands.BANDS, main="refs"
        )
        edges = keyed[_KeyBands.BANDS] | "LshStarEdges" >> LshStarEdges()
        labels = edges | "Components" >> StarRounds(self._rounds) | "Labels" >> ComponentLabels()
        return keyed.refs | "Flags" >> DocumentFlags(labels)


class _WriteGroup(beam.DoFn):
    def __init__(self, root: str, kind: str):
        self._root = root
        self._kind = kind

    def process(self, grouped: tuple[str, Iterable[dict[str, Any]]]) -> Iterator[str]:
        relpath, rows = grouped
        table = cluster_table(rows) if self._kind == "clusters" else flag_table(rows)
        path = posixpath.join(self._root, self._kind, relpath)
        publish_table(table, path)
        yield path


class WriteFuzzyDedup(beam.PTransform):
    """Flag records -> ``<out>/clusters_sim<t>/{clusters,documents}/...`` (one file per shard; a file's
    rows are grouped once, bounded by one shard's size, and sorted, so the bytes do not depend on the
    worker count)."""

    def __init__(self, out_dir: str, threshold: float):
        super().__init__()
        self._root = output_root(out_dir, threshold)

    def expand(self, flags):
        documents = (
            flags
            | "ByFlagsFile" >> beam.Map(lambda r: (rel_path_of_shard_id(r["shard_id"]), r))
            | "GroupFlags" >> beam.GroupByKey()
            | "WriteFlags" >> beam.ParDo(_WriteGroup(self._root, "documents"))
        )
        clusters = (
            flags
            | "InCluster" >> beam.Filter(lambda r: r["in_cluster"])
            | "ByClustersFile" >> beam.Map(lambda r: (clusters_path(r["shard_id"]), r))
            | "GroupClusters" >> beam.GroupByKey()
            | "WriteClusters" >> beam.ParDo(_WriteGroup(self._root, "clusters"))
        )
        return (documents, clusters) | beam.Flatten()


class ReadDedupDocuments(beam.PTransform):
    """Documents files -> rows with id, id_int, shard_id and ``bands`` (the threshold's column)."""

    def __init__(self, files: list[str], threshold: float):
        super().__init__()
        self._files = files
        self._threshold = threshold

    def expand(self, pbegin):
        return (
            pbegin
            | "Files" >> beam.Create(self._files)
            | "Match" >> fileio.MatchAll()
            | "ReadColumns" >> beam.ParDo(_ReadDedupColumns(self._threshold))
        )


# ----------------------------------------------------------------------------------- engines (drivers)


def _edge_line(edge: tuple[int, int]) -> str:
    return f"{edge[0]} {edge[1]}"


def _parse_edge(line: str) -> tuple[int, int]:
    hi, lo = line.split()
    return int(hi), int(lo)


def _counters(result: Any) -> dict[str, int]:
    from apache_beam.metrics.metric import MetricsFilter

    out: dict[str, int] = {}
    for c in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(value or 0)
    return out


def converged(result: Any, rounds: int = DEFAULT_ROUNDS, first_round: int = 0) -> bool:
    """Whether the :class:`StarRounds` of a finished pipeline converged: its last round moved no edge.

    For ``rpv2 run`` with :class:`FuzzyDedup` at its end: if False, the clusters are not final; rerun
    ``rpv2 dedup fuzzy --engine beam`` (which loops until convergence) or raise ``rounds``.
    """
    return _counters(result).get(f"cc_round_{first_round + rounds - 1:03d}_moves", 0) == 0


def _clear(paths: Iterable[str]) -> None:
    existing = [p for p in paths if FileSystems.exists(p)]
    if existing:
        FileSystems.delete(existing)


def run_beam(
    in_dir: str,
    out_dir: str,
    threshold: float,
    beam_args: list[str] | None = None,
    rounds_per_pass: int = 4,
    max_rounds: int = 64,
) -> dict[str, int]:
    """``rpv2 dedup fuzzy --engine beam``: passes of ``rounds_per_pass`` rounds as successive pipelines
    until a round moves no edge; the edge set between passes lives in ``<root>/_work/``.

    Pass 1 reads the documents, builds the star edges, runs its rounds and writes the outputs; if its
    last round moved nothing (the usual case) that is the end. Otherwise later passes iterate on the
    edge files, and a last pipeline rewrites the outputs from the converged edges. Raises RuntimeError
    if ``max_rounds`` rounds do not converge. Returns the summed Beam counters.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    threshold = parse_threshold(threshold)
    files = document_files([in_dir])
    if not files:
        raise FileNotFoundError(f"no documents Parquet files under {in_dir}")
    root = output_root(out_dir, threshold)
    work = posixpath.join(root, "_work")
    outputs = [posixpath.join(root, "clusters"), posixpath.join(root, "documents")]
    _clear([*outputs, work])
    options = PipelineOptions(beam_args or [])
    totals: dict[str, int] = {}

    def edges_prefix(pass_index: int) -> str:
        return posixpath.join(work, f"edges_pass_{pass_index:03d}")

    def read_and_key(p):
        return (
            p
            | "ReadDocuments" >> ReadDedupDocuments(files, threshold)
            | "KeyBands" >> beam.ParDo(_KeyBands(threshold)).with_outputs(_KeyBands.BANDS, main="refs")
        )

    def write_outputs(refs, edges):
        labels = edges | "Labels" >> ComponentLabels()
        _ = refs | "Flags" >> DocumentFlags(labels) | "Write" >> WriteFuzzyDedup(out_dir, threshold)

    def run(p) -> None:
        result = p.run()
        result.wait_until_finish()
        for name, value in _counters(result).items():
            totals[name] = totals.get(name, 0) + value

    # pass 0: documents -> star edges -> rounds -> outputs (+ edges in case more rounds are needed)
    p = beam.Pipeline(runner=offline_direct_runner(options), options=options)
    keyed = read_and_key(p)
    edges = keyed[_KeyBands.BANDS] | "LshStarEdges" >> LshStarEdges() | "Rounds" >> StarRounds(rounds_per_pass)
    _ = edges | "EdgeLines" >> beam.Map(_edge_line) | "WriteEdges" >> beam.io.WriteToText(edges_prefix(0))
    write_outputs(keyed.refs, edges)
    run(p)
    if not totals:  # the convergence test below reads counters
        raise RuntimeError(
            "no Beam metrics reported (no readable document, or a runner without metrics): "
            "cannot tell whether the rounds converged"
        )
    rounds = rounds_per_pass
    pass_index = 0
    while totals.get(f"cc_round_{rounds - 1:03d}_moves", 0):
        if rounds >= max_rounds:
            raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")
        pass_index += 1
        log.info("fuzzy dedup: not converged after %d rounds; pass %d", rounds, pass_index)
        p = beam.Pipeline(runner=offline_direct_runner(options), options=options)
        _ = (
            p
            | "ReadEdges" >> beam.io.ReadFromText(edges_prefix(pass_index - 1) + "*")
            | "ParseEdges" >> beam.Map(_parse_edge)
            | "Rounds" >> StarRounds(rounds_per_pass, rounds)
            | "EdgeLines" >> beam.Map(_edge_line)
            | "WriteEdges" >> beam.io.WriteToText(edges_prefix(pass_index))
        )
        run(p)
        rounds += rounds_per_pass
    if pass_index:  # outputs of pass 0 were written from unconverged edges: rewrite them
        _clear(outputs)
        p = beam.Pipeline(runner=offline_direct_runner(options), options=options)
        keyed = read_and_key(p)
        edges = (
            p
            | "ReadEdges" >> beam.io.ReadFromText(edges_prefix(pass_index) + "*")
            | "ParseEdges" >> beam.Map(_parse_edge)
        )
        write_outputs(keyed.refs, edges)
        run(p)
    _clear([work])
    totals["cc_rounds_run"] = rounds
    return totals


def _band_matrix(column: pa.ChunkedArray, threshold: float) -> tuple[np.ndarray, np.ndarray, int]:
    """(row indices with a usable signature, (n, bands, bytes) uint8 array, number of bad signatures)."""
    n_bands, band_bytes = band_shape(threshold)
    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    present = col.is_valid().to_numpy(zero_copy_only=False)
    lengths = pc.list_value_length(col).fill_null(0).to_numpy(zero_copy_only=False)
    ok = present & (lengths == n_bands)
    flat = pc.list_flatten(col.filter(pa.array(ok)))
    value_len = pc.binary_length(flat).fill_null(-1).to_numpy(zero_copy_only=False)
    per_row_ok = (value_len == band_bytes).reshape(-1, n_bands).all(axis=1) if len(flat) else np.zeros(0, bool)
    rows = np.flatnonzero(ok)
    bad = int(np.sum(present & ~ok) + np.sum(~per_row_ok))
    good_rows = rows[per_row_ok]
    if len(good_rows) == 0:
        return good_rows, np.zeros((0, n_bands, band_bytes), np.uint8), bad
    flat = pc.list_flatten(col.filter(pa.array(np.isin(np.arange(len(col)), good_rows))))
    flat = flat.cast(pa.binary())
    offsets = np.frombuffer(flat.buffers()[1], np.int32)[flat.offset : flat.offset + len(flat) + 1]
    data = np.frombuffer(flat.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
    return good_rows, data.reshape(len(good_rows), n_bands, band_bytes), bad


def nodes_of(id_ints: np.ndarray) -> np.ndarray:
    """Vectorized :func:`dedup.lsh.to_node`: uint64 id_int -> order-preserving int64."""
    return (id_ints.astype(np.uint64) ^ np.uint64(1 << 63)).view(np.int64)


def cluster_ids_local(id_ints: np.ndarray, bands: np.ndarray, band_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``id_ints`` (uint64): (cluster_id uint64, in a cluster of two or more). ``bands`` holds
    the signatures of rows ``band_rows``. Rows sharing an id_int are one node, as in the Beam engine."""
    nodes = nodes_of(id_ints)
    unique_nodes, inverse = np.unique(nodes, return_inverse=True)
    src, dst = star_edges(nodes[band_rows], bands)
    src_node = inverse[band_rows[src]]
    dst_node = inverse[band_rows[dst]]
    keep = src_node != dst_node
    src_node, dst_node = src_node[keep], dst_node[keep]
    labels = components_local(unique_nodes, src_node, dst_node)
    has_edge = np.zeros(len(unique_nodes), bool)
    has_edge[src_node] = True
    has_edge[dst_node] = True
    cluster = (labels.view(np.uint64) ^ np.uint64(1 << 63))[inverse]
    return cluster, has_edge[inverse]


def run_local(in_dir: str, out_dir: str, threshold: float) -> dict[str, int]:
    """``rpv2 dedup fuzzy --engine local``: the same outputs (byte for byte) on one machine, with
    numpy banding and scipy connected components; for slices whose ids and bands fit in memory."""
    threshold = parse_threshold(threshold)
    files = document_files([in_dir])
    if not files:
        raise FileNotFoundError(f"no documents Parquet files under {in_dir}")
    root = output_root(out_dir, threshold)
    _clear([posixpath.join(root, "clusters"), posixpath.join(root, "documents")])
    counters = {"documents": 0, "unreadable_files": 0, "documents_without_id": 0,
                "documents_without_signature": 0, "documents_bad_signature": 0}
    tables = []
    for path in files:
        try:
            with FileSystems.open(path, compression_type="uncompressed") as handle:
                table = read_dedup_columns(handle, threshold)
        except Exception as exc:
            counters["unreadable_files"] += 1
            log.error("fuzzy dedup: cannot read %s: %s", path, exc)
            continue
        tables.append(table)
    if not tables:
        return counters
    table = pa.concat_tables(tables)
    with_id = table.column("id").is_valid()
    counters["documents_without_id"] = len(table) - int(pc.sum(with_id).as_py() or 0)
    table = table.filter(with_id)
    column = table.column(signature_column(threshold))
    counters["documents"] = len(table)
    counters["documents_without_signature"] = column.null_count
    band_rows, bands, bad = _band_matrix(column, threshold)
    counters["documents_bad_signature"] = bad
    id_ints = table.column("id_int").to_numpy(zero_copy_only=False).astype(np.uint64)
    cluster, in_cluster = cluster_ids_local(id_ints, bands, band_rows)
    ids = table.column("id").to_pylist()
    shards = table.column("shard_id").to_pylist()
    flags: dict[str, list[dict[str, Any]]] = {}
    clusters: dict[str, list[dict[str, Any]]] = {}
    for i, doc_id in enumerate(ids):
        shard = shards[i] or shard_id_of(doc_id)
        row = {"id": doc_id, "id_int": int(id_ints[i]), "shard_id": shard, "cluster_id": int(cluster[i]),
               "is_representative": bool(cluster[i] == id_ints[i])}
        flags.setdefault(rel_path_of_shard_id(shard), []).append(row)
        if in_cluster[i]:
            clusters.setdefault(clusters_path(shard), []).append(row)
    for rel, rows in sorted(flags.items()):
        publish_table(flag_table(rows), posixpath.join(root, "documents", rel))
    for rel, rows in sorted(clusters.items()):
        publish_table(cluster_table(rows), posixpath.join(root, "clusters", rel))
    counters["clusters_files"] = len(clusters)
    counters["documents_files"] = len(flags)
    return counters
