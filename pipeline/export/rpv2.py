"""Our Parquet output back in RedPajama-V2's release layout (ARCHITECTURE.md, "Output (contract)").

RPv2 publishes, per CCNet source file ``<snapshot>/<shard:04d>/<lang>_<bucket>.json.gz``::

    documents/<snapshot>/<shard>/<lang>_<bucket>.json.gz                 CCNet records, one JSON a line
    quality_signals/<snapshot>/<shard>/<lang>_<bucket>.signals.json.gz   {"id", "id_int", "metadata",
                                                                         "quality_signals": {name: [[s, e, v]]}}
    minhash/<snapshot>/<shard>/<lang>_<bucket>.minhash.parquet           shard_id, id, id_int, signature_sim*
    duplicates/<snapshot>/<shard>/<lang>_<bucket>.duplicates.parquet     shard_id, doc_id, digest

Our Parquet keeps one file per (snapshot, language, bucket, shard) under
``documents/snapshot=<s>/language=<l>/bucket=<b>/<shard:04d>.parquet``, so the mapping is file to file and
rows keep their order. The signals come back from the flattened columns (pipeline/dataset/schema.py):
a document-level column ``v`` is RPv2's ``[[0, len(raw_content), v]]``; a line-level list column zipped
with ``line_spans`` gives RPv2's ``[[start, end, v], ...]``; a document without lines gets
``rps_lines_start_with_bulletpoint = [[0, 0, null]]`` as RPv2's RPS_Lines_Start_With_Bulletpoint; the
signals RPv2 writes as ints (signals.registry.INT_SIGNALS) become ints again. The record itself is built
by :func:`pipeline.export.rpv2_records.signals_record`, the one definition of RPv2's worker record.

Document ids are kept as stored. After ``rpv2 filter`` they still name the row of the *unfiltered*
source file, so that they join with RPv2's and our other outputs; the exported documents file then has
fewer rows than the ids count.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dedup.minhash import signature_column, signature_threshold
from pipeline.dataset.layout import ShardFile, from_rel_path
from pipeline.dataset.schema import DOCUMENT_FIELDS

# The 16 CCNet fields in the order of RPv2's (and cc_net's) documents files.
CCNET_FIELDS: tuple[str, ...] = tuple(name for name, _ in DOCUMENT_FIELDS[:16])
# RPv2's release layout: <kind>/<snapshot>/<shard>/<lang>_<bucket><suffix>
RPV2_SUFFIXES = {
    "documents": ".json.gz",
    "quality_signals": ".signals.json.gz",
    "minhash": ".minhash.parquet",
    "duplicates": ".duplicates.parquet",
}
_BULLET_SIGNAL = "rps_lines_start_with_bulletpoint"
DUPLICATES_DATASET = "duplicates_exact"



@dataclass(frozen=True)
class SourceFile:
    """One Parquet file of ``<root>/documents`` and the RPv2 source file it stands for."""

    path: Path
    file: ShardFile

    @property
    def snapshot(self) -> str:
        return self.file.snapshot

    @property
    def language(self) -> str:
        return self.file.language

    @property
    def bucket(self) -> str:
        return self.file.bucket

    @property
    def rel_path(self) -> str:
        """Its path below ``documents/`` (the same path in every sibling dataset)."""
        return self.file.rel_path

    @property
    def shard_id(self) -> str:
        """RPv2's ``shard_id`` / ``uri_id``: ``2023-06/0000/en_head.json.gz``."""
        return self.file.shard_id

    def rpv2_path(self, kind: str) -> str:
        """The file's path in RPv2's release layout for ``kind`` (documents, quality_signals, ...)."""
        suffix = RPV2_SUFFIXES[kind]
        return f"{kind}/{self.file.rpv2_stem}{suffix}"


def resolve_documents_root(path: str | os.PathLike) -> tuple[Path, Path]:
    """(run output root, its ``documents`` dataset) for either of the two.

    Raises ``FileNotFoundError`` with a clear message when neither is a directory of our layout.
    """
    given = Path(path)
    if (given / "documents").is_dir():
        return given, given / "documents"
    if given.name == "documents" and given.is_dir():
        return given.parent, given
    raise FileNotFoundError(f"{given}: no documents/ dataset here (expected the output of `rpv2 run` or `rpv2 filter`)")


def source_files(documents_dir: Path) -> tuple[list[SourceFile], list[str]]:
    """The dataset's Parquet files in a deterministic order, and the paths that do not fit the layout.

    Hidden files (a crashed writer's ``.name.tmp``) are ignored, as pyarrow.dataset does.
    """
    found: list[SourceFile] = []
    strays: list[str] = []
    for path in sorted(documents_dir.rglob("*.parquet")):
        rel = path.relative_to(documents_dir).as_posix()
        if any(part.startswith((".", "_")) for part in rel.split("/")):
            continue
        shard_file = from_rel_path(rel)
        if shard_file is None:
            strays.append(rel)
            continue
        found.append(SourceFile(path, shard_file))
    return found, strays


def signal_layout(names: Sequence[str]) -> tuple[list[str], list[str], list[float]]:
    """(document-level signals, line-level signals, MinHash thresholds) present among column ``names``,
    signals in RPv2's emit order (signals.registry.SIGNAL_NAMES)."""
    from signals.registry import LINE_LEVEL, SIGNAL_NAMES

    present = set(names)
    doc = [n for n in SIGNAL_NAMES if n in present and n not in LINE_LEVEL]
    line = [n for n in SIGNAL_NAMES if n in present and n in LINE_LEVEL]
    thresholds = [t for n in names if (t := signature_threshold(n)) is not None]
    return doc, line, thresholds


def ccnet_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row's CCNet document record: the 16 fields, in CCNet's order and types."""
    return {name: row.get(name) for name in CCNET_FIELDS}


def _typed(name: str, value: float | None, int_signals: frozenset[str]) -> float | int | None:
    if value is None or name not in int_signals:
        return value
    return int(value)


def quality_signals(
    row: Mapping[str, Any], doc_signals: Sequence[str], line_signals: Sequence[str]
) -> dict[str, list[list[Any]]]:
    """RPv2's ``{name: [[start, end, score], ...]}`` rebuilt from the flattened columns (the inverse of
    :func:`pipeline.dataset.schema.signal_columns`)."""
    from signals.registry import INT_SIGNALS, SIGNAL_NAMES

    text = row.get("raw_content") or ""
    length = len(text)
    spans = row.get("line_spans") or []
    doc_set, line_set = set(doc_signals), set(line_signals)
    out: dict[str, list[list[Any]]] = {}
    for name in SIGNAL_NAMES:
        if name in doc_set:
            out[name] = [[0, length, _typed(name, row.get(name), INT_SIGNALS)]]
        elif name in line_set:
            values = row.get(name)
            if not spans and name == _BULLET_SIGNAL:
                out[name] = [[0, length, None]]
            elif values is None:
                out[name] = []
            else:
                out[name] = [
                    [span["start"], span["end"], _typed(name, value, INT_SIGNALS)]
                    for span, value in zip(spans, values, strict=True)
                ]
    return out


def _dumps_document(record: Mapping[str, Any]) -> str:
    """CCNet's documents line: ``json.dumps`` defaults (", ", ": "), UTF-8 text unescaped."""
    try:
        text = json.dumps(record, ensure_ascii=False)
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:  # lone surrogates in a field: escape them, still valid JSON
        return json.dumps(record, ensure_ascii=True)


def _open_gzip_text(path: str):
    """A deterministic gzip text writer (no file name or timestamp in the header)."""
    raw = open(path, "wb")  # noqa: SIM115 - closed with the wrapper
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
    return raw, gz


@dataclass
class ExportStats:
    """What an export wrote and what it could not."""

    files: int = 0
    documents: int = 0
    minhash_files: int = 0
    duplicates_files: int = 0
    counts: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def _rows(path: Path, columns: Sequence[str]) -> Iterator[dict[str, Any]]:
    """The file's rows, with the partition columns (language, bucket, ...) restored from its path."""
    import pyarrow.parquet as pq

    from pipeline.dataset.layout import partition_values

    from_path = {k: v for k, v in partition_values(str(path)).items() if k not in columns}
    with pq.ParquetFile(path) as reader:
        for batch in reader.iter_batches(batch_size=1000, columns=list(columns)):
            for row in batch.to_pylist():
                row.update(from_path)
                yield row


def _publish(local: str, destination: str) -> None:
    from pipeline.io.publish import publish_file

    publish_file(local, destination)


def export_file(source: SourceFile, root: Path, output: str, work_dir: str, stats: ExportStats) -> None:
    """Export one Parquet file to its four RPv2 files (duplicates only where an exact-dedup result
    exists for it). Files are written locally, then moved into place whole."""
    import pyarrow.parquet as pq

    from dedup.minhash import write_rpv2_minhash_parquet
    from pipeline.export.rpv2_records import dumps_signals_record, signals_record

    names = pq.read_schema(source.path).names
    doc_signals, line_signals, thresholds = signal_layout(names)
    missing = [n for n in ("id", "id_int", "raw_content") if n not in names]
    if missing:
        stats.counts["files_without_ids"] += 1
        stats.errors.append(f"{source.rel_path}: skipped: missing column(s) {', '.join(missing)}")
        return
    docs_local = os.path.join(work_dir, "documents.json.gz")
    signals_local = os.path.join(work_dir, "signals.json.gz")
    minhash_rows: list[dict[str, Any]] = []
    docs_raw, docs_gz = _open_gzip_text(docs_local)
    sig_raw, sig_gz = _open_gzip_text(signals_local)
    try:
        for row in _rows(source.path, names):
            docs_gz.write((_dumps_document(ccnet_record(row)) + "\n").encode("utf-8", "surrogateescape"))
            uri_id, _, row_number = row["id"].rpartition("/")
            if uri_id != source.shard_id:
                stats.counts["ids_outside_their_file"] += 1
            if doc_signals or line_signals:
                signals = quality_signals(row, doc_signals, line_signals)
                record = signals_record(row, signals, uri_id, int(row_number), source.snapshot)
                if record["id"] != row["id"] or record["id_int"] != row["id_int"]:
                    stats.counts["id_int_mismatches"] += 1
                sig_gz.write((dumps_signals_record(record) + "\n").encode("utf-8", "surrogateescape"))
            if thresholds:
                minhash_rows.append(
                    {"shard_id": uri_id, "id": row["id"], "id_int": row["id_int"],
                     **{signature_column(t): row.get(signature_column(t)) for t in thresholds}}
                )
            stats.documents += 1
    finally:
        docs_gz.close()
        docs_raw.close()
        sig_gz.close()
        sig_raw.close()
    out = output.rstrip("/")
    _publish(docs_local, f"{out}/{source.rpv2_path('documents')}")
    if doc_signals or line_signals:
        _publish(signals_local, f"{out}/{source.rpv2_path('quality_signals')}")
    else:
        stats.counts["files_without_signals"] += 1
    if thresholds:
        write_rpv2_minhash_parquet(f"{out}/{source.rpv2_path('minhash')}", minhash_rows, thresholds)
        stats.minhash_files += 1
    else:
        stats.counts["files_without_minhash"] += 1
    duplicates = root / DUPLICATES_DATASET / source.rel_path
    if duplicates.is_file():
        table = pq.read_table(duplicates)
        local = os.path.join(work_dir, "duplicates.parquet")
        pq.write_table(table, local, compression="snappy")
        _publish(local, f"{out}/{source.rpv2_path('duplicates')}")
        stats.duplicates_files += 1
    stats.files += 1


def export_rpv2(input_path: str | os.PathLike, output: str) -> ExportStats:
    """Export every Parquet file below ``input_path`` (a run or filter output) to RPv2's layout under
    ``output``. A file that cannot be read is reported in ``errors`` and counted, never fatal."""
    root, documents_dir = resolve_documents_root(input_path)
    files, strays = source_files(documents_dir)
    stats = ExportStats()
    for rel in strays:
        stats.counts["files_outside_layout"] += 1
        stats.errors.append(f"{rel}: skipped: not snapshot=<s>/language=<l>/bucket=<b>/<shard>.parquet")
    with tempfile.TemporaryDirectory(prefix="rpv2-export-") as work_dir:
        for source in files:
            try:
                export_file(source, root, output, work_dir, stats)
            except (OSError, ValueError, KeyError, TypeError) as exc:  # corrupt file, wrong column types
                stats.counts["unreadable_files"] += 1
                stats.errors.append(f"{source.rel_path}: skipped: {type(exc).__name__}: {exc}")
    return stats
