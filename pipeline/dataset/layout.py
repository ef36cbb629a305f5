"""The output layout: the one mapping between RPv2's ``shard_id`` and our hive-partitioned paths.

ARCHITECTURE.md (contract)::

    <out>/<dataset>/snapshot=<id>/language=<lang>/bucket=<bucket>/<shard:04d>.parquet

``documents`` is the run's dataset; dedup and filter write sibling datasets (``is_duplicate_exact``,
``clusters_sim0.8/documents`` ...) under the same relative paths, so a row's flags are found beside it.
RPv2 names the same file ``<snapshot>/<shard:04d>/<lang>_<bucket>.json.gz`` (its ``shard_id``); both
directions of that mapping live here and nowhere else.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.dataset.ids import short_snapshot, snapshot_of

DOCUMENTS_DATASET = "documents"
_REL_PATH = re.compile(r"snapshot=([^/]+)/language=([^/]+)/bucket=([^/]+)/(\d+)\.parquet")
_SHARD_ID = re.compile(r"([^/]+)/(\d+)/([^/]+)_([^/_]+)\.json\.gz")
_HIVE_SEGMENT = re.compile(r"(?:^|/)([A-Za-z_][A-Za-z0-9_]*)=([^/]+)(?=/)")


@dataclass(frozen=True, order=True)
class ShardFile:
    """One (snapshot, shard, language, bucket) file of the dataset, named both ways."""

    snapshot: str  # RPv2's short form, 2023-06
    shard: int
    language: str
    bucket: str

    @property
    def rel_path(self) -> str:
        """``snapshot=2023-06/language=en/bucket=head/0000.parquet``: the same in every sibling dataset."""
        return f"snapshot={self.snapshot}/language={self.language}/bucket={self.bucket}/{self.shard:04d}.parquet"

    @property
    def shard_id(self) -> str:
        """RPv2's ``shard_id`` / ``uri_id``: ``2023-06/0000/en_head.json.gz``."""
        return f"{self.snapshot}/{self.shard:04d}/{self.language}_{self.bucket}.json.gz"

    @property
    def rpv2_stem(self) -> str:
        """``2023-06/0000/en_head``: RPv2's release files of this shard add a suffix per kind."""
        return f"{self.snapshot}/{self.shard:04d}/{self.language}_{self.bucket}"

    def path(self, root: str, dataset: str = DOCUMENTS_DATASET) -> str:
        return f"{root.rstrip('/')}/{dataset}/{self.rel_path}"


def shard_file(snapshot: str, shard: int, language: str, bucket: str) -> ShardFile:
    return ShardFile(short_snapshot(snapshot), int(shard), language, bucket)


def from_rel_path(rel_path: str) -> ShardFile | None:
    """The file a ``snapshot=/language=/bucket=/NNNN.parquet`` path (relative to its dataset) names."""
    match = _REL_PATH.fullmatch(rel_path.replace("\\", "/"))
    if not match:
        return None
    snapshot, language, bucket, shard = match.groups()
    return ShardFile(snapshot, int(shard), language, bucket)


def from_shard_id(shard_id: str) -> ShardFile | None:
    """The file RPv2's ``shard_id`` names, or None for an id outside RPv2's scheme."""
    match = _SHARD_ID.fullmatch(shard_id)
    if not match:
        return None
    snapshot, shard, language, bucket = match.groups()
    return ShardFile(snapshot, int(shard), language, bucket)


def rel_path_of_shard_id(shard_id: str) -> str:
    """Where rows of ``shard_id`` go in a sibling dataset: its ``rel_path``; an id outside RPv2's scheme
    goes to ``snapshot=<s>/other/<sha1 of the id>.parquet`` (never a path built from the id's text)."""
    found = from_shard_id(shard_id)
    if found is not None:
        return found.rel_path
    snapshot = snapshot_of(shard_id) or "unknown"
    digest = hashlib.sha1(shard_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"snapshot={snapshot}/other/{digest}.parquet"


def partition_dir(output_root: str, snapshot: str, language: str, bucket: str) -> str:
    """``<out>/documents/snapshot=<id>/language=<lang>/bucket=<bucket>`` (snapshot in RPv2's short form)."""
    return f"{output_root.rstrip('/')}/{DOCUMENTS_DATASET}/snapshot={short_snapshot(snapshot)}/language={language}/bucket={bucket}"


def shard_file_path(output_root: str, snapshot: str, language: str, bucket: str, shard: int) -> str:
    """The final path of one shard's documents file for one (language, bucket)."""
    return shard_file(snapshot, shard, language, bucket).path(output_root)


def partition_values(path: str) -> dict[str, str]:
    """The hive ``key=value`` directory segments of a path, e.g.
    ``{"snapshot": "2023-06", "language": "en", "bucket": "head"}``."""
    return {key: value for key, value in _HIVE_SEGMENT.findall(path.replace("\\", "/"))}


def document_files(inputs: Iterable[str]) -> list[str]:
    """The documents Parquet files of each input (a run's output dir, its ``documents/`` dir, or a file),
    sorted and de-duplicated; any Beam filesystem URI. Hidden and ``_``-prefixed names are skipped."""
    import posixpath

    from apache_beam.io.filesystems import FileSystems  # Beam only when files are listed

    found: set[str] = set()
    for uri in inputs:
        root = uri.rstrip("/")
        if root.endswith(".parquet"):
            found.update(m.path for r in FileSystems.match([root]) for m in r.metadata_list)
            continue
        for base in (posixpath.join(root, DOCUMENTS_DATASET), root):
            pattern = posixpath.join(base, "snapshot=*", "language=*", "bucket=*", "*.parquet")
            matched = [m.path for r in FileSystems.match([pattern]) for m in r.metadata_list
                       if not posixpath.basename(m.path).startswith((".", "_"))]
            if matched:
                found.update(matched)
                break
    return sorted(found)


def from_path(path: str) -> ShardFile | None:
    """The file a documents path names by its last four segments (``.../snapshot=<s>/language=<l>/
    bucket=<b>/<shard>.parquet``, any root, any URI), or None for a path outside the layout."""
    return from_rel_path("/".join(path.replace("\\", "/").split("/")[-4:]))


def locate_documents(uri: str) -> tuple[str, list[str]]:
    """(the run's root, its documents files) for a run's output dir or its ``documents/`` dir, any Beam
    filesystem URI; files as :func:`document_files` lists them. Raises ``FileNotFoundError`` when
    neither holds a documents dataset."""
    given = uri.rstrip("/") or "/"
    files = document_files([given])
    head, _, name = given.rpartition("/")
    if files and files[0].startswith(f"{given}/{DOCUMENTS_DATASET}/"):
        return given, files
    if files and name == DOCUMENTS_DATASET:
        return head or ".", files
    raise FileNotFoundError(
        f"{uri}: no documents/ dataset here (no documents/snapshot=*/language=*/bucket=*/*.parquet; "
        "expected the output of `rpv2 run` or `rpv2 filter`)"
    )


def refuse_output_inside_documents(inputs: Iterable[str], output: str) -> None:
    """For commands that write sibling datasets beside the documents they read (``rpv2 dedup``: ``<output>/
    duplicates_exact/``, ``<output>/clusters_sim0.8/`` ...): raise ``OutputInsideInputError`` when
    ``output`` is an input's documents dataset or lies inside it. Each input is a run's output dir or its
    ``documents/`` dir, told apart by name (nothing is read)."""
    from pipeline.io.uris import refuse_output_inside_input

    for uri in inputs:
        given = uri.rstrip("/") or "/"
        documents = given if given.rpartition("/")[2] == DOCUMENTS_DATASET else f"{given}/{DOCUMENTS_DATASET}"
        refuse_output_inside_input(documents, output)
