"""Partitioned Bloom filters (pybloom-live) for crawl-scale exact dedup with bounded memory.

RPv2 (app/src/bloomfilter.py) kept one ``pybloomfilter.BloomFilter(capacity, error_rate)`` for the whole
crawl on a single 500 GB node. Here the key space is cut into P partitions by a hash prefix of the key,
and each partition owns its own pybloom-live ``BloomFilter`` sized for its share of the expected count,
so a worker only ever holds one partition's filter. A partition serializes to bytes (pybloom-live's
``tofile``/``fromfile`` format inside a small container) so that it can be persisted to any URI.

Sizing: pybloom-live uses k = ceil(log2(1/p)) slices of m/k bits, m = n * |ln p| / ln(2)^2, i.e.
close to the optimum -ln(p)/ln(2)^2 bits per key (9.59 at p = 1%); :func:`optimal_bits_per_key`
gives the optimum and :attr:`BloomPartition.bits_per_key` the realized figure.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import struct

from pybloom_live import BloomFilter

log = logging.getLogger(__name__)

_MAGIC = b"RPV2BLM1"
_HEADER = struct.Struct("<8sQdI")  # magic, capacity per filter, error rate, number of filters
_LENGTH = struct.Struct("<Q")
# pybloom-live rounds the number of hash slices up (k = 7 at p = 1%) and sizes the bits for the optimal,
# fractional k, so a filter filled exactly to capacity sits slightly *above* p (1.006% at 1%). Sizing
# the underlying filter 2% larger brings the rate at full capacity to ~0.91%, i.e. within p.
PYBLOOM_SIZE_SLACK = 1.02


def optimal_bits_per_key(error_rate: float) -> float:
    """The information-theoretic optimum for a Bloom filter: -ln(p) / ln(2)^2 bits per key."""
    return -math.log(error_rate) / math.log(2) ** 2


def partition_of(key: str, num_partitions: int) -> int:
    """Route a key to a partition by the first 8 bytes of sha1(key) (big-endian), modulo P.

    Deterministic across processes and machines (unlike Python's salted ``hash``), and independent of
    the key's own format (hex sha1, CCNet base32 digest, anything else).
    """
    prefix = hashlib.sha1(key.encode("utf-8", "surrogatepass")).digest()[:8]
    return int.from_bytes(prefix, "big") % num_partitions


def partition_capacity(expected_count: int, num_partitions: int, slack_sigmas: float = 6.0) -> int:
    """Capacity per partition for ``expected_count`` keys spread over P partitions by a uniform hash.

    A partition's load is ~Binomial(n, 1/P); adding ``slack_sigmas`` standard deviations (and 1%) keeps
    every partition under its capacity, so each keeps its configured error rate.
    """
    mean = max(expected_count, 1) / num_partitions
    return max(16, int(math.ceil(mean * 1.01 + slack_sigmas * math.sqrt(mean) + 1)))


class BloomPartition:
    """The Bloom filter of one key partition: pybloom-live filters of one capacity, chained on overflow.

    ``add`` answers "seen before?" and inserts, as RPv2's ``bloomfilter.add``. If more keys arrive than
    the partition was sized for, a new filter of the same capacity is chained (instead of pybloom-live's
    ``IndexError``), so a run never fails; the error rate then grows to at most ``len(filters) * p``,
    which :attr:`overflowed` and the run summary report.
    """

    def __init__(self, capacity: int, error_rate: float = 0.01, filters: list[BloomFilter] | None = None):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if not 0 < error_rate < 1:
            raise ValueError(f"error_rate must be in (0, 1), got {error_rate}")
        self.capacity = int(capacity)
        self.error_rate = float(error_rate)
        self.filters = filters or [self._new_filter()]

    def _new_filter(self) -> BloomFilter:
        return BloomFilter(capacity=int(math.ceil(self.capacity * PYBLOOM_SIZE_SLACK)), error_rate=self.error_rate)

    def __contains__(self, key: str) -> bool:
        return any(key in f for f in self.filters)

    def add(self, key: str) -> bool:
        """Insert ``key``; return True when it was (probably) present already, False when new."""
        for f in self.filters[:-1]:
            if key in f:
                return True
        last = self.filters[-1]
        if last.count >= self.capacity:
            if key in last:
                return True
            log.warning("Bloom partition over capacity (%d keys): chaining another filter", self.count)
            last = self._new_filter()
            self.filters.append(last)
        return last.add(key)

    @property
    def count(self) -> int:
        """Distinct keys inserted (as counted by the filters: false positives are not counted)."""
        return sum(f.count for f in self.filters)

    @property
    def overflowed(self) -> bool:
        return len(self.filters) > 1

    @property
    def num_bits(self) -> int:
        return sum(f.num_bits for f in self.filters)

    @property
    def memory_bytes(self) -> int:
        """Bytes of filter bits held in memory (the bitarrays)."""
        return sum((f.num_bits + 7) // 8 for f in self.filters)

    @property
    def bits_per_key(self) -> float:
        """Bits of filter per key the partition was sized for (capacity), comparable to the optimum."""
        return self.num_bits / (self.capacity * len(self.filters))

    def fill_ratio(self) -> float:
        """Fraction of bits set; the expected false-positive rate of a query is about fill^k."""
        set_bits = sum(f.bitarray.count(1) for f in self.filters)
        return set_bits / max(self.num_bits, 1)

    def stats(self) -> dict:
        """Figures for the run summary: keys, capacity, memory and bits per key vs the optimum."""
        return {
            "keys": self.count,
            "capacity": self.capacity,
            "filters": len(self.filters),
            "memory_bytes": self.memory_bytes,
            "bits_per_key": round(self.bits_per_key, 3),
            "optimal_bits_per_key": round(optimal_bits_per_key(self.error_rate), 3),
            "fill_ratio": round(self.fill_ratio(), 4),
        }

    def to_bytes(self) -> bytes:
        """Serialize: our header, then each filter in pybloom-live's ``tofile`` format, length-prefixed."""
        out = io.BytesIO()
        out.write(_HEADER.pack(_MAGIC, self.capacity, self.error_rate, len(self.filters)))
        for f in self.filters:
            buf = io.BytesIO()
            f.tofile(buf)
            data = buf.getvalue()
            out.write(_LENGTH.pack(len(data)))
            out.write(data)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> BloomPartition:
        """Inverse of :meth:`to_bytes`; raises ValueError on a truncated or foreign file."""
        if len(data) < _HEADER.size:
            raise ValueError("not an rpv2 Bloom partition: file too short")
        magic, capacity, error_rate, n_filters = _HEADER.unpack_from(data, 0)
        if magic != _MAGIC:
            raise ValueError("not an rpv2 Bloom partition: bad magic")
        offset = _HEADER.size
        filters = []
        for _ in range(n_filters):
            if offset + _LENGTH.size > len(data):
                raise ValueError("truncated Bloom partition")
            (length,) = _LENGTH.unpack_from(data, offset)
            offset += _LENGTH.size
            chunk = data[offset : offset + length]
            if len(chunk) != length:
                raise ValueError("truncated Bloom partition")
            filters.append(BloomFilter.fromfile(io.BytesIO(chunk)))
            offset += length
        return cls(capacity, error_rate, filters)
