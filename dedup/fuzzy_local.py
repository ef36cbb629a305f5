"""Fuzzy dedup on one machine: numpy banding, scipy connected components, and the output tables.

The local engine (``rpv2 dedup fuzzy --engine local``) for slices whose ids and bands fit in memory:
:func:`cluster_documents` takes the columns fuzzy dedup reads from the documents dataset (``id, id_int,
shard_id, signature_sim<t>``) as one Arrow table and returns every output file's table. It links the
same pairs as the Beam engine (pipeline/transforms/fuzzy_dedup.py): star edges per band
(:func:`dedup.lsh.star_edges`), components labelled by their minimum id_int (RPv2's ``cluster_id``).

The output tables (:func:`flag_table`, :func:`cluster_table`) live here too and both engines build their
files with them, so the two engines write the same bytes by construction, not by care.

Pure: no Beam, no file system. Reading Parquet and publishing files is the driver's job
(``pipeline.transforms.fuzzy_dedup.run_local``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dedup.components import components_local
from dedup.lsh import NODE_OFFSET, band_shape, signature_column, star_edges
from pipeline.dataset.ids import document_id_int, shard_id_of
from pipeline.dataset.layout import rel_path_of_shard_id

# RPv2's clusters (run_lsh.py: id, id_int, cluster_id, shard_id) plus which member is kept
CLUSTER_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("id_int", pa.uint64()),
        ("cluster_id", pa.uint64()),
        ("shard_id", pa.string()),
        ("is_representative", pa.bool_()),
    ]
)
# every input document, singletons included, in the input's partitioning so it joins by id
DOCUMENT_FLAG_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("id_int", pa.uint64()),
        ("shard_id", pa.string()),
        ("cluster_id", pa.uint64()),
        ("is_representative", pa.bool_()),
    ]
)

# ------------------------------------------------------------------------------------ output tables


def clusters_path(shard_id: str) -> str:
    """RPv2's clusters file of a shard: ``2023-06/0000/en_head.clusters.parquet``."""
    stem = shard_id[: -len(".json.gz")] if shard_id.endswith(".json.gz") else shard_id
    return stem + ".clusters.parquet"


def _row_order(doc_id: str) -> tuple[str, int, str]:
    prefix, _, row = doc_id.rpartition("/")
    return (prefix, int(row), "") if row.isdigit() else (prefix, -1, row)


def _row_order_fast(table: pa.Table) -> pa.Array | None:
    """The order of :func:`_row_order` then id_int, computed by Arrow when every id is ``<prefix>/<row
    number>`` (RPv2's ids; UTF-8 byte order is Python's code point order); None otherwise."""
    if not len(table):
        return pa.array([], pa.int64())
    parts = pc.split_pattern(table.column("id"), "/", max_splits=1, reverse=True)
    if pc.any(pc.not_equal(pc.list_value_length(parts), 2)).as_py():
        return None
    flat = pc.list_flatten(parts)
    prefix, row = flat.take(pa.array(range(0, len(flat), 2))), flat.take(pa.array(range(1, len(flat), 2)))
    if not pc.all(pc.match_substring_regex(row, "^[0-9]{1,18}$")).as_py():
        return None
    keyed = pa.table({"prefix": prefix, "row": pc.cast(row, pa.int64()), "id_int": table.column("id_int")})
    return pc.sort_indices(keyed, [("prefix", "ascending"), ("row", "ascending"), ("id_int", "ascending")])


def _concat(tables: Iterable[pa.Table]) -> pa.Table:
    tables = list(tables)
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def flag_table(parts: Iterable[pa.Table]) -> pa.Table:
    """One documents-flags file from the flag tables (:func:`flag_columns`) of its rows: rows in input
    order (by shard, then row number), whatever order they arrive in, so the bytes do not depend on the
    engine or the worker count."""
    table = _concat(parts)
    order = _row_order_fast(table)
    if order is None:
        ids = table.column("id").to_pylist()
        id_ints = table.column("id_int").to_pylist()
        keys = [_row_order(i) for i in ids]
        order = pa.array(sorted(range(len(ids)), key=lambda i: (keys[i], id_ints[i])), pa.int64())
    return table.take(order).select(DOCUMENT_FLAG_SCHEMA.names).cast(
        DOCUMENT_FLAG_SCHEMA).combine_chunks()


def cluster_table(parts: Iterable[pa.Table]) -> pa.Table:
    """One clusters file from the flag tables of its rows: rows by cluster, representative first."""
    table = _concat(parts)
    ids = table.column("id").to_pylist()
    keys = list(zip(table.column("cluster_id").to_pylist(), table.column("id_int").to_pylist(), ids, strict=True))
    order = sorted(range(len(ids)), key=keys.__getitem__)
    return table.take(pa.array(order, pa.int64())).select(CLUSTER_SCHEMA.names).cast(CLUSTER_SCHEMA).combine_chunks()


def flag_columns(refs: pa.Table, cluster: np.ndarray, in_cluster: np.ndarray) -> pa.Table:
    """``refs`` (id, id_int, shard_id) with each row's ``cluster_id`` (uint64), ``is_representative``
    and ``in_cluster`` (a component of two or more)."""
    id_ints = refs.column("id_int").to_numpy(zero_copy_only=False).astype(np.uint64)
    cluster = np.asarray(cluster, np.uint64)
    return pa.table({
        "id": refs.column("id"), "id_int": pa.array(id_ints, pa.uint64()), "shard_id": refs.column("shard_id"),
        "cluster_id": pa.array(cluster, pa.uint64()), "is_representative": pa.array(cluster == id_ints),
        "in_cluster": pa.array(np.asarray(in_cluster, bool)),
    })


def output_parts(flags: pa.Table) -> Iterator[tuple[str, str, pa.Table]]:
    """(``"documents"`` or ``"clusters"``, file path under it, rows) of the output files that the rows
    of ``flags`` (:func:`flag_columns`) go to: every row to its shard's flags file, rows in a cluster
    to its shard's clusters file. The rows of one file may come in several parts (from several input
    files or batches); :func:`flag_table` and :func:`cluster_table` merge them."""
    if not len(flags):
        return
    encoded = flags.column("shard_id").combine_chunks().dictionary_encode()
    shards = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    in_cluster = flags.column("in_cluster").to_numpy(zero_copy_only=False)
    for kind, path_of, mask in (("documents", rel_path_of_shard_id, None), ("clusters", clusters_path, in_cluster)):
        paths = [path_of(s) for s in shards]
        names = sorted(set(paths))
        code_of_path = np.array([names.index(p) for p in paths], np.int64)
        file_of_row = code_of_path[codes]
        rows = np.arange(len(flags)) if mask is None else np.flatnonzero(mask)
        order = rows[np.argsort(file_of_row[rows], kind="stable")]
        bounds = np.searchsorted(file_of_row[order], np.arange(len(names) + 1))
        for f, name in enumerate(names):
            if bounds[f + 1] > bounds[f]:
                yield kind, name, flags.take(pa.array(order[bounds[f]:bounds[f + 1]]))


# ------------------------------------------------------------------------------- banding, components


def band_matrix(column: pa.ChunkedArray | pa.Array, threshold: float) -> tuple[np.ndarray, np.ndarray, int]:
    """(row indices with a usable signature, their (n, bands, bytes) uint8 array, number of bad signatures).

    A null signature (RPv2 gives none to documents under 13 words) is not bad: the row is simply absent.
    A signature with the wrong number of bands or band width is bad: counted, and the row is its own
    cluster, as in the Beam engine.
    """
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
    return (id_ints.astype(np.uint64) ^ np.uint64(NODE_OFFSET)).view(np.int64)


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
    cluster = (labels.view(np.uint64) ^ np.uint64(NODE_OFFSET))[inverse]
    return cluster, has_edge[inverse]


# ---------------------------------------------------------------------------------- the whole engine


@dataclass
class LocalClusters:
    """What the local engine computed: counters named as the Beam engine's, and the output files'
    tables keyed by their path under ``documents/`` and ``clusters/``."""

    counters: dict[str, int]
    documents: dict[str, pa.Table] = field(default_factory=dict)
    clusters: dict[str, pa.Table] = field(default_factory=dict)


def complete_columns(table: pa.Table, column: str) -> pa.Table:
    """id, id_int, shard_id and the signature ``column`` of a documents table, in that order: id_int and
    shard_id derived from id (RPv2's rules) where the table lacks them or a row has none, a missing
    signature column as nulls. Rows without an id stay (and are counted later)."""
    names = set(table.column_names)
    if "id" not in names:
        raise ValueError("no 'id' column")
    ids = table.column("id").to_pylist()
    if "id_int" not in names or table.column("id_int").null_count:
        given = table.column("id_int").to_pylist() if "id_int" in names else [None] * len(ids)
        derived = [g if g is not None or i is None else document_id_int(i) for g, i in zip(given, ids, strict=True)]
        table = table.drop_columns(["id_int"]) if "id_int" in names else table
        table = table.append_column("id_int", pa.array(derived, pa.uint64()))
    shards = table.column("shard_id").to_pylist() if "shard_id" in names else [None] * len(ids)
    if not all(shards):
        filled = [s or (None if i is None else shard_id_of(i)) for s, i in zip(shards, ids, strict=True)]
        table = table.drop_columns(["shard_id"]) if "shard_id" in names else table
        table = table.append_column("shard_id", pa.array(filled, pa.string()))
    if column not in names:
        table = table.append_column(column, pa.nulls(len(table), pa.list_(pa.binary())))
    return table.select(["id", "id_int", "shard_id", column])


@dataclass
class Batch:
    """The rows of a documents table fuzzy dedup works on: ``refs`` (id, id_int, shard_id) of the rows
    with an id, their ``nodes``, the signatures ``bands`` of rows ``band_rows``, and the counters."""

    refs: pa.Table
    nodes: np.ndarray
    band_rows: np.ndarray
    bands: np.ndarray
    counters: dict[str, int]


def prepare_batch(table: pa.Table, threshold: float) -> Batch:
    """A completed documents table (:func:`complete_columns`) -> :class:`Batch`. Rows without an id are
    counted and left out; rows without a usable signature are their own cluster. Both engines start
    here, so they count and band alike."""
    with_id = table.column("id").is_valid()
    counters = {"documents_without_id": len(table) - int(pc.sum(with_id).as_py() or 0)}
    table = table.filter(with_id)
    column = table.column(signature_column(threshold))
    counters["documents"] = len(table)
    counters["documents_without_signature"] = column.null_count
    band_rows, bands, bad = band_matrix(column, threshold)
    counters["documents_bad_signature"] = bad
    id_ints = table.column("id_int").to_numpy(zero_copy_only=False).astype(np.uint64)
    return Batch(table.select(["id", "id_int", "shard_id"]), nodes_of(id_ints), band_rows, bands, counters)


def cluster_documents(table: pa.Table, threshold: float) -> LocalClusters:
    """Cluster the documents of ``table`` (columns id, id_int, shard_id and the threshold's signature
    column; id_int and shard_id derived from id where missing) and build every output table.

    Rows without an id are counted and left out; rows without a usable signature are their own cluster.
    """
    batch = prepare_batch(complete_columns(table, signature_column(threshold)), threshold)
    id_ints = batch.refs.column("id_int").to_numpy(zero_copy_only=False).astype(np.uint64)
    cluster, in_cluster = cluster_ids_local(id_ints, batch.bands, batch.band_rows)
    parts: dict[tuple[str, str], list[pa.Table]] = {}
    for kind, name, rows in output_parts(flag_columns(batch.refs, cluster, in_cluster)):
        parts.setdefault((kind, name), []).append(rows)
    return LocalClusters(
        counters=batch.counters,
        documents={name: flag_table(t) for (kind, name), t in sorted(parts.items()) if kind == "documents"},
        clusters={name: cluster_table(t) for (kind, name), t in sorted(parts.items()) if kind == "clusters"},
    )
