"""Connected components of the LSH graph; a component's cluster id is its minimum id_int (as RPv2).

Two implementations that must agree:

* :func:`components_local` — scipy.sparse.csgraph on one machine, for slices that fit in memory (RPv2
  used networkit on one 500 GB node; the result, ``cluster_id = min(id_int of the component)``, is the
  same).
* the alternating large-star / small-star algorithm of Kiveris et al. 2014 ("Connected Components in
  MapReduce and Beyond", SoCC '14). :func:`large_star` and :func:`small_star` are the per-node steps and
  :func:`components_star` runs them in memory: the executable specification. :func:`large_star_arrays`
  and :func:`small_star_arrays` are the same steps on arrays of edges, which the Beam transforms
  (``pipeline/transforms/fuzzy_dedup.py``) run per node partition after a :class:`KeyMins` pass, without
  ever holding a node's neighbour list; :func:`components_star_arrays` chains them in memory.

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


# ----------------------------------------------------------------------- the same steps on arrays
#
# The Beam engine runs large-star / small-star on arrays: the edges of one node partition arrive as a
# few chunks (one per upstream bundle), a :class:`KeyMins` reduces them to one minimum per node in a
# first pass and a second pass streams them again to emit the step's edges. Memory is the distinct
# nodes of the pass plus one chunk, never a node's neighbour list (a cluster of a million pages is a
# star whose centre has a million neighbours). :func:`subpass_count` splits a partition into passes
# when even its distinct nodes exceed a budget.

_MIX = np.uint64(0x9E3779B97F4A7C15)


def mix64(values: np.ndarray) -> np.ndarray:
    """A well-spread 64-bit hash of integer keys (splitmix64's finalizer), to partition nodes whose
    low bits may not be uniform."""
    x = np.ascontiguousarray(values).view(np.uint64) if values.dtype.itemsize == 8 else values.astype(np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def partition_of(hashes: np.ndarray, parts: int) -> np.ndarray:
    """Partition (0..parts-1) of 64-bit hashes, from their high 32 bits."""
    return ((hashes >> np.uint64(32)) % np.uint64(parts)).astype(np.int64)


def subpass_of(hashes: np.ndarray, passes: int) -> np.ndarray:
    """Sub-pass (0..passes-1) of 64-bit hashes, from their low 32 bits (independent of the partition)."""
    return ((hashes & np.uint64(0xFFFFFFFF)) % np.uint64(passes)).astype(np.int64)


def subpass_count(rows: int, budget: int) -> int:
    """Passes over a partition of ``rows`` rows so that one pass holds at most ~``budget`` distinct keys."""
    return max(1, -(-rows // max(1, budget)))


def group_min_max(keys: np.ndarray, mins: np.ndarray, maxs: np.ndarray,
                  payload: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """(sorted distinct keys, min of ``mins`` per key, max of ``maxs`` per key[, first payload row per
    key])."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]) if len(keys) else np.zeros(0, int)
    if not len(keys):
        out = (keys, mins, maxs)
        return out if payload is None else (*out, payload)
    out = (sorted_keys[starts], np.minimum.reduceat(mins[order], starts), np.maximum.reduceat(maxs[order], starts))
    return out if payload is None else (*out, payload[order[starts]])


class KeyMins:
    """Per-key minimum and maximum of values streamed in chunks (optionally one payload row per key,
    the first seen), compacted whenever the kept rows pass ``compact_at``: the state is the distinct
    keys, whatever the number of rows per key."""

    def __init__(self, compact_at: int = 1 << 20):
        self._compact_at = compact_at
        self._parts: list[tuple[np.ndarray, ...]] = []
        self._rows = 0

    def add(self, keys: np.ndarray, values: np.ndarray, payload: np.ndarray | None = None) -> None:
        if len(keys) == 0:
            return
        self._parts.append(group_min_max(keys, values, values, payload))
        self._rows += len(self._parts[-1][0])
        if self._rows > self._compact_at and len(self._parts) > 1:
            self._compact()

    def _compact(self) -> None:
        cols = [np.concatenate(c) for c in zip(*self._parts, strict=True)]
        self._parts = [group_min_max(cols[0], cols[1], cols[2], cols[3] if len(cols) > 3 else None)]
        self._rows = len(self._parts[0][0])
        self._compact_at = max(self._compact_at, 2 * self._rows)

    def finish(self) -> tuple[np.ndarray, ...]:
        """(sorted keys, mins, maxs[, payload]); empty arrays when nothing was added."""
        if not self._parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        if len(self._parts) > 1:
            self._compact()
        return self._parts[0]


def lookup(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index into ``sorted_keys`` of each of ``keys``, whether it is there)."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
    idx = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return idx, sorted_keys[idx] == keys


def distinct_edges(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (hi, lo) pairs, sorted."""
    if len(hi) == 0:
        return hi, lo
    order = np.lexsort((lo, hi))
    hi, lo = hi[order], lo[order]
    keep = np.r_[True, (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])]
    return hi[keep], lo[keep]


def large_star_arrays(u: np.ndarray, v: np.ndarray, mins: KeyMins | tuple[np.ndarray, ...]
                      ) -> tuple[np.ndarray, np.ndarray, int]:
    """Large-star on adjacency rows (u, v) (both directions of every edge), given the per-node minimum
    neighbour of every u (``mins``: :meth:`KeyMins.finish` over the same rows): (v, m(u)) for v > u with
    m(u) = min(Γ(u) ∪ {u}), and how many of these moved (m(u) != u). As :func:`large_star`."""
    keys, nb_min = mins[0], mins[1]
    larger = v > u
    u, v = u[larger], v[larger]
    idx, _ = lookup(keys, u)
    m = np.minimum(u, nb_min[idx])
    return v, m, int(np.count_nonzero(m != u))


def small_star_arrays(u: np.ndarray, v: np.ndarray, mins: tuple[np.ndarray, ...]
                      ) -> tuple[np.ndarray, np.ndarray, int]:
    """Small-star on canonical edges (u=hi, v=lo), given m(u) = min of u's smaller neighbours (``mins``
    over the same rows): (v, m) for every v != m (a rewiring move) and (u, m), as :func:`small_star`."""
    keys, nb_min = mins[0], mins[1]
    idx, _ = lookup(keys, u)
    m = nb_min[idx]
    moved = v != m
    hi = np.concatenate([v[moved], u])
    lo = np.concatenate([m[moved], m])
    return hi, lo, int(np.count_nonzero(moved))


def components_star_arrays(nodes: np.ndarray, hi: np.ndarray, lo: np.ndarray, max_rounds: int = 200
                           ) -> np.ndarray:
    """Component minimum of every entry of ``nodes`` (int64) by the array steps, in memory: the
    specification the Beam engine's partitioned rounds are tested against."""
    hi, lo = np.asarray(hi, np.int64), np.asarray(lo, np.int64)
    keep = hi != lo
    hi, lo = np.maximum(hi, lo)[keep], np.minimum(hi, lo)[keep]
    for _ in range(max_rounds):
        u, v = np.concatenate([hi, lo]), np.concatenate([lo, hi])
        state = KeyMins()
        state.add(u, v)
        hi, lo, moves = large_star_arrays(u, v, state.finish())
        hi, lo = distinct_edges(hi, lo)
        state = KeyMins()
        state.add(hi, lo)
        hi, lo, small_moves = small_star_arrays(hi, lo, state.finish())
        keep = hi != lo
        hi, lo = distinct_edges(hi[keep], lo[keep])
        if moves + small_moves == 0:
            break
    else:
        raise RuntimeError(f"large-star/small-star did not converge in {max_rounds} rounds")
    return labels_from_edges(np.asarray(nodes, np.int64), hi, lo)


def labels_from_edges(nodes: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """min(u, min Γ(u)) for every entry of ``nodes``: after convergence, its component's minimum."""
    state = KeyMins()
    state.add(np.concatenate([hi, lo]), np.concatenate([lo, hi]))
    keys, nb_min = state.finish()[:2]
    idx, found = lookup(keys, nodes)
    return np.where(found, np.minimum(nodes, nb_min[idx] if len(keys) else nodes), nodes)
