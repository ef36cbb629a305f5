"""Connected components of the LSH graph; a component's cluster id is its minimum id_int (as RPv2).

Two implementations that must agree:

* :func:`components_local` — scipy.sparse.csgraph on one machine, for slices that fit in memory (RPv2
  used networkit on one 500 GB node; the result, ``cluster_id = min(id_int of the component)``, is the
  same).
* the alternating large-star / small-star algorithm of Kiveris et al. 2014 ("Connected Components in
  MapReduce and Beyond", SoCC '14). :func:`large_star` and :func:`small_star` are the per-node steps,
  written over a node, its combined minimum and its neighbours streamed once, so that the Beam
  transforms (``pipeline/transforms/fuzzy_dedup.py``) can run them after a min-combiner and a co-group without
  ever holding a node's neighbour list. :func:`components_star` runs the same steps in memory; it is
  the executable specification the Beam transforms are tested against.

Convergence (Kiveris, Lemma 2 and Theorem 3): a round is a large-star then a small-star step. If in a
round no large-star step moves an edge (every node with a larger neighbour is its own neighbourhood
minimum) and no small-star step rewires one (every node has at most one smaller neighbour), the graph
is a forest of stars centred on each component's minimum, and stays so. The step functions report
these moves, so a driver knows when to stop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np


def large_star(u: int, min_neighbour: int, larger_neighbours: Iterable[int]) -> Iterator[tuple[int, int, bool]]:
    """Large-star at node ``u``: every neighbour v > u is re-attached to m = min(Γ(u) ∪ {u}).

    Yields canonical edges (v, m) with v > m and whether the edge moved (m != u). ``min_neighbour`` is
    the minimum over all of u's neighbours (a combiner's output); ``larger_neighbours`` is streamed once.
    """
    m = min(u, min_neighbour)
    for v in larger_neighbours:
        yield v, m, m != u


def small_star(u: int, min_smaller: int, smaller_neighbours: Iterable[int]) -> Iterator[tuple[int, int, bool]]:
    """Small-star at node ``u`` (which has at least one smaller neighbour): u and every smaller neighbour
    v are attached to m = min(smaller neighbours).

    Yields canonical edges (hi, lo) and whether it rewired an edge (v not already m). Self-loops (m, m)
    are dropped.
    """
    m = min_smaller
    for v in smaller_neighbours:
        if v != m:
            yield v, m, True
    yield u, m, False


def _neighbour_maps(edges: Iterable[tuple[int, int]]) -> tuple[dict[int, set[int]], dict[int, set[int]]]:
    larger: dict[int, set[int]] = {}
    smaller: dict[int, set[int]] = {}
    for a, b in edges:
        if a == b:
            continue
        hi, lo = (a, b) if a > b else (b, a)
        larger.setdefault(lo, set()).add(hi)
        smaller.setdefault(hi, set()).add(lo)
    return larger, smaller


def star_round(edges: set[tuple[int, int]]) -> tuple[set[tuple[int, int]], int]:
    """One large-star + small-star round over canonical edges (hi, lo); returns (edges, moves)."""
    moves = 0
    larger, smaller = _neighbour_maps(edges)
    after_large: set[tuple[int, int]] = set()
    for u, bigger in larger.items():
        min_nb = min(min(bigger), min(smaller.get(u, (u,))))
        for v, m, moved in large_star(u, min_nb, bigger):
            after_large.add((v, m))
            moves += moved
    _, smaller = _neighbour_maps(after_large)
    after_small: set[tuple[int, int]] = set()
    for u, lower in smaller.items():
        for v, m, moved in small_star(u, min(lower), lower):
            after_small.add((v, m))
            moves += moved
    return after_small, moves


def components_star(
    nodes: Iterable[int], edges: Iterable[tuple[int, int]], max_rounds: int = 200
) -> dict[int, int]:
    """node -> component minimum by alternating large-star / small-star until no edge moves.

    Raises RuntimeError if ``max_rounds`` rounds do not converge (Kiveris bound: O(log² n) rounds).
    """
    current = {(a, b) if a > b else (b, a) for a, b in edges if a != b}
    for _ in range(max_rounds):
        current, moves = star_round(current)
        if moves == 0:
            break
    else:
        raise RuntimeError(f"large-star/small-star did not converge in {max_rounds} rounds")
    labels = {int(u): int(u) for u in nodes}
    for hi, lo in current:
        labels[hi] = min(labels.get(hi, hi), lo)
        labels.setdefault(lo, lo)
    return labels


def components_local(nodes: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Cluster id (the component's minimum node) for every entry of ``nodes``.

    ``nodes`` must be sorted and unique (``np.unique`` output); ``src``/``dst`` are edges as indices into
    ``nodes``. scipy labels components arbitrarily; since nodes are sorted, the first index carrying a
    label is the component's minimum.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(nodes)
    if n == 0:
        return nodes.copy()
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=True, connection="weak")
    # labels are 0..k-1, so np.unique's first indices are indexed by label
    _, first_index = np.unique(labels, return_index=True)
    return nodes[first_index[labels]]
