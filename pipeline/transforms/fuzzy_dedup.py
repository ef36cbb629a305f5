"""Fuzzy dedup: MinHash LSH star edges and connected components on Beam, and the engines' drivers.

Data flow (ARCHITECTURE.md, "fuzzy dedup")::

    documents ─► (band index + band bytes, node) ─► min per band (combiner) ─► star edges member→min
              ─► R × [large-star, small-star] (Kiveris et al. 2014) ─► node → component minimum
              ─► join with (id, shard_id) ─► clusters (RPv2 schema + is_representative) and per-document flags

No step holds a list per band or per node: band groups and node neighbourhoods are reduced with
``min`` combiners, then streamed once through a CoGroupByKey against that single value (lazily paged
on Dataflow), so a band shared by millions of boilerplate pages costs a worker one value, not a
list, and gives one edge per member, not all pairs. The only grouping that materializes rows is the
writer's, one output file (one input shard) at a time.

Iteration: Beam graphs have no loops. :class:`StarRounds` unrolls a fixed number of rounds and counts,
per round, the edges a step moved (``cc_round_<i>_moves``); a round with 0 moves proves convergence (see
``dedup/components.py``), later rounds are then no-ops. :class:`FuzzyDedupFiles` (documents file paths
-> outputs) runs ``rounds_per_pass`` rounds inside the pipeline that applies it, ``rpv2 dedup fuzzy
--engine beam``'s (:func:`run_beam`) or ``rpv2 run``'s, and keeps the edge set and the input paths in
``<root>/_work/``. In practice LSH star graphs converge in 2-4 rounds, so that pipeline usually
finishes the job; when its last round still moved edges, :func:`finish_passes` continues with passes
of ``rounds_per_pass`` rounds as successive pipelines on the edge files (one shuffle per step over the
*current* edge set, nothing recomputed) until one converges, bounded by ``max_rounds`` (a
non-converging input fails loudly instead of writing wrong clusters), and rewrites the outputs.

Outputs under ``<out>/clusters_sim<t>/``:

* ``clusters/<snapshot>/<shard>/<lang>_<bucket>.clusters.parquet``: RPv2's clusters (``id, id_int,
  cluster_id, shard_id``; RPv2 ``run_lsh.py``) for documents in a component of two or more, plus
  ``is_representative``.
* ``documents/snapshot=<s>/language=<l>/bucket=<b>/<shard>.parquet``: every input document (``id,
  id_int, shard_id, cluster_id, is_representative``), singletons and short documents (no signature)
  included, in the input's partitioning so it joins by id.

``cluster_id`` is the minimum id_int of the component (RPv2); the kept representative of a cluster is
the document whose ``id_int == cluster_id``; every other member is a near duplicate to drop. The local
engine (numpy + scipy, :mod:`dedup.fuzzy_local`) writes the same files byte for byte.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from dedup.components import large_star, small_star
from dedup.fuzzy_local import cluster_documents, cluster_table, clusters_path, flag_table
from dedup.lsh import band_keys, check_bands, from_node, parse_threshold, signature_column, to_node
from pipeline.dataset.files import read_parquet
from pipeline.dataset.ids import document_id_int, shard_id_of
from pipeline.dataset.layout import document_files, rel_path_of_shard_id
from pipeline.io.publish import publish_table
from pipeline.transforms.runner import new_pipeline, run_and_wait
from pipeline.transforms.summary import namespace_counters

log = logging.getLogger(__name__)

NAMESPACE = "rpv2.fuzzy_dedup"
DEFAULT_ROUNDS = 8  # FuzzyDedup's unrolled rounds when used alone
DEFAULT_ROUNDS_PER_PASS = 4  # rounds inside one pipeline: LSH star graphs converge in 2-4
DEFAULT_MAX_ROUNDS = 64  # give up (and write nothing final) after this many rounds


class FuzzyDedupError(RuntimeError):
    """Fuzzy dedup could not finish: the rounds did not converge, or convergence cannot be told."""


# ---------------------------------------------------------------------------------------------- input


def output_root(out_dir: str, threshold: float) -> str:
    return posixpath.join(out_dir.rstrip("/"), f"clusters_sim{parse_threshold(threshold)}")


def read_dedup_columns(source: Any, threshold: float) -> pa.Table:
    """id, id_int, shard_id and the threshold's band column of one documents file (a seekable file
    object: only these columns' pages are read, never the text).

    id_int and shard_id are derived from id (RPv2's rules) where a file lacks them.
    """
    column = signature_column(threshold)
    table = read_parquet(source, ("id", "id_int", "shard_id", column), missing_ok=True)
    names = set(table.column_names)
    if "id" not in names:
        raise ValueError("no 'id' column")
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


# ---------------------------------------------------------------------------------------- Beam steps


class _ReadDedupColumns(beam.DoFn):
    """Rows (id, id_int, shard_id, signature_sim<t>) of one documents file; a file that cannot be read
    is counted and logged, the others go on."""

    def __init__(self, threshold: float):
        self._threshold = threshold
        self._bad_files = Metrics.counter(NAMESPACE, "unreadable_files")

    def process(self, metadata: Any) -> Iterator[dict[str, Any]]:
        try:
            with FileSystems.open(metadata.path, compression_type="uncompressed") as handle:
                table = read_dedup_columns(handle, self._threshold)
        except Exception as exc:  # a corrupt file must not stop the job
            self._bad_files.inc()
            log.error("fuzzy dedup: cannot read %s: %s", metadata.path, exc)
            return
        yield from table.to_pylist()


class _KeyBands(beam.DoFn):
    """Per document: its reference (node, id, shard_id) and one (band key, node) per band."""

    BANDS = "bands"

    def __init__(self, threshold: float, column: str):
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
        bands = doc.get(self._column)
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

    ``rounds`` unrolled rounds; they converged when the counter ``cc_round_<rounds-1>_moves`` is 0
    (:func:`converged`). ``self.edges`` is then the edge set after the rounds, which
    :class:`FuzzyDedupFiles` keeps so that a driver can continue from it when they did not.
    """

    def __init__(self, threshold: float, rounds: int = DEFAULT_ROUNDS, signature_field: str | None = None):
        super().__init__()
        self._threshold = parse_threshold(threshold)
        self._rounds = rounds
        self._field = signature_field or signature_column(self._threshold)
        self.edges = None

    def expand(self, docs):
        keyed = docs | "KeyBands" >> beam.ParDo(_KeyBands(self._threshold, self._field)).with_outputs(
            _KeyBands.BANDS, main="refs"
        )
        self.edges = keyed[_KeyBands.BANDS] | "LshStarEdges" >> LshStarEdges() | "Components" >> StarRounds(
            self._rounds
        )
        return keyed.refs | "Flags" >> DocumentFlags(self.edges | "Labels" >> ComponentLabels())


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
    """Documents file paths -> rows with id, id_int, shard_id and the threshold's signature column."""

    def __init__(self, threshold: float):
        super().__init__()
        self._threshold = threshold

    def expand(self, paths):
        return (
            paths
            | "Match" >> fileio.MatchAll()
            | "ReadColumns" >> beam.ParDo(_ReadDedupColumns(self._threshold))
        )


def _work_dir(root: str) -> str:
    return posixpath.join(root, "_work")


def _inputs_prefix(root: str) -> str:
    return posixpath.join(_work_dir(root), "inputs")


def _edges_prefix(root: str, pass_index: int) -> str:
    return posixpath.join(_work_dir(root), f"edges_pass_{pass_index:03d}")


def _edge_line(edge: tuple[int, int]) -> str:
    return f"{edge[0]} {edge[1]}"


def _parse_edge(line: str) -> tuple[int, int]:
    hi, lo = line.split()
    return int(hi), int(lo)


class FuzzyDedupFiles(beam.PTransform):
    """Documents file paths -> ``<out>/clusters_sim<t>/`` written, after ``rounds_per_pass`` star rounds.

    The input paths and the edges after the rounds also go to ``<root>/_work/``, so that
    :func:`finish_passes` can continue when the rounds did not converge. Call :func:`prepare_outputs`
    before the pipeline runs.
    """

    def __init__(self, out_dir: str, threshold: float, rounds_per_pass: int = DEFAULT_ROUNDS_PER_PASS):
        super().__init__()
        self._out_dir = out_dir
        self._threshold = parse_threshold(threshold)
        self._rounds = rounds_per_pass
        self._root = output_root(out_dir, threshold)

    def expand(self, paths):
        _ = paths | "KeepInputPaths" >> beam.io.WriteToText(_inputs_prefix(self._root))
        dedup = FuzzyDedup(self._threshold, rounds=self._rounds)
        flags = paths | "ReadDocuments" >> ReadDedupDocuments(self._threshold) | "Cluster" >> dedup
        _ = dedup.edges | "EdgeLines" >> beam.Map(_edge_line) | "KeepEdges" >> beam.io.WriteToText(
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
            | "ReadEdges" >> beam.io.ReadFromText(_edges_prefix(root, pass_index - 1) + "*")
            | "ParseEdges" >> beam.Map(_parse_edge)
            | "Rounds" >> StarRounds(rounds_per_pass, rounds)
            | "EdgeLines" >> beam.Map(_edge_line)
            | "KeepEdges" >> beam.io.WriteToText(_edges_prefix(root, pass_index))
        )
        for name, value in fuzzy_counters(run_and_wait(p)).items():
            totals[name] = totals.get(name, 0) + value
        rounds += rounds_per_pass
    if pass_index:  # the first pipeline wrote its outputs from unconverged edges: rewrite them
        _clear(_outputs(root))
        p = new_pipeline(options)
        keyed = (
            p
            | "InputPaths" >> beam.io.ReadFromText(_inputs_prefix(root) + "*")
            | "ReadDocuments" >> ReadDedupDocuments(threshold)
            | "KeyBands" >> beam.ParDo(_KeyBands(threshold, signature_column(threshold))).with_outputs(
                _KeyBands.BANDS, main="refs"
            )
        )
        edges = (
            p
            | "ReadEdges" >> beam.io.ReadFromText(_edges_prefix(root, pass_index) + "*")
            | "ParseEdges" >> beam.Map(_parse_edge)
        )
        labels = edges | "Labels" >> ComponentLabels()
        _ = keyed.refs | "Flags" >> DocumentFlags(labels) | "Write" >> WriteFuzzyDedup(out_dir, threshold)
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
) -> dict[str, int]:
    """``rpv2 dedup fuzzy --engine beam`` on an existing dataset: one pipeline applying
    :class:`FuzzyDedupFiles` to its documents files, then :func:`finish_passes` (as ``rpv2 run`` does).
    Returns the summed Beam counters."""
    from apache_beam.options.pipeline_options import PipelineOptions

    threshold = parse_threshold(threshold)
    files = document_files([in_dir])
    if not files:
        raise FileNotFoundError(f"no documents Parquet files under {in_dir}")
    prepare_outputs(out_dir, threshold)
    options = PipelineOptions(beam_args or [])
    p = new_pipeline(options)
    _ = p | "DocumentFiles" >> beam.Create(files) | "FuzzyDedup" >> FuzzyDedupFiles(out_dir, threshold, rounds_per_pass)
    counters = fuzzy_counters(run_and_wait(p))
    if not counters:  # the convergence test reads counters; files were given, so some must be reported
        raise FuzzyDedupError(
            "no Beam metrics reported (a runner without metrics?): cannot tell whether the rounds converged"
        )
    return finish_passes(out_dir, threshold, options, counters, rounds_per_pass=rounds_per_pass,
                         max_rounds=max_rounds)


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
