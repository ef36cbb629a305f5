"""CommonCrawl snapshot listings and the shard split of CCNet / RPv2.

A snapshot lists its WET files in ``crawl-data/CC-MAIN-<id>/wet.paths.gz`` (one path relative to the
bucket root a line). The same layout is served over HTTPS (``https://data.commoncrawl.org/``), S3
(``s3://commoncrawl/``) and any local or ``file://`` mirror, so a base URL plus a relative path is all
a reader needs.

Shards are contiguous slices of the listing, computed exactly as cc_net's ``CCShardReader.segments``
(cc_net/process_wet_file.py): shard i of N gets ``paths[i*n//N : (i+1)*n//N]``. RPv2 ran CCNet with
N=5000; with more shards than files some shards are empty, which is valid.

A listing is untrusted input: a mirror's or a proxy's copy may have been edited, and its entries become
file paths and URLs. :func:`check_listing_entry` refuses any entry that could reach outside the base
(``..`` segments, absolute paths, URL schemes, backslashes, percent-escapes, query or fragment marks)
or that holds control characters; refused entries are never read, and are counted and named in the
run summary (:attr:`Listing.refused`).
"""

from __future__ import annotations

import gzip
import io
import logging
import re
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.dataset.ids import normalize_snapshot
from pipeline.io.uris import resolve

DEFAULT_BASE_URL = "https://data.commoncrawl.org/"
LISTING_KINDS = ("wet", "warc", "wat")
# refused entries named in the run summary (all of them are counted)
REFUSED_EXAMPLES = 20

logger = logging.getLogger(__name__)


class ListingError(RuntimeError):
    """The listing of a snapshot could not be read (missing, or retries exhausted)."""


def listing_url(base_url: str, snapshot: str, kind: str = "wet") -> str:
    """URL of ``crawl-data/CC-MAIN-<id>/<kind>.paths.gz`` under ``base_url``."""
    if kind not in LISTING_KINDS:
        raise ValueError(f"invalid listing kind {kind!r}: expected one of {', '.join(LISTING_KINDS)}")
    return resolve(base_url, f"crawl-data/{normalize_snapshot(snapshot)}/{kind}.paths.gz")


# `scheme:` at the start of an entry (http:, file:, s3:, also a Windows drive such as C:)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def check_listing_entry(rel: str) -> str | None:
    """Why the listing entry ``rel`` must not be read, or None if it is a plain relative path.

    An entry is joined to the base URL (:func:`pipeline.io.uris.resolve`), so anything that could
    make the join point outside the base is refused rather than cleaned up: cleaning would read a
    file the listing did not name. CommonCrawl's own entries (``crawl-data/CC-MAIN-.../x.warc.wet.gz``)
    never contain any of these.
    """
    for char in rel:
        # Cc: C0/C1 controls incl. NUL, TAB, CR, DEL; Cf: invisible format characters (bidi overrides);
        # Zl/Zp: Unicode line and paragraph separators
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            return f"control character U+{ord(char):04X}"
    if "\\" in rel:
        return "backslash"
    if rel.startswith("/"):
        return "absolute path"
    if _SCHEME.match(rel):
        return "URL scheme or drive"
    if ".." in rel.split("/"):
        return "'..' path segment"
    if "%" in rel:
        return "percent-escape (a server could decode it to '..' or '/')"
    if "?" in rel or "#" in rel:
        return "URL query or fragment mark"
    return None


@dataclass(frozen=True)
class RefusedEntry:
    """A listing entry that was not read: its 1-based line number, its text (bytes that are not UTF-8 as
    ``\\xNN``; print it with ``!r`` so control characters stay visible) and the reason it was refused."""

    line: int
    entry: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "entry": self.entry, "reason": self.reason}


class Listing(list):  # list[str]: callers index, slice and compare it as the plain list of paths it is
    """The accepted relative paths of a listing, in order, with the entries that were refused
    (:attr:`refused`) riding along so that the run summary can name them."""

    def __init__(self, paths: Iterable[str] = (), refused: Sequence[RefusedEntry] = ()) -> None:
        super().__init__(paths)
        self.refused: tuple[RefusedEntry, ...] = tuple(refused)

    def refused_summary(self) -> dict[str, Any]:
        """``{"count", "entries": [first REFUSED_EXAMPLES as dicts]}``, the run summary's record."""
        return {"count": len(self.refused), "entries": [r.to_dict() for r in self.refused[:REFUSED_EXAMPLES]]}


def parse_listing(data: bytes) -> Listing:
    """Relative paths of a listing file's bytes (gzip or plain), one a line (``\\n``, or ``\\r\\n``),
    blank lines ignored, order kept; entries :func:`check_listing_entry` refuses, or that are not
    UTF-8, are left out and kept in :attr:`Listing.refused`."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.GzipFile(fileobj=io.BytesIO(data)).read()
    paths: list[str] = []
    refused: list[RefusedEntry] = []
    # split on \n only: str.splitlines would also split at CR, VT, FF and Unicode separators inside
    # an entry, turning one hostile entry into pieces that each look harmless
    for number, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.removesuffix(b"\r").strip(b" ")
        if not raw:
            continue
        try:
            rel = raw.decode("utf-8")
        except UnicodeDecodeError:
            refused.append(RefusedEntry(number, raw.decode("utf-8", "backslashreplace"), "not UTF-8"))
            continue
        reason = check_listing_entry(rel)
        if reason is None:
            paths.append(rel)
        else:
            refused.append(RefusedEntry(number, rel, reason))
    return Listing(paths, refused)


def read_listing(base_url: str, snapshot: str, kind: str = "wet", retry=None) -> Listing:
    """Read a snapshot's listing through :mod:`pipeline.io.remote` (retries, resume).

    Raises :class:`ListingError` with the URL when the listing cannot be read: without a listing
    there is nothing to shard, so this is the one read failure that stops a run. Refused entries are
    logged here and returned in :attr:`Listing.refused`.
    """
    from pipeline.io.remote import RemoteReadError, read_bytes

    url = listing_url(base_url, snapshot, kind)
    try:
        listing = parse_listing(read_bytes(url, retry=retry))
    except (RemoteReadError, OSError, EOFError, zlib.error) as exc:  # unreadable, or not gzip inside
        raise ListingError(f"cannot read listing {url}: {exc}") from exc
    if listing.refused:
        first = listing.refused[0]
        logger.warning("%s: %d entries refused (never read), first at line %d: %r (%s)", url,
                       len(listing.refused), first.line, first.entry, first.reason)
    return listing


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
