"""LSH banding: star edges as RPv2's run_lsh.py builds them, and the clusters they give on RPv2's own
MinHash bands for real exact and near duplicates (../shared/groundtruth/rpv2)."""

from __future__ import annotations

from collections import defaultdict

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rpv2_groundtruth import known_groups, load_groundtruth

from dedup.components import KeyMins, partition_of, subpass_of
from dedup.fuzzy_local import cluster_ids_local, nodes_of
from dedup.lsh import (
    band_keys,
    band_rows,
    band_shape,
    band_star_edges,
    band_star_edges_exact,
    check_bands,
    from_node,
    parse_threshold,
    signature_column,
    star_edges,
    to_node,
)
from pipeline.dataset.ids import document_id_int, shard_id_of


def test_thresholds_and_columns_as_rpv2():
    assert [signature_column(t) for t in (0.7, 0.8, 0.9, 1.0)] == [
        "signature_sim0.7", "signature_sim0.8", "signature_sim0.9", "signature_sim1.0",
    ]
    assert [band_shape(t) for t in (0.7, 0.8, 0.9, 1.0)] == [(14, 36), (9, 52), (5, 100), (1, 512)]
    assert parse_threshold("0.8") == 0.8
    with pytest.raises(ValueError):
        parse_threshold("0.75")


def test_ids_as_rpv2():
    doc_id = "2023-06/0001/en_head.json.gz/1"
    assert document_id_int(doc_id) == 1009327887543882325  # the ground truth README's example
    assert shard_id_of(doc_id) == "2023-06/0001/en_head.json.gz"


def test_node_keys_keep_the_unsigned_order():
    values = [0, 1, 2**63 - 1, 2**63, 2**64 - 1]
    nodes = [to_node(v) for v in values]
    assert nodes == sorted(nodes) and all(-(2**63) <= n < 2**63 for n in nodes)
    assert [from_node(n) for n in nodes] == values
    assert nodes_of(np.array(values, dtype=np.uint64)).tolist() == nodes


def test_band_keys_carry_the_band_index():
    keys = list(band_keys([b"\x00" * 36, b"\x00" * 36]))
    assert keys[0] != keys[1] and keys[0][1:] == keys[1][1:]


def test_bad_signatures_are_described():
    assert check_bands(None, 0.7) is None
    assert check_bands([b"x" * 36] * 14, 0.7) is None
    assert "bands" in check_bands([b"x" * 36] * 13, 0.7)
    assert "bytes" in check_bands([b"x" * 35] * 14, 0.7)


def brute_force_star_edges(nodes, bands) -> set[tuple[int, int]]:
    edges = set()
    for b in range(bands.shape[1]):
        groups = defaultdict(list)
        for i in range(len(nodes)):
            groups[bands[i, b].tobytes()].append(i)
        for members in groups.values():
            smallest = min(members, key=lambda i: (nodes[i], i))
            edges |= {(i, smallest) for i in members if i != smallest}
    return edges


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 40), st.integers(1, 5), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_star_edges_equal_brute_force(n, n_bands, alphabet, seed):
    rng = np.random.default_rng(seed)
    bands = rng.integers(0, alphabet, (n, n_bands, 8), dtype=np.uint8)  # small alphabet: many groups
    nodes = rng.choice(np.arange(-1000, 1000), n, replace=False).astype(np.int64)
    src, dst = star_edges(nodes, bands)
    assert set(zip(src.tolist(), dst.tolist(), strict=True)) == brute_force_star_edges(nodes, bands)


def test_a_band_shared_by_many_gives_one_edge_per_member_not_all_pairs():
    n = 20_000
    bands = np.zeros((n, 1, 36), dtype=np.uint8)  # everyone shares the single band
    nodes = np.random.default_rng(0).permutation(n).astype(np.int64)
    src, dst = star_edges(nodes, bands)
    assert len(src) == n - 1
    assert set(nodes[dst].tolist()) == {0}


def test_fingerprint_collisions_do_not_merge_different_bands():
    # 4-byte bands differing only in bytes are still distinct groups whatever their fingerprints
    bands = np.array([[[1, 2, 3, 4]], [[1, 2, 3, 4]], [[4, 3, 2, 1]], [[4, 3, 2, 1]]], dtype=np.uint8)
    src, dst = star_edges(np.array([3, 1, 2, 0]), bands)
    assert set(zip(src.tolist(), dst.tolist(), strict=True)) == {(0, 1), (2, 3)}


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 60), st.integers(0, 2**32 - 1))
def test_clusters_from_bands_equal_networkx_components(n, seed):
    """A random band-sharing graph: clusters equal networkx's components of the all-pairs graph."""
    rng = np.random.default_rng(seed)
    bands = rng.integers(0, 256, (n, 14, 36), dtype=np.uint8)
    for _ in range(rng.integers(0, 2 * n)):  # plant shared bands between random pairs
        a, b, k = rng.integers(0, n), rng.integers(0, n), rng.integers(0, 14)
        bands[b, k] = bands[a, k]
    id_ints = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    cluster, in_cluster = cluster_ids_local(id_ints, bands, np.arange(n))
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    for k in range(14):
        groups = defaultdict(list)
        for i in range(n):
            groups[bands[i, k].tobytes()].append(i)
        for members in groups.values():
            graph.add_edges_from((members[0], m) for m in members[1:])
    for component in nx.connected_components(graph):
        expected = min(int(id_ints[i]) for i in component)
        assert {int(cluster[i]) for i in component} == {expected}
        assert all(bool(in_cluster[i]) == (len(component) > 1) for i in component)


# ---------------------------------------------------------------- real near duplicates (RPv2 ground truth)


def groundtruth_clusters(threshold: str) -> dict[str, int]:
    """id -> cluster_id computed from RPv2's own bands (hex in expected.jsonl) for one threshold."""
    expected, _ = load_groundtruth()
    column = f"signature_sim{threshold}"
    rows = [e for e in expected if e["minhash"][column] is not None]
    n_bands, width = band_shape(float(threshold))
    raw = b"".join(bytes.fromhex(h) for e in rows for h in e["minhash"][column])
    bands = np.frombuffer(raw, np.uint8).reshape(len(rows), n_bands, width)
    id_ints = np.array([e["id_int"] for e in rows], dtype=np.uint64)
    cluster, _ = cluster_ids_local(id_ints, bands, np.arange(len(rows)))
    labels = {e["id"]: int(c) for e, c in zip(rows, cluster, strict=True)}
    labels.update({e["id"]: e["id_int"] for e in expected if e["minhash"][column] is None})
    return labels


def clusters_of(labels: dict[str, int]) -> list[set[str]]:
    groups = defaultdict(set)
    for doc_id, cluster in labels.items():
        groups[cluster].add(doc_id)
    return [g for g in groups.values() if len(g) > 1]


def test_groundtruth_clusters_at_0_7_are_exactly_the_known_duplicates():
    found = clusters_of(groundtruth_clusters("0.7"))
    known = known_groups(("dup_of", "near_dup_of"))
    assert len(known) == 6  # 3 exact groups, 3 near-duplicate pairs (README)
    assert sorted(map(sorted, found)) == sorted(map(sorted, known))


def test_groundtruth_clusters_at_1_0_are_exactly_the_exact_duplicates():
    found = clusters_of(groundtruth_clusters("1.0"))
    assert sorted(map(sorted, found)) == sorted(map(sorted, known_groups(("dup_of",))))


def test_groundtruth_cluster_id_is_the_minimum_id_int():
    expected, _ = load_groundtruth()
    id_int = {e["id"]: e["id_int"] for e in expected}
    labels = groundtruth_clusters("0.7")
    for group in clusters_of(labels):
        assert {labels[i] for i in group} == {min(id_int[i] for i in group)}


# ---------------------------------------------------------------- the local engine, without Beam


def _signature_table(rows: list[dict], threshold: float = 0.7):
    import pyarrow as pa

    column = signature_column(threshold)
    schema = pa.schema([("id", pa.string()), ("id_int", pa.uint64()), ("shard_id", pa.string()),
                        (column, pa.list_(pa.binary()))])
    return pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema)


def test_cluster_documents_counts_every_row_and_builds_the_output_tables():
    from dedup.fuzzy_local import CLUSTER_SCHEMA, DOCUMENT_FLAG_SCHEMA, cluster_documents

    rng = np.random.default_rng(11)
    bands = rng.integers(0, 256, (5, 14, 36), dtype=np.uint8)
    bands[3, 2] = bands[0, 2]  # doc 3 shares one band with doc 0: one cluster of two
    ids = [f"2023-06/000{i % 2}/en_head.json.gz/{i // 2}" for i in range(5)]
    rows = [{"id": doc_id, "id_int": document_id_int(doc_id), "shard_id": shard_id_of(doc_id),
             "signature_sim0.7": [bytes(b) for b in bands[i]]} for i, doc_id in enumerate(ids)]
    rows[4]["signature_sim0.7"] = None  # too short for a signature: its own cluster, not an error
    rows.append({"id": "2023-06/0000/en_head.json.gz/3", "id_int": 7, "signature_sim0.7": [b"x" * 36] * 13})
    rows.append({"id": None, "id_int": 9, "signature_sim0.7": None})
    result = cluster_documents(_signature_table(rows), 0.7)
    assert result.counters == {"documents_without_id": 1, "documents": 6, "documents_without_signature": 1,
                               "documents_bad_signature": 1}
    # one flags file per input file (shard id), every document with an id in one of them, in row order
    assert sorted(result.documents) == [
        "snapshot=2023-06/language=en/bucket=head/0000.parquet",
        "snapshot=2023-06/language=en/bucket=head/0001.parquet",
    ]
    flagged = [r for t in result.documents.values() for r in t.to_pylist()]
    assert sorted(r["id"] for r in flagged) == sorted(r["id"] for r in rows if r["id"])
    assert all(t.schema == DOCUMENT_FLAG_SCHEMA for t in result.documents.values())
    first = result.documents["snapshot=2023-06/language=en/bucket=head/0000.parquet"].column("id").to_pylist()
    assert first == sorted(first, key=lambda i: int(i.rsplit("/", 1)[1]))
    # the clusters files (RPv2's, one per shard) hold the two linked documents, of shards 0 and 1; the
    # smaller id_int is the cluster id and the kept representative
    assert sorted(result.clusters) == ["2023-06/0000/en_head.clusters.parquet", "2023-06/0001/en_head.clusters.parquet"]
    assert all(t.schema == CLUSTER_SCHEMA for t in result.clusters.values())
    clustered = sorted((r for t in result.clusters.values() for r in t.to_pylist()), key=lambda r: r["id_int"])
    pair = sorted([rows[0], rows[3]], key=lambda r: r["id_int"])
    assert clustered == [
        {"id": r["id"], "id_int": r["id_int"], "cluster_id": pair[0]["id_int"], "shard_id": r["shard_id"],
         "is_representative": r is pair[0]} for r in pair
    ]


def test_the_local_engine_and_the_exact_dedup_rules_run_without_beam():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import numpy as np\n"
        "import dedup.exact, dedup.fuzzy_local\n"
        "c, _ = dedup.fuzzy_local.cluster_ids_local(np.array([5, 3], np.uint64), np.zeros((2, 1, 4), np.uint8),"
        " np.arange(2))\n"
        "assert c.tolist() == [3, 3]\n"
        "assert dedup.exact.merge_counts([{'snapshot': 's', 'documents': 2, 'duplicates': 1}])"
        " == {'s': {'documents': 2, 'duplicates': 1}}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'apache_beam'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


# ------------------------------------------------------------ band rows of the Beam engine (no Beam)


def _band_star_as_beam(nodes, bands, chunk_rows, parts, passes):
    """Band rows split as the Beam engine splits them (chunks per input batch, fingerprint partitions,
    passes), each pass reduced by a KeyMins then linked by band_star_edges."""
    chunks = []
    for start in range(0, len(nodes), chunk_rows):
        chunks.append(band_rows(nodes[start:start + chunk_rows], bands[start:start + chunk_rows]))
    edges = set()
    for p in range(parts):
        for j in range(passes):
            cell = [(fp[sel], keys[sel], nd[sel]) for fp, keys, nd in chunks
                    for sel in [(partition_of(fp, parts) == p) & (subpass_of(fp, passes) == j)]]
            state = KeyMins(compact_at=5)
            for fp, keys, nd in cell:
                state.add(fp, nd, keys)
            found = state.finish()
            for fp, keys, nd in cell:
                hi, lo = band_star_edges(fp, keys, nd, found)
                edges |= set(zip(hi.tolist(), lo.tolist(), strict=True))
    return edges


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 80), st.integers(1, 6), st.integers(1, 4), st.integers(0, 2**32 - 1), st.integers(1, 30),
       st.integers(1, 4), st.integers(1, 3))
def test_beam_band_rows_link_the_same_pairs_as_star_edges(n, n_bands, alphabet, seed, chunk_rows, parts, passes):
    rng = np.random.default_rng(seed)
    bands = rng.integers(0, alphabet, (n, n_bands, 4), dtype=np.uint8)
    nodes = rng.permutation(10 * n)[:n].astype(np.int64) - 5 * n
    src, dst = star_edges(nodes, bands)
    expected = set(zip(nodes[src].tolist(), nodes[dst].tolist(), strict=True))
    assert _band_star_as_beam(nodes, bands, chunk_rows, parts, passes) == expected


def test_equal_bytes_in_different_bands_are_different_keys():
    bands = np.zeros((2, 2, 4), np.uint8)
    bands[1] = bands[0, ::-1]  # doc 1's band 1 = doc 0's band 0 and vice versa, all zeros: same bytes
    bands[0, 1] = 7
    bands[1, 0] = 7
    fp, keys, nodes = band_rows(np.array([10, 20]), bands)
    assert keys[:, 0].tolist() == [0, 0, 1, 1]
    assert len(set(fp.tolist())) == 4  # (band 0, zeros), (band 0, 7s), (band 1, 7s), (band 1, zeros)


def test_a_fingerprint_collision_is_detected_and_resolved_exactly():
    # four rows, two different keys, given the same fingerprint: the fast path refuses, the exact one links
    keys = np.array([[0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [0, 4, 3, 2, 1], [0, 4, 3, 2, 1]], np.uint8)
    nodes = np.array([3, 1, 2, 0], np.int64)
    fp = np.full(4, 42, np.uint64)
    state = KeyMins()
    state.add(fp, nodes, keys)
    assert band_star_edges(fp, keys, nodes, state.finish()) is None
    hi, lo = band_star_edges_exact([(keys[:2], nodes[:2]), (keys[2:], nodes[2:])])
    assert set(zip(hi.tolist(), lo.tolist(), strict=True)) == {(3, 1), (2, 0)}


def test_flags_file_order_by_arrow_equals_the_row_order_rule():
    import pyarrow as pa

    from dedup.fuzzy_local import flag_table

    rng = np.random.default_rng(3)
    ids = [f"2023-06/000{rng.integers(0, 3)}/en_head.json.gz/{rng.integers(0, 10**6)}" for _ in range(3000)]
    rows = {"id": ids, "id_int": pa.array([document_id_int(i) for i in ids], pa.uint64()),
            "shard_id": [shard_id_of(i) for i in ids], "cluster_id": pa.array([0] * len(ids), pa.uint64()),
            "is_representative": [False] * len(ids)}
    fast = flag_table([pa.table(rows)])
    odd = {**rows, "id": [*ids[:-1], "2023-06/0000/en_head.json.gz/x"]}  # not a row number: the Python rule
    slow = flag_table([pa.table(odd)])
    def key(i):
        prefix, _, row = i.rpartition("/")
        return (prefix, int(row), "") if row.isdigit() else (prefix, -1, row)
    assert fast.column("id").to_pylist() == sorted(ids, key=key)
    assert slow.column("id").to_pylist() == sorted(odd["id"], key=key)
