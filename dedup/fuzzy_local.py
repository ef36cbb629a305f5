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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dedup.components import components_local
from dedup.lsh import NODE_OFFSET, band_shape, signature_column, star_edges
from pipeline.dataset.ids import shard_id_of
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


def flag_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """One documents-flags file: rows in input order (by shard, then row number), whatever order they
    arrive in, so the bytes do not depend on the engine or the worker count."""
    ordered = sorted(rows, key=lambda r: (_row_order(r["id"]), r["id_int"]))
    return pa.Table.from_pylist([{k: r[k] for k in DOCUMENT_FLAG_SCHEMA.names} for r in ordered], DOCUMENT_FLAG_SCHEMA)


def cluster_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """One clusters file: rows by cluster, representative first."""
    ordered = sorted(rows, key=lambda r: (r["cluster_id"], r["id_int"], r["id"]))
    return pa.Table.from_pylist([{k: r[k] for k in CLUSTER_SCHEMA.names} for r in ordered], CLUSTER_SCHEMA)


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


def cluster_documents(table: pa.Table, threshold: float) -> LocalClusters:
    """Cluster the documents of ``table`` (columns id, id_int, shard_id and the threshold's signature
    column; id_int and shard_id filled in, as the reader does) and build every output table.

    Rows without an id are counted and left out; rows without a usable signature are their own cluster.
    """
    with_id = table.column("id").is_valid()
    counters = {"documents_without_id": len(table) - int(pc.sum(with_id).as_py() or 0)}
    table = table.filter(with_id)
    column = table.column(signature_column(threshold))
    counters["documents"] = len(table)
    counters["documents_without_signature"] = column.null_count
    band_rows, bands, bad = band_matrix(column, threshold)
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
    return LocalClusters(
        counters=counters,
        documents={rel: flag_table(rows) for rel, rows in sorted(flags.items())},
        clusters={rel: cluster_table(rows) for rel, rows in sorted(clusters.items())},
    )
