"""Model and artifact files by URI: planned on the launcher, fetched once per machine, checked by sha256.

Workers of a cluster share nothing with the machine that submitted the run, so the LID model, the
language models and the signal artifacts may be given by URI (``gs://``, ``s3://``, ``http(s)://``) as
well as by local path or ``file://``. The launcher turns each URI into a :class:`RemoteFile` or a
:class:`RemoteDir` (URIs with their recorded sha256s), which travel to the workers inside the stage
settings; each worker's ``DoFn.setup`` then calls :func:`fetch` / :func:`fetch_tree`:

- a file is written to ``<cache>/<sha256>/<basename>`` through a hidden temporary file in the same
  directory, hashed while it streams in, and renamed into place only when its sha256 is the recorded
  one. Concurrent worker processes on one machine take an exclusive lock on that directory, so one of
  them downloads and the others find the finished file: a file in its final place has been verified.
- a directory is the set of files its ``SHA256SUMS`` manifest lists (sha256sum's format,
  ``<hex>  <relative path>``): HTTP cannot list a directory, so the manifest is also how the launcher
  knows what is there. :func:`fetch_tree` links the fetched files into a local mirror of the layout
  (``<cache>/trees/<key>/``), which the readers open as they would the original directory.
- a single file's sha256 is its ``<uri>.sha256`` sidecar (``rpv2 models download`` writes them), else
  the launcher streams the file once to compute it.

Local paths and ``file://`` are read in place and are not hashed: nothing is transferred, and hashing a
multi-GB LM in every worker's setup would cost more than it protects. Remote reads go through
:mod:`pipeline.io.remote` (smart_open with retries, backoff and HTTP Range resume), as CommonCrawl's.

The cache is ``$RPV2_CACHE/fetched`` (``RPV2_CACHE`` defaults to ``~/.cache/rpv2``, see
:func:`default_cache_dir`). This module imports neither Beam nor smart_open at import time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from pipeline.io.uris import is_remote, join, local_path

if TYPE_CHECKING:
    from pipeline.io.remote import RetryPolicy

log = logging.getLogger(__name__)

MANIFEST = "SHA256SUMS"
SIDECAR_SUFFIX = ".sha256"
CHUNK_SIZE = 1 << 20
_HEX = re.compile(r"[0-9a-f]{64}")
# never listed in a manifest: temporaries of our writers (.part, .tmp), checksum sidecars, the manifest
_NOT_LISTED = (".part", ".tmp", SIDECAR_SUFFIX)


class FetchError(OSError):
    """A file could not be fetched, or is not the file that was recorded; the message names the URI."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"{uri}: {reason}")
        self.uri = uri
        self.reason = reason
        self.relpath: str | None = None  # set by fetch_tree: which file of the directory failed


class NotFound(FetchError):
    """The URI does not exist (404, no such key or file): not retried."""


class ChecksumMismatch(FetchError):
    """The bytes fetched do not have the recorded sha256."""


class ManifestError(FetchError):
    """A SHA256SUMS manifest or ``.sha256`` sidecar that is missing or cannot be read."""


# --------------------------------------------------------------------------------------------------
# local helpers: the cache directory, hashing, locking
# --------------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """$RPV2_CACHE, else ~/.cache/rpv2: downloaded models, the embedded sample, fetched files."""
    env = os.environ.get("RPV2_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rpv2"


def default_fetch_dir() -> Path:
    """Where workers keep the files they fetched: ``<cache>/fetched``."""
    return default_cache_dir() / "fetched"


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def locked_dir(directory: Path) -> Iterator[None]:
    """An exclusive lock on ``directory`` (created if needed) shared by every process on the machine;
    the lock is on the directory itself, so it leaves no lock file behind."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _checked_sha256(value: str, source: str) -> str:
    text = str(value).strip().lower()
    if not _HEX.fullmatch(text):
        raise ManifestError(source, f"not a sha256 (64 hex digits): {value!r}")
    return text


def _checked_relpath(relpath: str, source: str) -> str:
    """A manifest path: relative, posix, no ``..`` (a remote manifest must not write outside the cache)."""
    path = PurePosixPath(relpath)
    if not relpath or path.is_absolute() or ".." in path.parts or "\\" in relpath:
        raise ManifestError(source, f"not a relative path inside the directory: {relpath!r}")
    return path.as_posix()


# --------------------------------------------------------------------------------------------------
# SHA256SUMS manifests
# --------------------------------------------------------------------------------------------------


def parse_manifest(text: str, source: str) -> dict[str, str]:
    """``{relative path: sha256}`` of a sha256sum-format manifest (``<hex>  <path>``, or ``<hex> *<path>``
    in binary mode); ``source`` names it in errors."""
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        digest, sep, rest = line.partition(" ")
        if not sep or not rest or rest[0] not in " *":
            raise ManifestError(source, f"line {number}: expected '<sha256>  <path>', got {line!r}")
        entries[_checked_relpath(rest[1:], source)] = _checked_sha256(digest, f"{source} line {number}")
    return entries


def format_manifest(entries: Mapping[str, str]) -> str:
    """sha256sum's text format, sorted by path (the same entries give the same bytes)."""
    return "".join(f"{digest}  {relpath}\n" for relpath, digest in sorted(entries.items()))


def listed_files(directory: str | os.PathLike[str]) -> list[str]:
    """The files a manifest of ``directory`` lists: every regular file below it (posix relative paths,
    sorted), except hidden ones, temporaries, ``.sha256`` sidecars and the manifest itself."""
    root = Path(directory)
    names: list[str] = []
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or name == MANIFEST or name.endswith(_NOT_LISTED):
                continue
            names.append((Path(current) / name).relative_to(root).as_posix())
    return sorted(names)


def _publish_manifest(directory: Path, entries: Mapping[str, str]) -> Path:
    target = directory / MANIFEST
    temporary = directory / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
    temporary.write_text(format_manifest(entries), encoding="utf-8")
    os.replace(temporary, target)
    return target


def write_manifest(directory: str | os.PathLike[str]) -> Path:
    """Hash every file of a local directory (see :func:`listed_files`) into ``<directory>/SHA256SUMS``,
    replacing any earlier one, so the directory can be uploaded and given to a run by URI."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"not a directory: {root}")
    with locked_dir(root):
        return _publish_manifest(root, {name: sha256_file(root / name) for name in listed_files(root)})


def update_manifest(directory: str | os.PathLike[str], entries: Mapping[str, str]) -> Path:
    """Record ``entries`` ({relative path: sha256}, files just written) in ``<directory>/SHA256SUMS``,
    keeping the other entries whose files are still there; under the directory's lock, so that writers
    of different files (e.g. ``rpv2 models build-lm`` for two languages) do not lose each other's."""
    root = Path(directory)
    with locked_dir(root):
        current: dict[str, str] = {}
        if (root / MANIFEST).is_file():
            current = parse_manifest((root / MANIFEST).read_text(encoding="utf-8"), str(root / MANIFEST))
        current = {name: digest for name, digest in current.items() if (root / name).is_file()}
        for name, digest in entries.items():
            current[_checked_relpath(name, str(root))] = _checked_sha256(digest, str(root / name))
        return _publish_manifest(root, current)


# --------------------------------------------------------------------------------------------------
# the launcher's plan: URIs with their recorded sha256s
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteFile:
    """A file given by URI and the sha256 its fetched bytes must have."""

    uri: str
    sha256: str


@dataclass(frozen=True)
class RemoteDir:
    """A directory given by URI and the files of it a worker needs: ``{relative path: sha256}``, from its
    ``SHA256SUMS``."""

    uri: str
    files: Mapping[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def _remote_errors(uri: str) -> Iterator[None]:
    """pipeline.io.remote's errors while reading ``uri`` as this module's: :class:`NotFound` for a missing
    file, :class:`FetchError` with the reader's detail for any other failure."""
    from pipeline.io.remote import RemoteNotFound, RemoteReadError

    try:
        yield
    except RemoteNotFound as exc:
        raise NotFound(uri, "not found") from exc
    except RemoteReadError as exc:
        raise FetchError(uri, exc.detail) from exc


def _read(uri: str, retry: RetryPolicy | None) -> bytes:
    """A small file's bytes from any URI; a missing one raises :class:`NotFound`."""
    from pipeline.io.remote import read_bytes

    if not is_remote(uri):
        try:
            return Path(local_path(uri)).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(uri, "not found") from exc
        except OSError as exc:
            raise FetchError(uri, f"{type(exc).__name__}: {exc}") from exc
    with _remote_errors(uri):
        return read_bytes(uri, retry=retry)


def read_manifest(uri: str, retry: RetryPolicy | None = None) -> dict[str, str]:
    """The ``SHA256SUMS`` of the directory ``uri`` (any URI or local path). A missing one is an error: a
    directory given by URI cannot be listed, and its files are checked against it."""
    manifest_uri = join(uri, MANIFEST)
    try:
        data = _read(manifest_uri, retry)
    except NotFound as exc:
        raise ManifestError(
            manifest_uri,
            f"not found: a directory given by URI needs a {MANIFEST} manifest of its files "
            "(write it with `rpv2 models manifest DIR` before uploading DIR)",
        ) from exc
    except FetchError as exc:
        raise ManifestError(manifest_uri, f"cannot be read: {exc.reason}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(manifest_uri, f"not UTF-8 text ({exc})") from exc
    return parse_manifest(text, manifest_uri)


def remote_dir(
    uri: str,
    select: Callable[[Mapping[str, str]], Mapping[str, str]] | None = None,
    retry: RetryPolicy | None = None,
) -> RemoteDir:
    """The plan of a directory given by URI: its manifest's entries, narrowed by ``select`` to the
    files the workers need."""
    files = read_manifest(uri, retry)
    return RemoteDir(uri.rstrip("/"), dict(select(files) if select is not None else files))


def remote_file(uri: str, retry: RetryPolicy | None = None) -> RemoteFile:
    """The plan of a single file given by URI: its sha256 from ``<uri>.sha256`` (the first word, as
    sha256sum writes it), else computed by streaming the file once."""
    sidecar = uri + SIDECAR_SUFFIX
    try:
        words = _read(sidecar, retry).decode("utf-8", "replace").split()
    except NotFound:
        log.info("%s: no %s sidecar; hashing the file once on the launcher", uri, SIDECAR_SUFFIX)
        return RemoteFile(uri, _stream(uri, None, retry))
    except FetchError as exc:
        raise ManifestError(sidecar, f"cannot be read: {exc.reason}") from exc
    if not words:
        raise ManifestError(sidecar, "empty: expected '<sha256>  <name>'")
    return RemoteFile(uri, _checked_sha256(words[0], sidecar))


# --------------------------------------------------------------------------------------------------
# the workers' side: fetch into the local cache
# --------------------------------------------------------------------------------------------------


def _basename(uri: str) -> str:
    name = PurePosixPath(urlparse(uri).path).name
    return name or "file"


def _stream(uri: str, destination: Path | None, retry: RetryPolicy | None) -> str:
    """Read ``uri`` once (retrying and resuming as CommonCrawl reads do), writing it to ``destination``
    when given; returns the sha256 of the bytes read."""
    from pipeline.io.remote import open_stream

    digest = hashlib.sha256()
    sink = open(destination, "wb") if destination is not None else None  # noqa: SIM115 - closed below
    try:
        with _remote_errors(uri), open_stream(uri, retry=retry) as stream:
            while True:
                chunk = stream.read(CHUNK_SIZE)
                if not chunk:
                    break
                digest.update(chunk)
                if sink is not None:
                    sink.write(chunk)
    finally:
        if sink is not None:
            sink.close()
    return digest.hexdigest()


def fetch(
    uri: str, sha256: str, cache_dir: str | os.PathLike[str] | None = None, retry: RetryPolicy | None = None
) -> Path:
    """The local path of ``uri``'s bytes, checked against ``sha256``.

    A local path or ``file://`` is returned as is (it must exist; see the module docstring for why it is
    not hashed). A remote file is downloaded once per machine into ``<cache_dir>/<sha256>/<basename>``
    (default cache: :func:`default_fetch_dir`); raises :class:`FetchError` (not found, unreadable after
    retries) or :class:`ChecksumMismatch`, leaving nothing behind in the cache.
    """
    if not is_remote(uri):
        path = Path(local_path(uri))
        if not path.is_file():
            raise NotFound(uri, "not found")
        return path
    expected = _checked_sha256(sha256, uri)
    slot = Path(cache_dir) if cache_dir is not None else default_fetch_dir()
    slot = slot / expected
    target = slot / _basename(uri)
    if target.is_file():  # only a verified file is ever renamed to its final name
        return target
    with locked_dir(slot):
        if target.is_file():  # another process fetched it while we waited for the lock
            return target
        temporary = slot / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.part"
        try:
            actual = _stream(uri, temporary, retry)
            if actual != expected:
                raise ChecksumMismatch(
                    uri, f"sha256 {actual} does not match the recorded {expected} (changed since it was "
                    "recorded, or corrupted in transfer)"
                )
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
    log.info("fetched %s -> %s", uri, target)
    return target


def _link(source: Path, destination: Path) -> None:
    """``destination`` as a hard link to ``source`` (same file system), else a symlink."""
    try:
        os.link(source, destination)
    except OSError:
        os.symlink(source.resolve(), destination)


def fetch_tree(
    remote: RemoteDir, cache_dir: str | os.PathLike[str] | None = None, retry: RetryPolicy | None = None
) -> Path:
    """A local directory holding ``remote``'s files at their relative paths (plus its ``SHA256SUMS``),
    each fetched and checked by :func:`fetch`; built once per machine under ``<cache_dir>/trees/`` and
    renamed into place whole, so a directory found there is complete. A :class:`FetchError` carries the
    relative path of the file that failed in ``relpath``."""
    root = Path(cache_dir) if cache_dir is not None else default_fetch_dir()
    entries = {_checked_relpath(rel, remote.uri): _checked_sha256(d, remote.uri) for rel, d in remote.files.items()}
    key = hashlib.sha256(f"{remote.uri}\n{format_manifest(entries)}".encode()).hexdigest()[:32]
    tree = root / "trees" / key
    if tree.is_dir():
        return tree
    fetched: dict[str, Path] = {}
    for relpath, digest in sorted(entries.items()):
        try:
            fetched[relpath] = fetch(join(remote.uri, relpath), digest, root, retry)
        except FetchError as exc:
            exc.relpath = relpath
            raise
    temporary = root / "trees" / f".{key}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        for relpath, path in fetched.items():
            destination = temporary / relpath
            destination.parent.mkdir(parents=True, exist_ok=True)
            _link(path, destination)
        temporary.mkdir(parents=True, exist_ok=True)
        (temporary / MANIFEST).write_text(format_manifest(entries), encoding="utf-8")
        try:
            os.rename(temporary, tree)
        except OSError:
            if not tree.is_dir():  # not a concurrent process that finished first
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return tree
