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

:func:`export_file` exports one file (read in batches through Beam FileSystems, so any URI; each output
published atomically) and returns its :class:`ExportStats`; stats of files add up (:func:`sum_stats`). The
Beam pipeline that exports every file of a dataset, one file per unit of work, is
pipeline/transforms/export.py.

Document ids are kept as stored. After ``rpv2 filter`` they still name the row of the *unfiltered*
source file, so that they join with RPv2's and our other outputs; the exported documents file then has
fewer rows than the ids count.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dedup.minhash import signature_column, signature_threshold
from pipeline.dataset.layout import ShardFile
from pipeline.dataset.schema import DOCUMENT_FIELDS
from pipeline.export.stats import FileStats

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
BATCH_ROWS = 1000  # rows read at a time: a file is never held whole


def rpv2_path(shard: ShardFile, kind: str) -> str:
    """The file's path in RPv2's release layout for ``kind`` (documents, quality_signals, ...)."""
    return f"{kind}/{shard.rpv2_stem}{RPV2_SUFFIXES[kind]}"


def signal_layout(names: Sequence[str]) -> tuple[list[str], list[str], list[float]]:
    """(document-level signals, line-level signals, MinHash thresholds) present among column ``names``,
    signals in RPv2's emit order (signals.registry.SIGNAL_NAMES), then rpv2's own document-level
    annotations (the ``contam_*`` columns of the contamination step, in column order) so an export
    loses none of them; RPv2's readers ignore names they do not know."""
    from signals.contamination import FRAC_PREFIX
    from signals.registry import LINE_LEVEL, SIGNAL_NAMES

    present = set(names)
    doc = [n for n in SIGNAL_NAMES if n in present and n not in LINE_LEVEL]
    doc += [n for n in names if n.startswith(FRAC_PREFIX)]
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
    own = [n for n in doc_signals if n not in SIGNAL_NAMES]  # rpv2's annotations, after RPv2's signals
    for name in (*SIGNAL_NAMES, *own):
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
class ExportStats(FileStats):
    """What an export wrote and what it could not: of one file, or summed over files (:func:`sum_stats`)."""

    minhash_files: int = 0
    duplicates_files: int = 0

    def absorb(self, other: ExportStats) -> ExportStats:  # type: ignore[override]
        """Add the stats of ``other`` (other files); returns self."""
        super().absorb(other)
        self.minhash_files += other.minhash_files
        self.duplicates_files += other.duplicates_files
        return self

    def counters(self) -> dict[str, int]:
        """The stats as counter values (Beam counters, namespace ``rpv2.export``): summed over files
        they are the whole export's."""
        return {"files": self.files, "documents": self.documents, "minhash_files": self.minhash_files,
                "duplicates_files": self.duplicates_files, **self.counts}

    def as_dict(self) -> dict[str, Any]:
        """The stats as ``_export_report.json`` holds them (errors in path order: the same bytes for any
        order in which files were reported)."""
        return {"files": self.files, "documents": self.documents, "minhash_files": self.minhash_files,
                "duplicates_files": self.duplicates_files, "counts": dict(sorted(self.counts.items())),
                "errors": sorted(self.errors)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportStats:
        return cls(files=data["files"], documents=data["documents"], minhash_files=data["minhash_files"],
                   duplicates_files=data["duplicates_files"], counts=Counter(data["counts"]),
                   errors=list(data["errors"]))


def sum_stats(stats: Iterable[ExportStats]) -> ExportStats:
    """The stats of several files as one (commutative and associative, as a Beam combiner needs; no
    input is changed)."""
    return ExportStats.total(stats)


def _rows(parquet: Any, from_path: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    """The rows of an open documents file, batch by batch, with the partition columns (language,
    bucket, ...) that live in its path restored."""
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, use_threads=False):
        for row in batch.to_pylist():
            row.update(from_path)
            yield row


def minhash_row(row: Mapping[str, Any], uri_id: str, thresholds: Sequence[float]) -> dict[str, Any]:
    """The row's record in RPv2's minhash parquet (shard_id, id, id_int, signature_sim<t>...)."""
    return {"shard_id": uri_id, "id": row["id"], "id_int": row["id_int"],
            **{signature_column(t): row.get(signature_column(t)) for t in thresholds}}


def export_file(path: str, root: str, output: str) -> ExportStats:
    """Export one documents file of the run at ``root`` to its RPv2 files under ``output`` (duplicates
    only where an exact-dedup result exists for it): read in batches, written to local temporary files,
    then each published whole (pipeline.io.publish). Returns this file's stats.

    A file outside the layout, without ids, or unreadable is skipped: counted by reason
    (``files_outside_layout``, ``files_without_ids``, ``unreadable_files``) and listed in ``errors``."""
    return ExportStats.of_file(
        path, "rpv2-export-", lambda shard, work_dir: _export_file(path, shard, root, output, work_dir))


def _export_file(path: str, shard: ShardFile, root: str, output: str, work_dir: str) -> ExportStats:
    import os

    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    from dedup.exact import DUPLICATES_DATASET
    from dedup.minhash import write_rpv2_minhash_parquet
    from pipeline.dataset.files import read_parquet
    from pipeline.dataset.layout import partition_values
    from pipeline.export.rpv2_records import dumps_signals_record, signals_record
    from pipeline.io.publish import publish_file, publish_table

    stats = ExportStats()
    out = output.rstrip("/")
    docs_local = os.path.join(work_dir, "documents.json.gz")
    signals_local = os.path.join(work_dir, "signals.json.gz")
    minhash_rows: list[dict[str, Any]] = []
    with FileSystems.open(path, compression_type="uncompressed") as handle:
        parquet = pq.ParquetFile(handle, pre_buffer=False)
        names = parquet.schema_arrow.names
        missing = [n for n in ("id", "id_int", "raw_content") if n not in names]
        if missing:
            message = f"missing column(s) {', '.join(missing)}"
            return stats.skipped(shard.rel_path, "files_without_ids", message)
        doc_signals, line_signals, thresholds = signal_layout(names)
        from_path = {k: v for k, v in partition_values(path).items() if k not in names}
        docs_raw, docs_gz = _open_gzip_text(docs_local)
        sig_raw, sig_gz = _open_gzip_text(signals_local)
        try:
            for row in _rows(parquet, from_path):
                docs_gz.write((_dumps_document(ccnet_record(row)) + "\n").encode("utf-8", "surrogateescape"))
                uri_id, _, row_number = row["id"].rpartition("/")
                if uri_id != shard.shard_id:
                    stats.counts["ids_outside_their_file"] += 1
                if doc_signals or line_signals:
                    signals = quality_signals(row, doc_signals, line_signals)
                    record = signals_record(row, signals, uri_id, int(row_number), shard.snapshot)
                    if record["id"] != row["id"] or record["id_int"] != row["id_int"]:
                        stats.counts["id_int_mismatches"] += 1
                    sig_gz.write((dumps_signals_record(record) + "\n").encode("utf-8", "surrogateescape"))
                if thresholds:
                    minhash_rows.append(minhash_row(row, uri_id, thresholds))
                stats.documents += 1
        finally:
            docs_gz.close()
            docs_raw.close()
            sig_gz.close()
            sig_raw.close()
    publish_file(docs_local, f"{out}/{rpv2_path(shard, 'documents')}")
    if doc_signals or line_signals:
        publish_file(signals_local, f"{out}/{rpv2_path(shard, 'quality_signals')}")
    else:
        stats.counts["files_without_signals"] += 1
    if thresholds:
        minhash_local = os.path.join(work_dir, "minhash.parquet")
        write_rpv2_minhash_parquet(minhash_local, minhash_rows, thresholds)
        publish_file(minhash_local, f"{out}/{rpv2_path(shard, 'minhash')}")
        stats.minhash_files += 1
    else:
        stats.counts["files_without_minhash"] += 1
    duplicates = shard.path(root, DUPLICATES_DATASET)
    if FileSystems.exists(duplicates):
        with FileSystems.open(duplicates, compression_type="uncompressed") as handle:
            table = read_parquet(handle)
        publish_table(table, f"{out}/{rpv2_path(shard, 'duplicates')}", compression="snappy")
        stats.duplicates_files += 1
    stats.files += 1
    return stats
