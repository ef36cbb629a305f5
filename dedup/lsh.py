"""MinHash LSH banding: documents that share a band are linked to the smallest id_int of that band.

RPv2 (``app/src/run_lsh.py``) groups the exploded ``(signature_sim<t>[i], i)`` pairs, keeps groups with
more than one member and emits, for every member, the edge ``member -> min(id_int of the group)``. We do
the same: a band shared by k documents gives k-1 *star* edges, never the k(k-1)/2 pairs, so a band that
millions of boilerplate pages share costs memory linear in its size.

Two forms of the same rule live here: :func:`band_rows` and :func:`band_star_edges` key the bands of a
file for a distributed group-by and link each band to its key's minimum (the Beam transforms in
``pipeline/transforms/fuzzy_dedup.py``), and :func:`star_edges` does the whole grouping with numpy for a
slice that fits in memory. Both link the same pairs (:func:`band_keys` is the key, one document at a time).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from dedup.components import lookup, mix64

# RPv2's band layouts (bands x rows of 32-bit hashes), from ``dedupe.utils.optimal_param`` with 128
# permutations: 0.7 -> 14x9, 0.8 -> 9x13, 0.9 -> 5x25, 1.0 -> 1x128.
BANDS_PER_THRESHOLD: dict[float, tuple[int, int]] = {0.7: (14, 9), 0.8: (9, 13), 0.9: (5, 25), 1.0: (1, 128)}

# id_int is an unsigned 64-bit integer; shuffles (Beam's VarIntCoder) want signed 64-bit. Subtracting
# 2**63 maps [0, 2**64) onto [-2**63, 2**63) and keeps the order, so "minimum id_int" is unchanged.
NODE_OFFSET = 1 << 63


def parse_threshold(value: str | float) -> float:
    """``"0.8"`` -> 0.8; raises ValueError for a threshold RPv2 has no bands for."""
    threshold = round(float(value), 1)
    if threshold not in BANDS_PER_THRESHOLD or abs(float(value) - threshold) > 1e-9:
        raise ValueError(f"threshold must be one of {sorted(BANDS_PER_THRESHOLD)}, got {value!r}")
    return threshold


def signature_column(threshold: float) -> str:
    """RPv2's column for the bands of one threshold: ``signature_sim0.7`` (``str(float)``, as RPv2)."""
    return f"signature_sim{parse_threshold(threshold)}"


def band_shape(threshold: float) -> tuple[int, int]:
    """(number of bands, bytes per band) of a threshold's signature column."""
    bands, rows = BANDS_PER_THRESHOLD[parse_threshold(threshold)]
    return bands, 4 * rows


def to_node(id_int: int) -> int:
    """Order-preserving map of an unsigned id_int to a signed 64-bit node key."""
    return int(id_int) - NODE_OFFSET


def from_node(node: int) -> int:
    """Inverse of :func:`to_node`."""
    return int(node) + NODE_OFFSET


def check_bands(bands: Sequence[bytes] | None, threshold: float) -> str | None:
    """Why a signature cannot be banded (None if it can). A null signature is not an error: RPv2 gives
    none for documents with fewer than 13 words, and such a document is its own cluster."""
    if bands is None:
        return None
    n_bands, band_bytes = band_shape(threshold)
    if len(bands) != n_bands:
        return f"expected {n_bands} bands, got {len(bands)}"
    for band in bands:
        if not isinstance(band, bytes | bytearray) or len(band) != band_bytes:
            return f"expected bands of {band_bytes} bytes"
    return None


def band_keys(bands: Sequence[bytes]) -> Iterator[bytes]:
    """The group-by keys of one document's bands: the band index (one byte) then the band's bytes.

    The index is part of the key because RPv2 groups by (band, band bytes): equal bytes in different
    bands are a coincidence of different permutations, not a shared band.
    """
    for index, band in enumerate(bands):
        yield bytes((index,)) + bytes(band)


def _band_fingerprints(rows: np.ndarray) -> np.ndarray:
    """A 64-bit fingerprint per band (rows: (n, r) uint32) to sort by; collisions are resolved later."""
    h = np.zeros(rows.shape[0], dtype=np.uint64)
    mult = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        for j in range(rows.shape[1]):
            h = (h ^ rows[:, j].astype(np.uint64)) * mult
            h ^= h >> np.uint64(29)
    return h


def _group_order(band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order the rows of ``band`` ((n, L) uint8) so equal bands are adjacent; returns (order, starts)
    where ``starts`` marks the first row of every run of equal bands in that order.

    Sorting 64-bit fingerprints is 3x faster than sorting the raw bytes; rows whose fingerprints tie
    but whose bytes differ (a collision, ~n^2/2^65) are re-sorted by their bytes, so the grouping is
    exact.
    """
    n, width = band.shape
    words = band.view(">u4") if width % 4 == 0 else band.astype(np.uint32)
    fp = _band_fingerprints(words)
    order = np.argsort(fp, kind="stable")
    sorted_fp = fp[order]
    sorted_band = band[order]
    same_fp = sorted_fp[1:] == sorted_fp[:-1]
    same_bytes = np.all(sorted_band[1:] == sorted_band[:-1], axis=1)
    if np.any(same_fp & ~same_bytes):  # fingerprint collision: exact sort inside the tied runs
        void = np.ascontiguousarray(band).view(np.dtype((np.void, width))).ravel()
        order = np.lexsort((void.argsort(kind="stable").argsort(), fp))
        sorted_band = band[order]
        same_bytes = np.all(sorted_band[1:] == sorted_band[:-1], axis=1)
        same_fp = fp[order][1:] == fp[order][:-1]
    boundary = np.ones(n, dtype=bool)
    boundary[1:] = ~(same_fp & same_bytes)
    return order, np.flatnonzero(boundary)


def star_edges(nodes: np.ndarray, bands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Star edges of all bands, in index space: (src, dst) arrays of row indices into ``nodes``.

    ``nodes`` are the documents' keys (any integer dtype whose order is the id_int order), ``bands``
    an (n, bands, bytes) uint8 array. For every group of rows sharing (band index, band bytes) each
    member that is not the group's minimum gets the edge member -> minimum, as RPv2's
    ``LSH.__build_edges``. Duplicate edges (pairs sharing several bands) are removed.
    """
    n = len(nodes)
    if n == 0 or bands.shape[1] == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    src_parts, dst_parts = [], []
    for b in range(bands.shape[1]):
        order, starts = _group_order(np.ascontiguousarray(bands[:, b, :]))
        sizes = np.diff(np.append(starts, n))
        multi = sizes > 1
        if not np.any(multi):
            continue
        group_of_pos = np.repeat(np.arange(len(starts)), sizes)
        keys = nodes[order]
        # minimum key per group, then the row index that holds it
        group_min = np.minimum.reduceat(keys, starts)
        is_min = keys == group_min[group_of_pos]
        # first row holding the group's minimum (ids are unique per node, but rows may repeat a node)
        min_pos = np.full(len(starts), -1, dtype=np.int64)
        cand = np.flatnonzero(is_min)
        first = np.unique(group_of_pos[cand], return_index=True)[1]
        min_pos[group_of_pos[cand[first]]] = cand[first]
        member = multi[group_of_pos] & (np.arange(n) != min_pos[group_of_pos])
        src_parts.append(order[member])
        dst_parts.append(order[min_pos[group_of_pos[member]]])
    if not src_parts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    src = np.concatenate(src_parts).astype(np.int64)
    dst = np.concatenate(dst_parts).astype(np.int64)
    packed = np.unique(src * np.int64(n) + dst)
    return packed // n, packed % n


# --------------------------------------------------------------------- band rows for the Beam engine
#
# The Beam engine keys the bands of a whole file (or batch) at once: one row per (document, band) with
# a 64-bit fingerprint of (band index, band bytes) to partition and group by, the exact key bytes (the
# band index byte then the band, as :func:`band_keys`) to check that a fingerprint never merges two
# different keys, and the document's node. :func:`band_star_edges` then links each row to the minimum
# node of its key, given that minimum from a first pass (``dedup.components.KeyMins``).


def band_rows(nodes: np.ndarray, bands: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fingerprints uint64, keys (rows, 1 + bytes) uint8, nodes int64) of every band of every row of
    ``bands`` ((n, bands, bytes) uint8; ``nodes`` (n,) int64), band-major."""
    n, n_bands, width = bands.shape
    fps, keys = [], []
    for b in range(n_bands):
        band = np.ascontiguousarray(bands[:, b, :])
        words = band.view(">u4") if width % 4 == 0 else band.astype(np.uint32)
        with np.errstate(over="ignore"):
            fps.append(mix64(_band_fingerprints(words) ^ (np.uint64(b + 1) * np.uint64(0xD6E8FEB86659FD93))))
        key = np.empty((n, width + 1), np.uint8)
        key[:, 0] = b
        key[:, 1:] = band
        keys.append(key)
    if not n_bands:
        return np.zeros(0, np.uint64), np.zeros((0, width + 1), np.uint8), np.zeros(0, np.int64)
    return np.concatenate(fps), np.concatenate(keys), np.tile(np.asarray(nodes, np.int64), n_bands)


def band_star_edges(fp: np.ndarray, keys: np.ndarray, nodes: np.ndarray, state: tuple[np.ndarray, ...]
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    """Star edges (member, minimum of its band key) of some band rows, given ``state`` = (sorted
    fingerprints, minimum node, maximum node, key bytes) of every fingerprint they carry
    (``KeyMins.finish`` with the key bytes as payload). None when a row's key bytes differ from its
    fingerprint's: a fingerprint collision, which :func:`band_star_edges_exact` then resolves."""
    if len(fp) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    sorted_fp, mins, _, first_keys = state
    idx, _ = lookup(sorted_fp, fp)
    if not np.array_equal(first_keys[idx], keys):
        return None
    m = mins[idx]
    member = nodes != m
    return nodes[member], m[member]


def band_star_edges_exact(chunks: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Star edges of band rows ``(keys, nodes)`` keyed by their exact bytes (a Python dict): the slow,
    exact path for the rare pass whose fingerprints collide."""
    minimum: dict[bytes, int] = {}
    for keys, nodes in chunks:
        for key, node in zip(keys, nodes.tolist(), strict=True):
            k = key.tobytes()
            if node < minimum.get(k, node + 1):
                minimum[k] = node
    hi, lo = [], []
    for keys, nodes in chunks:
        for key, node in zip(keys, nodes.tolist(), strict=True):
            m = minimum[key.tobytes()]
            if node != m:
                hi.append(node)
                lo.append(m)
    return np.array(hi, np.int64), np.array(lo, np.int64)
