"""Connected components: the in-memory large-star/small-star specification and the scipy path both
equal networkx's components, with the component minimum as cluster id (RPv2's cluster_id)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.components import (
    KeyMins,
    components_local,
    components_star,
    components_star_arrays,
    large_star,
    large_star_arrays,
    small_star,
    small_star_arrays,
    star_round,
    subpass_count,
)


def networkx_minimum_labels(nodes, edges) -> dict[int, int]:
    graph = nx.Graph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    return {u: min(component) for component in nx.connected_components(graph) for u in component}


@st.composite
def random_graphs(draw, max_nodes: int = 50):
    """Node labels drawn from the whole signed 64-bit range (our node keys), edges between them."""
    nodes = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=max_nodes, unique=True))
    index = st.integers(0, len(nodes) - 1)
    pairs = draw(st.lists(st.tuples(index, index), max_size=3 * len(nodes)))
    return nodes, [(nodes[a], nodes[b]) for a, b in pairs]


@settings(max_examples=300, deadline=None)
@given(random_graphs())
def test_star_components_equal_networkx(graph):
    nodes, edges = graph
    assert components_star(nodes, edges) == networkx_minimum_labels(nodes, edges)


@settings(max_examples=300, deadline=None)
@given(random_graphs())
def test_scipy_components_equal_networkx(graph):
    nodes, edges = graph
    unique = np.unique(np.array(nodes, dtype=np.int64))
    position = {int(u): i for i, u in enumerate(unique)}
    src = np.array([position[a] for a, _ in edges], dtype=np.int64)
    dst = np.array([position[b] for _, b in edges], dtype=np.int64)
    labels = components_local(unique, src, dst)
    expected = networkx_minimum_labels(nodes, edges)
    assert {int(u): int(label) for u, label in zip(unique, labels, strict=True)} == expected


def test_long_path_in_shuffled_order_converges():
    rng = np.random.default_rng(7)
    order = rng.permutation(2000).tolist()
    edges = list(zip(order[:-1], order[1:], strict=True))
    labels = components_star(range(2000), edges)
    assert set(labels.values()) == {0}


def test_star_forest_is_a_fixed_point():
    # two stars centred on their minima: a round moves nothing and returns the same edges
    edges = {(5, 1), (9, 1), (7, 1), (8, 2), (3, 2)}
    after, moves = star_round(edges)
    assert moves == 0
    assert after == edges


def test_round_reports_moves_until_converged():
    edges = {(2, 1), (3, 2), (4, 3)}  # a path: not a star
    _, moves = star_round(edges)
    assert moves > 0


def test_not_converging_within_the_bound_raises():
    order = np.random.default_rng(1).permutation(500).tolist()
    with pytest.raises(RuntimeError, match="did not converge"):
        components_star(range(500), list(zip(order[:-1], order[1:], strict=True)), max_rounds=1)


def test_large_star_attaches_larger_neighbours_to_the_neighbourhood_minimum():
    # node 5 with neighbours 2 (smaller) and 7, 9 (larger): 7 and 9 move to 2
    assert sorted(large_star(5, 2, iter([7, 9]))) == [(7, 2, True), (9, 2, True)]
    # a local minimum keeps its edges and moves nothing
    assert sorted(large_star(5, 7, iter([7, 9]))) == [(7, 5, False), (9, 5, False)]


def test_small_star_attaches_node_and_smaller_neighbours_to_their_minimum():
    out = sorted(small_star(9, 2, iter([2, 4, 6])))
    assert out == [(4, 2, True), (6, 2, True), (9, 2, False)]


def test_scipy_components_of_isolated_nodes_are_themselves():
    nodes = np.array([-5, 3, 10], dtype=np.int64)
    labels = components_local(nodes, np.empty(0, np.int64), np.empty(0, np.int64))
    assert labels.tolist() == [-5, 3, 10]


# ------------------------------------------------------------------------- the array steps (Beam engine)


@settings(max_examples=300, deadline=None)
@given(random_graphs())
def test_array_star_components_equal_networkx(graph):
    nodes, edges = graph
    pairs = np.array(edges, dtype=np.int64).reshape(-1, 2)
    labels = components_star_arrays(np.array(nodes, np.int64), pairs[:, 0], pairs[:, 1])
    expected = networkx_minimum_labels(nodes, edges)
    assert dict(zip(nodes, labels.tolist(), strict=True)) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(-50, 50), st.integers(-(2**63), 2**63 - 1)), max_size=200),
       st.integers(1, 7), st.integers(1, 64))
def test_key_mins_over_chunks_equal_a_dict_whatever_the_chunking_and_compaction(rows, chunk, compact_at):
    expected: dict[int, tuple[int, int]] = {}
    for k, v in rows:
        lo, hi = expected.get(k, (v, v))
        expected[k] = (min(lo, v), max(hi, v))
    state = KeyMins(compact_at=compact_at)
    keys = np.array([k for k, _ in rows], np.int64)
    values = np.array([v for _, v in rows], np.int64)
    for start in range(0, len(rows), chunk):
        state.add(keys[start:start + chunk], values[start:start + chunk])
    found, mins, maxs = state.finish()
    assert {int(k): (int(a), int(b)) for k, a, b in zip(found, mins, maxs, strict=True)} == expected


def _partitioned_step(step, u, v, parts, passes):
    """A step as the Beam engine runs it: rows split into partitions and passes, one KeyMins each."""
    out_hi, out_lo, moves = [], [], 0
    for cell in range(parts * passes):
        sel = (np.abs(u) % (parts * passes)) == cell
        state = KeyMins(compact_at=3)
        for start in range(0, int(sel.sum()), 2):  # chunks of two rows
            state.add(u[sel][start:start + 2], v[sel][start:start + 2])
        hi, lo, moved = step(u[sel], v[sel], state.finish())
        out_hi.append(hi)
        out_lo.append(lo)
        moves += moved
    return set(zip(np.concatenate(out_hi).tolist(), np.concatenate(out_lo).tolist(), strict=True)), moves


@settings(max_examples=100, deadline=None)
@given(random_graphs(max_nodes=30), st.integers(1, 4), st.integers(1, 3))
def test_array_steps_split_into_partitions_and_passes_equal_the_per_node_steps(graph, parts, passes):
    _, edges = graph
    canonical = {(max(a, b), min(a, b)) for a, b in edges if a != b}
    hi = np.array([e[0] for e in canonical], np.int64)
    lo = np.array([e[1] for e in canonical], np.int64)
    after_large, large_moves = _partitioned_step(large_star_arrays, np.concatenate([hi, lo]),
                                                 np.concatenate([lo, hi]), parts, passes)
    after_small, small_moves = _partitioned_step(
        small_star_arrays, np.array([e[0] for e in after_large], np.int64),
        np.array([e[1] for e in after_large], np.int64), parts, passes)
    expected, expected_moves = star_round(canonical)
    assert {e for e in after_small if e[0] != e[1]} == expected
    assert (large_moves + small_moves == 0) == (expected_moves == 0)


def test_subpass_count_bounds_the_rows_of_a_pass():
    assert subpass_count(0, 10) == 1
    assert subpass_count(10, 10) == 1
    assert subpass_count(11, 10) == 2
