"""CommonCrawl snapshot listings and the shard split of CCNet / RPv2.

A snapshot lists its WET files in ``crawl-data/CC-MAIN-<id>/wet.paths.gz`` (one path relative to the
bucket root a line). The same layout is served over HTTPS (``https://data.commoncrawl.org/``), S3
(``s3://commoncrawl/``) and any local or ``file://`` mirror, so a base URL plus a relative path is all
a reader needs.

Shards are contiguous slices of the listing, computed exactly as cc_net's ``CCShardReader.segments``
(cc_net/process_wet_file.py): shard i of N gets ``paths[i*n//N : (i+1)*n//N]``. RPv2 ran CCNet with
N=5000; with more shards than files some shards are empty, which is valid.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Sequence

from pipeline.dataset.ids import normalize_snapshot
from pipeline.io.uris import resolve

DEFAULT_BASE_URL = "https://data.commoncrawl.org/"
LISTING_KINDS = ("wet", "warc", "wat")



class ListingError(RuntimeError):
    """The listing of a snapshot could not be read (missing, or retries exhausted)."""


def listing_url(base_url: str, snapshot: str, kind: str = "wet") -> str:
    """URL of ``crawl-data/CC-MAIN-<id>/<kind>.paths.gz`` under ``base_url``."""
    if kind not in LISTING_KINDS:
        raise ValueError(f"invalid listing kind {kind!r}: expected one of {', '.join(LISTING_KINDS)}")
    return resolve(base_url, f"crawl-data/{normalize_snapshot(snapshot)}/{kind}.paths.gz")


def parse_listing(data: bytes) -> list[str]:
    """Relative paths of a listing file's bytes (gzip or plain), blank lines ignored, order kept."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.GzipFile(fileobj=io.BytesIO(data)).read()
    return [line.strip() for line in data.decode("utf-8").splitlines() if line.strip()]


def read_listing(base_url: str, snapshot: str, kind: str = "wet", retry=None) -> list[str]:
    """Read a snapshot's listing through :mod:`pipeline.io.remote` (retries, resume).

    Raises :class:`ListingError` with the URL when the listing cannot be read: without a listing
    there is nothing to shard, so this is the one read failure that stops a run.
    """
    from pipeline.io.remote import RemoteReadError, read_bytes

    url = listing_url(base_url, snapshot, kind)
    try:
        return parse_listing(read_bytes(url, retry=retry))
    except (RemoteReadError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise ListingError(f"cannot read listing {url}: {exc}") from exc


def shard_bounds(num_files: int, num_shards: int, shard: int) -> tuple[int, int]:
    """``[shard*n//N, (shard+1)*n//N)`` as cc_net's CCShardReader."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} out of range [0, {num_shards})")
    return (shard * num_files) // num_shards, ((shard + 1) * num_files) // num_shards


def shard_paths(paths: Sequence[str], num_shards: int, shard: int) -> list[str]:
    """The contiguous WET files of one shard (possibly none when there are more shards than files)."""
    lo, hi = shard_bounds(len(paths), num_shards, shard)
    return list(paths[lo:hi])


def parse_shard_spec(spec: str | int | Sequence[int] | None, num_shards: int) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]``; ``"all"``/None -> every shard. Sorted, without repeats.

    Raises ValueError naming the bad part for malformed items, reversed ranges and shards outside
    ``[0, num_shards)``.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "all", "*")):
        return list(range(num_shards))
    if isinstance(spec, int):
        items: list[str] = [str(spec)]
    elif isinstance(spec, str):
        items = [p.strip() for p in spec.split(",")]
    else:
        items = [str(int(s)) for s in spec]
    shards: set[int] = set()
    for item in items:
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", item)
        if not m:
            raise ValueError(
                f"invalid shard spec item {item!r} in {spec!r}: expected N or N-M, comma separated"
            )
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"invalid shard range {item!r}: end before start")
        if hi >= num_shards:
            raise ValueError(f"shard {hi} in {item!r} out of range [0, {num_shards})")
        shards.update(range(lo, hi + 1))
    return sorted(shards)
