"""Partitioned Bloom filters: no false negatives, measured false-positive rate within the configured one,
memory per partition close to the optimum, and a byte round trip for the persisted state."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from dedup.bloom import (
    BloomPartition,
    optimal_bits_per_key,
    partition_capacity,
    partition_of,
)


def synthetic_keys(prefix: str, n: int) -> list[str]:
    """Keys shaped like RPv2's digests (base32 sha1 without the ``sha1:`` prefix)."""
    import base64

    return [base64.b32encode(hashlib.sha1(f"{prefix}{i}".encode()).digest()).decode() for i in range(n)]


def test_optimal_bits_per_key_at_one_percent_is_9_6():
    assert optimal_bits_per_key(0.01) == pytest.approx(9.585, abs=1e-3)


def test_no_false_negatives_and_false_positive_rate_within_configured_rate():
    n, queries, p = 50_000, 400_000, 0.01
    bloom = BloomPartition(capacity=n, error_rate=p)
    members = synthetic_keys("member-", n)
    for key in members:
        bloom.add(key)
    assert all(key in bloom for key in members)  # no false negatives, ever
    false_positives = sum(key in bloom for key in synthetic_keys("other-", queries))
    rate = false_positives / queries
    stats = bloom.stats()
    print(
        f"bloom: n={n} p={p}: measured FP {rate:.4%} on {queries} non-members; "
        f"{stats['bits_per_key']} bits/key vs optimum {stats['optimal_bits_per_key']}; "
        f"{stats['memory_bytes'] / 1024:.1f} KiB"
    )
    assert rate <= p
    assert not bloom.overflowed
    # memory: within 3% of -ln(p)/ln(2)^2 bits per key (pybloom-live's integer k plus our 2% slack)
    assert optimal_bits_per_key(p) <= stats["bits_per_key"] <= 1.03 * optimal_bits_per_key(p)
    assert stats["memory_bytes"] == pytest.approx(n * stats["bits_per_key"] / 8, rel=0.01)


def test_add_reports_whether_the_key_was_present():
    bloom = BloomPartition(capacity=1000, error_rate=0.01)
    assert bloom.add("a") is False
    assert bloom.add("a") is True
    assert "a" in bloom and bloom.count == 1


def test_over_capacity_chains_another_filter_instead_of_failing():
    bloom = BloomPartition(capacity=100, error_rate=0.01)
    keys = synthetic_keys("k", 350)
    for key in keys:
        bloom.add(key)
    assert bloom.overflowed and len(bloom.filters) >= 4
    assert all(key in bloom for key in keys)
    assert all(bloom.add(key) for key in keys)  # every key now reads as present


def test_round_trip_through_bytes_keeps_every_key():
    bloom = BloomPartition(capacity=500, error_rate=0.01)
    keys = synthetic_keys("rt", 700)  # overflows: two chained filters
    for key in keys:
        bloom.add(key)
    restored = BloomPartition.from_bytes(bloom.to_bytes())
    assert (restored.capacity, restored.error_rate, len(restored.filters)) == (500, 0.01, len(bloom.filters))
    assert restored.count == bloom.count
    assert all(key in restored for key in keys)
    others = synthetic_keys("not", 2000)
    assert [k in restored for k in others] == [k in bloom for k in others]


@pytest.mark.parametrize("data", [b"", b"garbage", b"RPV2BLM1" + b"\x00" * 12])
def test_corrupt_state_bytes_raise_a_clear_error(data):
    with pytest.raises(ValueError):
        BloomPartition.from_bytes(data)


def test_partition_of_is_deterministic_and_balanced():
    keys = synthetic_keys("bal", 64_000)
    parts = [partition_of(k, 64) for k in keys]
    assert parts == [partition_of(k, 64) for k in keys]
    counts = Counter(parts)
    assert set(counts) == set(range(64))
    mean = len(keys) / 64
    assert max(counts.values()) < partition_capacity(len(keys), 64)  # sized so no partition overflows
    assert max(counts.values()) < 1.2 * mean and min(counts.values()) > 0.8 * mean
    # partition is independent of the key's own text format: a hex key routes too
    assert 0 <= partition_of(hashlib.sha1(b"x").hexdigest(), 7) < 7
