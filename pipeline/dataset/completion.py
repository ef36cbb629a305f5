"""Run and shard records: what makes a killed run resumable and a reused output safe.

Two kinds of record live beside the dataset, under names that dataset readers skip (a leading ``_``):

- ``<out>/_run.json``: the settings that shape the output (snapshot, shards, languages, models, steps,
  the listing's digest ...), written before any shard. A later run into the same output with other
  settings is refused with the difference named, unless ``--force`` replaces the output cleanly; a
  dataset without this record is refused too (it is not ours to mix with).
- ``<out>/_shards/<snapshot>/<shard>.json``: one per finished shard, published atomically AFTER the
  shard's Parquet files: their paths, rows, bytes and sha256, and the shard's statistics. A rerun skips
  the shards whose record is there and whose files are all present with the recorded sizes, removes
  the files of every other chosen shard before redoing it, and rebuilds the run summary from the
  records, so a resumed run ends byte-identical to an uninterrupted one and its summary is right.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.dataset.ids import short_snapshot
from pipeline.dataset.layout import DOCUMENTS_DATASET
from pipeline.shard.stats import SUMMARY_FILE

RUN_FILE = "_run.json"
SHARDS_DIR = "_shards"
RUN_FORMAT = "rpv2-run/1"
RECORD_FORMAT = "rpv2-shard/1"
# What an rpv2 run writes under its output; --force removes exactly these, nothing a user put there.
RUN_OUTPUTS = (DOCUMENTS_DATASET, SHARDS_DIR, RUN_FILE, SUMMARY_FILE, "duplicates_exact", "is_duplicate_exact",
               "clusters_sim*", "_work")


class OutputConflict(ValueError):
    """The output holds another run's data (or data of unknown origin); the message says what differs."""


def settings_digest(settings: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the output-shaping settings."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


@dataclass
class ShardRecord:
    """A finished shard: its files (relative to the output) and statistics (ShardStats.to_dict())."""

    snapshot: str
    shard: int
    settings_digest: str
    files: list[dict[str, Any]] = field(default_factory=list)  # {"path", "rows", "bytes", "sha256"}
    stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        data = {"format": RECORD_FORMAT, "snapshot": self.snapshot, "shard": self.shard,
                "settings_digest": self.settings_digest, "files": self.files, "stats": self.stats}
        return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> ShardRecord:
        value = json.loads(data.decode("utf-8"))
        if value.get("format") != RECORD_FORMAT:
            raise ValueError(f"not an rpv2 shard record (format {value.get('format')!r})")
        return cls(value["snapshot"], int(value["shard"]), value["settings_digest"], list(value["files"]),
                   dict(value["stats"]))


def _join(output: str, *parts: str) -> str:
    return "/".join([output.rstrip("/"), *parts])


def record_uri(output: str, snapshot: str, shard: int) -> str:
    return _join(output, SHARDS_DIR, short_snapshot(snapshot), f"{shard:04d}.json")


def relative_to(output: str, uri: str) -> str:
    """``uri`` relative to the output root (records hold relative paths, so an output can be moved)."""
    root = output.rstrip("/") + "/"
    if not uri.startswith(root):
        raise ValueError(f"{uri} is not under the output {output}")
    return uri[len(root):]


def write_record(output: str, record: ShardRecord) -> None:
    """Publish a shard's record atomically; called after every file of the shard is published."""
    from pipeline.io.publish import publish_bytes

    publish_bytes(record.to_json(), record_uri(output, record.snapshot, record.shard))


def read_records(output: str, snapshot: str) -> dict[int, ShardRecord]:
    """The snapshot's shard records under the output (unreadable records are ignored: that shard is
    simply redone)."""
    from apache_beam.io.filesystems import FileSystems

    pattern = _join(output, SHARDS_DIR, short_snapshot(snapshot), "*.json")
    records: dict[int, ShardRecord] = {}
    for match in FileSystems.match([pattern])[0].metadata_list:
        try:
            with FileSystems.open(match.path) as handle:
                record = ShardRecord.from_json(handle.read())
        except (OSError, ValueError, KeyError, TypeError):
            continue
        records[record.shard] = record
    return records


def complete_records(output: str, snapshot: str, digest: str, shards: Iterable[int]) -> dict[int, ShardRecord]:
    """The chosen shards that a previous run finished with these settings: a record with this settings
    digest, and every file it lists present with the recorded size."""
    from apache_beam.io.filesystems import FileSystems

    wanted = set(shards)
    complete: dict[int, ShardRecord] = {}
    for shard, record in read_records(output, snapshot).items():
        if shard not in wanted or record.settings_digest != digest:
            continue
        paths = [_join(output, f["path"]) for f in record.files]
        sizes = {m.path: m.size_in_bytes for r in FileSystems.match(paths) for m in r.metadata_list} if paths else {}
        if all(sizes.get(_join(output, f["path"])) == f["bytes"] for f in record.files):
            complete[shard] = record
    return complete


def shard_file_uris(output: str, snapshot: str, shard: int) -> list[str]:
    """Every documents file a shard may have published (any language and bucket)."""
    from apache_beam.io.filesystems import FileSystems

    pattern = _join(output, "documents", f"snapshot={short_snapshot(snapshot)}", "language=*", "bucket=*",
                    f"{shard:04d}.parquet")
    return sorted(m.path for r in FileSystems.match([pattern]) for m in r.metadata_list)


def remove_partial_shards(output: str, snapshot: str, shards: Sequence[int]) -> int:
    """Delete the files and records of shards about to be (re)done: what a killed run left of them.
    Returns how many files were removed."""
    from apache_beam.io.filesystems import FileSystems

    doomed: list[str] = []
    for shard in shards:
        doomed += shard_file_uris(output, snapshot, shard)
        record = record_uri(output, snapshot, shard)
        if FileSystems.exists(record):
            doomed.append(record)
    if doomed:
        FileSystems.delete(doomed)
    return len(doomed)


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{key} {old.get(key)!r} -> {new.get(key)!r}" for key in keys if old.get(key) != new.get(key)]


def remove_run_outputs(output: str) -> None:
    """What an rpv2 run wrote under ``output`` (RUN_OUTPUTS), for ``--force``; nothing else."""
    from apache_beam.io.filesystems import FileSystems

    doomed: list[str] = []
    for name in RUN_OUTPUTS:
        doomed += [m.path for r in FileSystems.match([_join(output, name)]) for m in r.metadata_list]
        if "*" not in name and FileSystems.exists(_join(output, name)):
            doomed.append(_join(output, name))
    for path in sorted(set(doomed)):
        if FileSystems.exists(path):
            FileSystems.delete([path])


def prepare_output(output: str, settings: Mapping[str, Any], *, force: bool = False) -> None:
    """Claim ``output`` for a run with ``settings`` before any work: same settings -> resume; other
    settings, or a dataset without a run record -> :class:`OutputConflict` unless ``force``, which
    removes the earlier run's outputs first. Writes ``_run.json``."""
    from apache_beam.io.filesystems import FileSystems

    from pipeline.io.publish import publish_bytes, read_bytes

    run_uri = _join(output, RUN_FILE)
    if force:
        remove_run_outputs(output)
    elif FileSystems.exists(run_uri):
        try:
            previous = json.loads(read_bytes(run_uri).decode("utf-8"))
        except (OSError, ValueError) as exc:
            raise OutputConflict(f"{run_uri} is unreadable ({exc}); use --force to replace the output") from exc
        differences = _differences(previous.get("settings", {}), settings)
        if differences:
            raise OutputConflict(
                f"{output} holds a run made with other settings: {'; '.join(differences)} "
                "(use --force to replace it, or another --output)"
            )
        return
    elif any(FileSystems.exists(_join(output, name)) for name in ("documents", SHARDS_DIR)):
        raise OutputConflict(
            f"{output} already holds a dataset without rpv2's run record ({RUN_FILE}); "
            "use --force to replace it, or another --output"
        )
    body = {"format": RUN_FORMAT, "settings": dict(settings), "settings_digest": settings_digest(settings)}
    publish_bytes((json.dumps(body, indent=1, sort_keys=True) + "\n").encode("utf-8"), run_uri)


def file_entry(output: str, uri: str, rows: int, size: int, sha256: str) -> dict[str, Any]:
    return {"path": relative_to(output, uri), "rows": rows, "bytes": size, "sha256": sha256}


def local_file_digest(path: str) -> tuple[int, str]:
    """(bytes, sha256) of a local file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()

