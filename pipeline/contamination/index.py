"""The benchmark n-gram index on disk: built once from the user's benchmark files, loaded per worker.

Layout of an index directory::

    manifest.json                     n, normalization, hash, partition bits, per benchmark: source file and
                                      its sha256, text fields, counts, storage, and every file with its
                                      count and sha256
    <name>/part-00000.npy ...         exact: the partition's distinct n-gram hashes, sorted uint64
    <name>/bloom-00000.npy ...        Bloom: the partition's filter bits (packed uint8)
    SHA256SUMS                        sha256sum's format, so the directory can be given to a run by URI

N-gram hashes (signals/contamination.py) are partitioned by their top ``partition_bits`` bits: the build
spools each partition's hashes to its own scratch file and then sorts one partition at a time, so the
build's memory is bounded by the largest partition, not by the benchmark; and since partition p holds
exactly the hashes with prefix p, the partitions read in order are one sorted array. A Bloom benchmark
(``bloom_fpr``) stores one filter per partition, each sized for its count at that false-positive rate.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.contamination.sources import BenchmarkError, PassageStats, iter_passages
from signals import contamination as core

log = logging.getLogger(__name__)

FORMAT = "rpv2-contamination-index"
VERSION = 1
MANIFEST_NAME = "manifest.json"
DEFAULT_PARTITION_BITS = 4
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,47}")
_SPILL_HASHES = 1 << 22  # hashes buffered before they are spooled to the partition files (32 MiB)


class IndexLoadError(ValueError):
    """An index directory that cannot be used (missing, another format or normalization, corrupt)."""


def check_name(name: str) -> str:
    """A benchmark name usable in column names (``contam_<name>_frac``) and recipes."""
    if not NAME_PATTERN.fullmatch(name):
        raise BenchmarkError(
            f"benchmark name {name!r}: use lowercase letters, digits and _, starting with a letter (<= 48 chars)"
        )
    return name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _save(path: Path, array: np.ndarray) -> str:
    """``array`` as ``.npy`` at ``path``; returns its sha256."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    data = buffer.getvalue()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


class _PartitionSpool:
    """Hashes routed by prefix to one scratch file per partition, appended in batches."""

    def __init__(self, directory: Path, bits: int) -> None:
        self.directory = directory
        self.bits = bits
        self.buffer: list[np.ndarray] = []
        self.buffered = 0
        directory.mkdir(parents=True, exist_ok=True)

    def add(self, hashes: np.ndarray) -> None:
        self.buffer.append(hashes)
        self.buffered += len(hashes)
        if self.buffered >= _SPILL_HASHES:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        hashes = np.concatenate(self.buffer)
        self.buffer, self.buffered = [], 0
        prefix = hashes >> np.uint64(64 - self.bits) if self.bits else np.zeros(len(hashes), dtype=np.uint64)
        order = np.argsort(prefix, kind="stable")
        hashes, prefix = hashes[order], prefix[order]
        bounds = np.searchsorted(prefix, np.arange((1 << self.bits) + 1, dtype=np.uint64))
        for part in range(1 << self.bits):
            if bounds[part + 1] > bounds[part]:
                with open(self.directory / f"{part:05d}.bin", "ab") as handle:
                    hashes[bounds[part]:bounds[part + 1]].tofile(handle)

    def partition(self, part: int) -> np.ndarray:
        path = self.directory / f"{part:05d}.bin"
        return np.fromfile(path, dtype=np.uint64) if path.is_file() else np.zeros(0, dtype=np.uint64)


def _bloom_hashes(fpr: float) -> int:
    return max(1, round(-math.log2(fpr)))


def build_benchmark(name: str, source: str, out: Path, scratch: Path, *, n: int, partition_bits: int,
                    bloom_fpr: float | None, text_fields: Sequence[str], plain_unit: str) -> dict[str, Any]:
    """One benchmark's partition files under ``out/<name>/``; returns its manifest entry."""
    stats = PassageStats()
    spool = _PartitionSpool(scratch / name, partition_bits)
    too_short = total = 0
    for passage in iter_passages(source, text_fields, plain_unit, stats):
        grams = core.text_ngram_hashes(passage, n)
        if len(grams) == 0:
            too_short += 1
            continue
        total += len(grams)
        spool.add(grams)
    spool.flush()
    if total == 0:
        reason = "no passage" if stats.passages == 0 else f"all {stats.passages} passages are shorter than {n} words"
        raise BenchmarkError(f"benchmark {name!r} ({source}) is empty: {reason}, so it has no {n}-gram")
    target = out / name
    target.mkdir(parents=True, exist_ok=True)
    files: list[dict[str, Any]] = []
    unique = 0
    bloom: dict[str, Any] | None = None
    if bloom_fpr is not None:
        bloom = {"fpr": bloom_fpr, "hashes": _bloom_hashes(bloom_fpr), "bits": 0, "expected_fpr": 0.0,
                 "scheme": core.BLOOM_SCHEME}
    for part in range(1 << partition_bits):
        keys = np.unique(spool.partition(part))
        unique += len(keys)
        if bloom is None:
            relpath = f"{name}/part-{part:05d}.npy"
            digest = _save(out / relpath, keys)
            files.append({"path": relpath, "partition": part, "count": len(keys), "sha256": digest})
        else:
            bits, _ = core.bloom_parameters(len(keys), bloom_fpr)
            if bits >= core.MAX_BLOOM_BITS:
                raise BenchmarkError(f"benchmark {name!r}: a partition's Bloom filter would need {bits:,} bits "
                                     f"(at most 2**32): give more --partition-bits")
            relpath = f"{name}/bloom-{part:05d}.npy"
            digest = _save(out / relpath, core.bloom_build(keys, bits, bloom["hashes"]))
            bloom["bits"] += bits
            bloom["expected_fpr"] += len(keys) * core.bloom_expected_fpr(len(keys), bits, bloom["hashes"])
            files.append({"path": relpath, "partition": part, "count": len(keys), "bits": bits, "sha256": digest})
    if bloom is not None:
        bloom["expected_fpr"] = bloom["expected_fpr"] / unique
    entry: dict[str, Any] = {
        "source": str(source),
        "source_sha256": _sha256(Path(source)),
        "format": stats.format,
        "text_fields": stats.text_fields,
        "records": stats.records,
        "records_without_text": stats.records_without_text,
        "passages": stats.passages,
        "passages_too_short": too_short,
        "ngrams": total,
        "ngrams_unique": unique,
        "storage": "exact" if bloom is None else "bloom",
        "files": files,
    }
    if bloom is not None:
        entry["bloom"] = bloom
    return entry


def _check_out(out: Path) -> None:
    """``out`` new, empty, or an earlier index (replaced when the new one is complete); else refused."""
    if out.exists() and not out.is_dir():
        raise BenchmarkError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
        raise BenchmarkError(f"--out {out}: not empty and not a contamination index; give a new directory")


def _replace_dir(built: Path, out: Path) -> None:
    """Move the finished index ``built`` to ``out``, replacing an earlier index there."""
    if out.is_dir():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, old)
        os.rename(built, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(built, out)


def build_index(benchmarks: Sequence[tuple[str, str]], out: str | os.PathLike[str], *, n: int = core.DEFAULT_N,
                bloom_fpr: float | None = None, partition_bits: int = DEFAULT_PARTITION_BITS,
                text_fields: Sequence[str] = (), plain_unit: str = "line") -> dict[str, Any]:
    """Build the index of ``benchmarks`` ((name, file) pairs) in ``out``; returns the manifest.

    Raises :class:`BenchmarkError` for a bad name, an unreadable file, a file without text, or an empty
    benchmark, checked before anything is written where it can be."""
    if n < 1:
        raise BenchmarkError(f"--n must be >= 1, got {n}")
    if not 0 <= partition_bits <= 16:
        raise BenchmarkError(f"--partition-bits must be within [0, 16], got {partition_bits}")
    if bloom_fpr is not None and not 0.0 < bloom_fpr < 1.0:
        raise BenchmarkError(f"--bloom-fpr must be within (0, 1), got {bloom_fpr}")
    if not benchmarks:
        raise BenchmarkError("give at least one --benchmark NAME=FILE")
    names = [check_name(name) for name, _ in benchmarks]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise BenchmarkError(f"benchmark name(s) given twice: {', '.join(repeated)}")
    if bloom_fpr is None and len(benchmarks) > core.MAX_BENCHMARKS:
        raise BenchmarkError(f"at most {core.MAX_BENCHMARKS} exact benchmarks per index (or use --bloom-fpr)")
    for name, source in benchmarks:
        if not Path(source).is_file():
            raise BenchmarkError(f"benchmark {name!r}: {source}: no such file")
        if not os.access(source, os.R_OK):
            raise BenchmarkError(f"benchmark {name!r}: {source}: cannot be read (permission denied)")
    out_path = Path(out)
    _check_out(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "n": n,
        "normalization": core.NORMALIZATION,
        "normalization_description": core.NORMALIZATION_DESCRIPTION,
        "hash": core.HASH,
        "hash_description": core.HASH_DESCRIPTION,
        "partition_bits": partition_bits,
        "columns_order": [name for name, _ in benchmarks],  # the manifest's keys are sorted
        "benchmarks": {},
    }
    # built beside ``out`` and moved into place whole: a failed build leaves ``out`` as it was
    built = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.partial-", dir=out_path.parent))
    try:
        scratch = built / ".scratch"
        for name, source in benchmarks:
            manifest["benchmarks"][name] = build_benchmark(
                name, source, built, scratch, n=n, partition_bits=partition_bits, bloom_fpr=bloom_fpr,
                text_fields=text_fields, plain_unit=plain_unit,
            )
        shutil.rmtree(scratch, ignore_errors=True)
        (built / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        from pipeline.io.fetch import write_manifest

        write_manifest(built)  # SHA256SUMS: the directory can be uploaded and given by URI
        _replace_dir(built, out_path)
    finally:
        shutil.rmtree(built, ignore_errors=True)
    return manifest


# ------------------------------------------------------------------------------------------------ load


@dataclass(frozen=True)
class ContaminationIndex:
    """A loaded index: its manifest and the matcher that annotates documents."""

    path: str
    manifest: dict[str, Any]
    matcher: core.ContaminationMatcher

    @property
    def n(self) -> int:
        return int(self.manifest["n"])

    @property
    def columns(self) -> list[str]:
        return self.matcher.columns


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a local index directory, checked: format, version, normalization and hash are the
    ones this code computes."""
    path = Path(directory) / MANIFEST_NAME
    if not Path(directory).is_dir():
        raise IndexLoadError(f"{directory}: no such index directory (build one with `rpv2 contamination build`)")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IndexLoadError(f"{directory}: not a contamination index (no {MANIFEST_NAME}; build one with "
                             "`rpv2 contamination build`)") from None
    except OSError as exc:
        raise IndexLoadError(f"{path}: cannot be read: {exc}") from None
    return check_manifest(data, str(path))


def check_manifest(data: bytes, source: str) -> dict[str, Any]:
    """A manifest's bytes parsed and checked against what this code computes."""
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise IndexLoadError(f"{source}: not JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexLoadError(f"{source}: not a contamination index manifest")
    if manifest.get("version") != VERSION:
        raise IndexLoadError(f"{source}: index version {manifest.get('version')}, this rpv2 reads version {VERSION}")
    for key, expected in (("normalization", core.NORMALIZATION), ("hash", core.HASH)):
        if manifest.get(key) != expected:
            raise IndexLoadError(f"{source}: built with {key} {manifest.get(key)!r}, this rpv2 computes "
                                 f"{expected!r}: rebuild it with `rpv2 contamination build`")
    return manifest


def _load_array(directory: Path, entry: dict[str, Any]) -> np.ndarray:
    path = directory / entry["path"]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IndexLoadError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise IndexLoadError(f"{path}: sha256 does not match the manifest (corrupt or changed)")
    return np.load(io.BytesIO(data), allow_pickle=False)


def load_index(directory: str | os.PathLike[str]) -> ContaminationIndex:
    """Load a local index directory (every file checked against the manifest's sha256)."""
    root = Path(directory)
    manifest = read_manifest(root)
    bits = int(manifest["partition_bits"])
    exact_names: list[str] = []
    exact_sets: list[np.ndarray] = []
    blooms: dict[str, core.NgramBloomFilter] = {}
    for name in benchmark_names(manifest):
        entry = manifest["benchmarks"][name]
        files = sorted(entry["files"], key=lambda f: f["partition"])
        arrays = [_load_array(root, f) for f in files]
        if entry["storage"] == "exact":
            exact_names.append(name)
            exact_sets.append(np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint64))
        else:
            if entry["bloom"].get("scheme") != core.BLOOM_SCHEME:
                raise IndexLoadError(f"{root}: benchmark {name!r}: Bloom scheme {entry['bloom'].get('scheme')!r}, "
                                     f"this rpv2 probes with {core.BLOOM_SCHEME!r}: rebuild the index")
            blooms[name] = core.NgramBloomFilter(arrays, [f["bits"] for f in files], entry["bloom"]["hashes"], bits)
    matcher = core.ContaminationMatcher(
        int(manifest["n"]), exact_names, core.ExactNgramTable(exact_sets), blooms, order=benchmark_names(manifest)
    )
    return ContaminationIndex(str(directory), manifest, matcher)


def local_index_dir(uri: str, retry: Any = None) -> str:
    """A local directory holding the index ``uri`` (a local path as is; a remote one fetched into the
    cache through its SHA256SUMS, see pipeline/io/fetch.py)."""
    from pipeline.io.fetch import fetch_tree, remote_dir
    from pipeline.io.uris import is_remote, local_path

    if not is_remote(uri):
        return local_path(uri)
    return str(fetch_tree(remote_dir(uri, retry=retry), retry=retry))


def benchmark_names(manifest: dict[str, Any]) -> list[str]:
    """The benchmarks of an index, in the order they were given (the order of their columns)."""
    return list(manifest.get("columns_order") or manifest["benchmarks"])


def check_index_uri(uri: str, retry: Any = None) -> None:
    """Before a run: the index's manifest (local, or read from the URI) must be an index of this rpv2's
    normalization and hash; else a one-line :class:`pipeline.config.ConfigError`. (The files of a remote
    index are checked against its SHA256SUMS when the workers fetch them.)"""
    from pipeline.config import ConfigError
    from pipeline.io.uris import is_remote, join, local_path

    try:
        if not is_remote(uri):
            read_manifest(local_path(uri))
            return
        from pipeline.io.remote import RemoteReadError, read_bytes

        manifest_uri = join(uri, MANIFEST_NAME)
        try:
            data = read_bytes(manifest_uri, retry=retry)
        except RemoteReadError as exc:
            raise IndexLoadError(f"{manifest_uri}: cannot be read: {' '.join(str(exc).split())}") from None
        check_manifest(data, manifest_uri)
    except IndexLoadError as exc:
        raise ConfigError(f"contamination: {exc}") from None
