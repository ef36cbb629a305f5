"""RPv2-compatible MinHash signatures and LSH bands, vectorized with numpy.

Reproduces RedPajama-V2's ``dedupe.minhash.MinHash.compute_banded_signatures`` (app/src/dedupe/minhash.py
and dedupe/utils.py, commit 6d2cee9) bit for bit:

- shingles: the *set* of space-joined word 13-grams of ``Document.normalized_words``;
- shingle hash: the first 4 bytes of sha1(shingle utf-8), little-endian (datasketch's ``sha1_hash32``);
- 128 permutations ``(a, b)`` drawn from ``numpy.random.RandomState(42)``, ``a`` then ``b`` for each
  permutation, ``a`` in [1, p), ``b`` in [0, p) with p = 2^61 - 1;
- permuted value ``((a * h + b) mod 2^64) mod p`` masked to 32 bits. RPv2 computes ``a * h + b`` in numpy
  uint64, which wraps modulo 2^64 before the ``% p``; we keep that wrap-around exactly (it is *not* the
  mathematically clean ``(a*h + b) mod p``);
- signature: per-permutation minimum, as uint32;
- bands: ``b`` bands of ``r`` consecutive rows, each band the big-endian bytes of its uint32 rows
  (RPv2 does ``minhashes[start:end].byteswap().data``), for thresholds 1.0/0.9/0.8/0.7 with
  (b, r) = (1, 128), (5, 25), (9, 13), (14, 9) (RPv2's ``optimal_param``, see :func:`optimal_param`);
- every band list is None when the document has fewer than 13 normalized words.

Two backends compute the same bits (tests/test_minhash_kernel.py compares them on every ground-truth
document and on generated word lists):

- ``native``: dedup/_minhash_kernel.c, one C call per document (SHA-1 written from FIPS 180-4, on the
  CPU's SHA instructions when it has them; the permutation loop vectorized for AVX2/AVX-512 when
  present), ~10x the numpy path. Built by ``pip install -e .`` (setup.py). The GIL is released while
  it hashes.
- ``numpy``: the pure Python/numpy fallback, used automatically when the extension is not built. RPv2
  builds an (n_shingles x 128) matrix through ``np.tile`` and Python-level sha1 via ``struct.unpack``;
  here the shingles are byte slices of one encoded string (no per-shingle join/encode), the 4-byte
  digests are joined and read with one ``np.frombuffer``, and the Mersenne reduction uses the identity
  ``x mod (2^61-1) = (x & p) + (x >> 61)`` (one conditional subtraction, almost never needed) instead
  of a 64-bit division, over cache-sized blocks of the hash x permutation matrix.

:class:`RPv2MinHash` picks ``native`` when it is importable (``backend="auto"``) and logs which one it
uses.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from collections.abc import Sequence
from itertools import accumulate, repeat
from operator import add, sub

import numpy as np

try:  # the compiled kernel (setup.py builds it); the numpy path below gives the same values without it
    from dedup import _minhash_kernel
except ImportError:  # pragma: no cover - depends on whether the extension was built
    _minhash_kernel = None

logger = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("auto", "native", "numpy")

MERSENNE_PRIME = np.uint64((1 << 61) - 1)
MAX_HASH = np.uint64((1 << 32) - 1)
_SHIFT_61 = np.uint64(61)

# RPv2's pipeline settings (app/src/pipeline.py): 13-grams, 128 permutations, seed 42, 4 thresholds.
DEFAULT_NGRAM_SIZE = 13
DEFAULT_NUM_PERMUTATIONS = 128
DEFAULT_SEED = 42
DEFAULT_THRESHOLDS: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7)
# (bands, rows) that RPv2's optimal_param(threshold, 128) returns; fixed here so that building a
# MinHash does not need scipy. test_minhash recomputes them with optimal_param.
RPV2_BANDS_ROWS: dict[float, tuple[int, int]] = {1.0: (1, 128), 0.9: (5, 25), 0.8: (9, 13), 0.7: (14, 9)}

_SIGNATURE_NAME = re.compile(r"signature_sim(\d+(?:\.\d+)?)")


def signature_column(threshold: float) -> str:
    """The column / dict key RPv2 uses for a threshold's bands: ``signature_sim{threshold}`` (``str(float)``,
    so 0.7 -> ``signature_sim0.7``, 1 -> ``signature_sim1.0``). The one home of this naming."""
    return f"signature_sim{float(threshold)}"


def signature_threshold(name: str) -> float | None:
    """The threshold a ``signature_sim<t>`` column holds bands for, or None for any other name."""
    match = _SIGNATURE_NAME.fullmatch(name)
    return float(match.group(1)) if match else None


SIGNATURE_COLUMNS: tuple[str, ...] = tuple(signature_column(t) for t in DEFAULT_THRESHOLDS)


def native_kernel_available() -> bool:
    """Whether the compiled kernel (dedup/_minhash_kernel.c) was built and imports."""
    return _minhash_kernel is not None


def native_kernel_info() -> str:
    """Which machine code the compiled kernel runs, e.g. ``"sha1=sha-ni, permutations=avx512"``."""
    if _minhash_kernel is None:
        return "not built"
    return f"sha1={_minhash_kernel.SHA1_IMPL}, permutations={_minhash_kernel.PERMUTED_MIN_IMPL}"


def resolve_backend(backend: str = "auto") -> str:
    """``"native"`` or ``"numpy"`` for a requested backend; ``"auto"`` prefers the compiled kernel.

    Asking for ``"native"`` when the extension is not built raises, so that a deployment that expects
    the fast path does not silently run 10x slower.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "native" if _minhash_kernel is not None else "numpy"
    if backend == "native" and _minhash_kernel is None:
        raise RuntimeError(
            "the MinHash C kernel (dedup._minhash_kernel) is not built; run `pip install -e .` with a C "
            "compiler available, or use backend='numpy'"
        )
    return backend


def rpv2_permutations(num_permutations: int = DEFAULT_NUM_PERMUTATIONS, seed: int = DEFAULT_SEED) -> np.ndarray:
    """The (2, num_permutations) uint64 array ``[a, b]`` RPv2 draws: per permutation ``a`` then ``b``.

    The draw order matters: RPv2 calls ``randint(1, p)`` and ``randint(0, p)`` alternately inside one
    list comprehension, so ``a`` and ``b`` interleave in the RandomState stream.
    """
    rng = np.random.RandomState(seed)
    pairs = [
        (rng.randint(1, MERSENNE_PRIME, dtype=np.uint64), rng.randint(0, MERSENNE_PRIME, dtype=np.uint64))
        for _ in range(num_permutations)
    ]
    return np.array(pairs, dtype=np.uint64).T.copy()


def sha1_hash32(data: bytes) -> int:
    """datasketch's / RPv2's 32-bit hash: first 4 bytes of sha1, read little-endian."""
    return int.from_bytes(hashlib.sha1(data).digest()[:4], "little")


def shingle_byte_spans(normalized_words: Sequence[str], ngram_size: int) -> tuple[bytes, list[int], list[int]]:
    """Encode the words once, space-joined, and return the text with each n-gram's [start, end) byte span.

    The space-joined n-gram ``" ".join(words[i:i+n])`` is exactly the slice of ``" ".join(words)`` from
    the start of word i to the end of word i+n-1, so no per-shingle join or encode is needed.
    """
    text = " ".join(normalized_words)
    # surrogatepass: a lone surrogate (invalid UTF-8 decoded leniently upstream) must not crash a shard.
    data = text.encode("utf-8", "surrogatepass")
    if len(data) == len(text):  # ASCII: byte length == char length
        lengths = map(len, normalized_words)
    else:
        lengths = (len(w.encode("utf-8", "surrogatepass")) for w in normalized_words)
    # offsets[j] = byte offset of word j (each word is followed by one space); C-level iterators only
    offsets = list(accumulate(map(add, lengths, repeat(1)), initial=0))
    ends = list(map(sub, offsets[ngram_size:], repeat(1)))  # end of word i+n-1 = start of word i+n - 1
    return data, offsets[: len(ends)], ends


def shingle_hashes(normalized_words: Sequence[str], ngram_size: int = DEFAULT_NGRAM_SIZE) -> np.ndarray:
    """sha1_hash32 of every word n-gram (duplicates included; the min is unchanged by repeats), uint64."""
    if len(normalized_words) < ngram_size:
        return np.empty(0, dtype=np.uint64)
    data, starts, ends = shingle_byte_spans(normalized_words, ngram_size)
    sha1 = hashlib.sha1
    digests = b"".join([sha1(data[s:e]).digest() for s, e in zip(starts, ends, strict=True)])
    # the first 4 bytes of each 20-byte digest, read little-endian (datasketch's sha1_hash32)
    first4 = np.frombuffer(digests, dtype=np.uint8).reshape(-1, 20)[:, :4].copy()
    return first4.view("<u4").ravel().astype(np.uint64)


def _low_words(x: np.ndarray) -> np.ndarray:
    """The low 32 bits of each uint64 of a C-contiguous 2-D block, as a strided uint32 view (no copy)."""
    if sys.byteorder == "little":
        return x.view(np.uint32)[:, 0::2]
    return (x & MAX_HASH).astype(np.uint32)


def permuted_min(hashes: np.ndarray, permutations: np.ndarray, block_rows: int = 128) -> np.ndarray:
    """Per-permutation min of ``(((a*h + b) mod 2^64) mod p) & 0xffffffff`` over all hashes, as uint32.

    Vectorized over (block_rows x n_permutations) blocks of the hash x permutation matrix (blocks keep
    the working set in cache and avoid large allocations); numpy's uint64 multiply/add wrap modulo
    2^64 exactly as in RPv2. ``x mod p`` for p = 2^61-1 is ``(x & p) + (x >> 61)``, minus p when that
    sum reaches p (possible only when the low 61 bits are within 7 of p).
    """
    a, b = permutations
    n, k = len(hashes), len(a)
    best = np.full(k, MAX_HASH, dtype=np.uint32)  # RPv2 stacks its max_hash row under the matrix too
    rows = max(1, min(n, block_rows))
    x = np.empty((rows, k), dtype=np.uint64)
    high = np.empty((rows, k), dtype=np.uint64)
    for start in range(0, n, rows):
        chunk = hashes[start : start + rows]
        xv, hv = x[: len(chunk)], high[: len(chunk)]
        np.multiply(chunk[:, None], a, out=xv)
        xv += b
        np.right_shift(xv, _SHIFT_61, out=hv)
        xv &= MERSENNE_PRIME
        xv += hv
        if xv.max() >= MERSENNE_PRIME:  # ~never: only when x & p >= p - 7
            xv[xv >= MERSENNE_PRIME] -= MERSENNE_PRIME
        # the low 32 bits (RPv2's & max_hash) without another pass: a uint32 view of the low words
        np.minimum(best, _low_words(xv).min(axis=0), out=best)
    return best


class RPv2MinHash:
    """MinHash signatures and LSH bands exactly as RPv2 writes them (see module docstring).

    Build once (permutations are drawn here) and call per document with its normalized words, i.e.
    ``Document(raw_content, ...).normalized_words`` (RPv2's ``normalize(text).split()``); taking the
    words, not the text, keeps the document views computed once per document.

    ``backend``: ``"auto"`` (the compiled kernel when built, else numpy), ``"native"`` or ``"numpy"``;
    all give identical bits. The chosen one is in ``self.backend`` and logged.
    """

    def __init__(
        self,
        ngram_size: int = DEFAULT_NGRAM_SIZE,
        num_permutations: int = DEFAULT_NUM_PERMUTATIONS,
        seed: int = DEFAULT_SEED,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
        bands_rows: dict[float, tuple[int, int]] | None = None,
        backend: str = "auto",
    ) -> None:
        if ngram_size < 1:
            raise ValueError(f"ngram_size must be >= 1, got {ngram_size}")
        self.ngram_size = ngram_size
        self.num_permutations = num_permutations
        self.seed = seed
        self.thresholds = tuple(float(t) for t in thresholds)
        if bands_rows is None:
            if num_permutations == DEFAULT_NUM_PERMUTATIONS and all(t in RPV2_BANDS_ROWS for t in self.thresholds):
                bands_rows = RPV2_BANDS_ROWS
            else:
                bands_rows = {t: optimal_param(t, num_permutations) for t in self.thresholds}
        self.bands_rows = {t: tuple(bands_rows[t]) for t in self.thresholds}
        for t, (bands, rows) in self.bands_rows.items():
            if bands * rows > num_permutations:
                raise ValueError(f"threshold {t}: {bands}x{rows} bands exceed {num_permutations} permutations")
        self.permutations = rpv2_permutations(num_permutations, seed)
        self.checksum = hashlib.sha256(self.permutations.tobytes()).hexdigest()  # as RPv2's MinHash.checksum
        self.keys = tuple(signature_column(t) for t in self.thresholds)
        # (key, byte offset of each band) per threshold: bands are slices of the big-endian signature
        self._band_slices = tuple(
            (key, tuple((4 * rows * i, 4 * rows * (i + 1)) for i in range(bands)))
            for key, (bands, rows) in zip(self.keys, self.bands_rows.values(), strict=True)
        )
        self.backend = resolve_backend(backend)
        # the kernel reads the permutations as raw native-order uint64 buffers
        self._a_bytes = np.ascontiguousarray(self.permutations[0], dtype=np.uint64).tobytes()
        self._b_bytes = np.ascontiguousarray(self.permutations[1], dtype=np.uint64).tobytes()
        if self.backend == "native":
            logger.info("MinHash backend: native C kernel (%s)", native_kernel_info())
        else:
            logger.info("MinHash backend: numpy (C kernel %s)", "not requested" if native_kernel_available() else "not built")

    def signature(self, normalized_words: Sequence[str]) -> np.ndarray | None:
        """The uint32 MinHash signature (num_permutations values), or None below ngram_size words."""
        if len(normalized_words) < self.ngram_size:
            return None
        if self.backend == "native":
            data = _minhash_kernel.signature(normalized_words, self.ngram_size, self._a_bytes, self._b_bytes)
            return np.frombuffer(data, dtype=np.uint32).copy()
        return permuted_min(shingle_hashes(normalized_words, self.ngram_size), self.permutations)

    def _bands_from_big_endian(self, data: bytes | None) -> dict[str, list[bytes] | None]:
        if data is None:
            return {key: None for key in self.keys}
        return {key: [data[start:end] for start, end in spans] for key, spans in self._band_slices}

    def bands(self, signature: np.ndarray | None) -> dict[str, list[bytes] | None]:
        """Split a signature into RPv2's bands: big-endian bytes of each band's rows, per threshold."""
        return self._bands_from_big_endian(None if signature is None else signature.astype(">u4").tobytes())

    def banded_signatures(self, normalized_words: Sequence[str]) -> dict[str, list[bytes] | None]:
        """RPv2's ``compute_banded_signatures``: {"signature_sim1.0": [...], ...}, None lists if too short."""
        if self.backend == "native":
            if len(normalized_words) < self.ngram_size:
                return self._bands_from_big_endian(None)
            return self._bands_from_big_endian(
                _minhash_kernel.signature(normalized_words, self.ngram_size, self._a_bytes, self._b_bytes, True)
            )
        return self.bands(self.signature(normalized_words))


def optimal_param(
    threshold: float,
    num_perm: int,
    false_positive_weight: float = 0.5,
    false_negative_weight: float = 0.5,
) -> tuple[int, int]:
    """(bands, rows) minimizing the weighted LSH false positive + false negative areas.

    Same search as RPv2's dedupe/utils.py ``optimal_param`` (itself datasketch's): every b in
    [1, num_perm], every r in [1, num_perm // b], first minimum wins. Needs scipy (imported lazily).
    """
    from scipy.integrate import quad

    best, best_error = (0, 0), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp, _ = quad(lambda s, b=b, r=r: 1 - (1 - s ** float(r)) ** float(b), 0.0, threshold)
            fn, _ = quad(lambda s, b=b, r=r: 1 - (1 - (1 - s ** float(r)) ** float(b)), threshold, 1.0)
            error = fp * false_positive_weight + fn * false_negative_weight
            if error < best_error:
                best_error, best = error, (b, r)
    return best


def band_hex(bands: dict[str, list[bytes] | None]) -> dict[str, list[str] | None]:
    """Bands as hex strings, the form of the ground truth's expected.jsonl ``minhash`` field."""
    return {k: None if v is None else [band.hex() for band in v] for k, v in bands.items()}


def minhash_parquet_schema(thresholds: Sequence[float] = DEFAULT_THRESHOLDS):
    """RPv2's minhash parquet schema (as in its released ``*.minhash.parquet`` files).

    shard_id string, id string, id_int uint64, then one list<binary> column per threshold in RPv2's
    order (signature_sim1.0, 0.9, 0.8, 0.7).
    """
    import pyarrow as pa

    return pa.schema(
        [("shard_id", pa.string()), ("id", pa.string()), ("id_int", pa.uint64())]
        + [(signature_column(t), pa.list_(pa.binary())) for t in thresholds]
    )


def write_rpv2_minhash_parquet(path: str, rows, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> int:
    """Write ``rows`` (dicts: shard_id, id, id_int and the signature columns) in RPv2's minhash schema.

    ``path`` is a local path or any smart_open URI. Local files are written to a temporary name and
    renamed, so a reader never sees a half-written file. Rows keep the given order (RPv2 writes them in
    input order). Returns the number of rows written.
    """
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = minhash_parquet_schema(thresholds)
    rows = list(rows)
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    table = _table_from_buffers(columns, schema)
    if table is None:  # values of other types than the usual ones: let pyarrow convert them
        table = pa.Table.from_pydict(columns, schema=schema)
    if "://" not in path or path.startswith("file://"):
        local = path[len("file://") :] if path.startswith("file://") else path
        parent = os.path.dirname(os.path.abspath(local))
        os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f".{os.path.basename(local)}.tmp-{os.getpid()}")
        pq.write_table(table, tmp, compression="snappy")
        os.replace(tmp, local)
    else:
        from smart_open import open as smart_open

        with smart_open(path, "wb") as fh:
            pq.write_table(table, fh, compression="snappy")
    return len(rows)


def _table_from_buffers(columns: dict[str, list], schema):
    """The table ``pa.Table.from_pydict(columns, schema=schema)`` builds, assembled from raw buffers.

    Same arrays, so the same Parquet bytes; the point is that ``pa.array`` on Python lists imports pandas
    to ask whether the list is "array-like" (0.2-0.3 s of a short run's CPU). Handles the minhash schema's
    value types (str, int id, list of bytes or None); returns None for anything else.
    """
    import pyarrow as pa

    arrays = []
    for field in schema:
        values = columns[field.name]
        if field.type == pa.string():
            if not all(type(v) is str for v in values):
                return None
            arrays.append(_binary_like(pa.string(), [v.encode("utf-8") for v in values]))
        elif field.type == pa.uint64():
            if not all(type(v) is int and 0 <= v < 1 << 64 for v in values):
                return None
            data = np.fromiter(values, dtype=np.uint64, count=len(values))
            arrays.append(pa.Array.from_buffers(pa.uint64(), len(values), [None, pa.py_buffer(data)]))
        elif field.type == pa.list_(pa.binary()):
            valid = [v is not None for v in values]
            if not all(v is None or (type(v) is list and all(type(b) is bytes for b in v)) for v in values):
                return None
            lengths = np.fromiter((len(v) if v is not None else 0 for v in values), dtype=np.int64,
                                  count=len(values))
            offsets = np.zeros(len(values) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            if offsets[-1] >= 1 << 31:
                return None
            child = _binary_like(pa.binary(), [b for v in values if v is not None for b in v])
            arrays.append(pa.Array.from_buffers(
                field.type, len(values), [_validity(valid), pa.py_buffer(offsets.astype(np.int32))],
                null_count=valid.count(False), children=[child],
            ))
        else:
            return None
    return pa.Table.from_arrays(arrays, schema=schema)


def _binary_like(arrow_type, items: list[bytes]):
    """A string/binary array of ``items`` (32-bit offsets, no nulls), from its offsets and data buffers."""
    import pyarrow as pa

    lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    offsets = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] >= 1 << 31:
        raise ValueError("minhash parquet column over 2 GiB")
    buffers = [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(items))]
    return pa.Array.from_buffers(arrow_type, len(items), buffers)


def _validity(valid: list[bool]):
    """Arrow's validity bitmap (LSB first) of ``valid``, or None when every value is valid."""
    import pyarrow as pa

    if all(valid):
        return None
    return pa.py_buffer(np.packbits(np.asarray(valid, dtype=np.bool_), bitorder="little"))
