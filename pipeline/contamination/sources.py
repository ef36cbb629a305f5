"""Benchmark texts from the files users have: JSON lines, Parquet, or plain text, as passages.

A passage is one unit of benchmark text; n-grams never cross from one passage to the next.

* JSON lines (``.jsonl``, ``.json``, ``.ndjson``, optionally ``.gz``): one object per line; its text
  fields are ``--text-field`` (repeatable) or, by default, every field of :data:`COMMON_TEXT_FIELDS`
  present in the first object that has any (``question`` and ``context`` both, for a reading-comprehension
  set). Each string value is a passage, and each string inside a list value (answer choices).
* Parquet (``.parquet``): the same, over columns.
* Plain text (anything else, optionally ``.gz``): one passage per non-empty line (a line of a
  one-question-per-line file, a paragraph of wikitext). ``paragraph`` mode instead takes blocks of
  lines separated by blank lines.

Every problem is a :class:`BenchmarkError` with a one-line message naming the file.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

COMMON_TEXT_FIELDS = (
    "text", "question", "context", "passage", "prompt", "problem", "sentence", "premise", "hypothesis",
    "article", "document", "content", "query", "goal", "ctx", "input", "raw_content",
)
PLAIN_UNITS = ("line", "paragraph")
_JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


class BenchmarkError(ValueError):
    """A benchmark file that cannot be read as passages; the message is one line naming the file."""


@dataclass
class PassageStats:
    """What reading one benchmark file found: its format, the text fields used and the counts."""

    format: str = ""
    text_fields: list[str] = field(default_factory=list)
    records: int = 0
    records_without_text: int = 0
    passages: int = 0


def file_format(path: str) -> str:
    """``jsonl``, ``parquet`` or ``text`` from the file name."""
    name = path.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(_JSONL_SUFFIXES):
        return "jsonl"
    return "text"


def _open(path: str) -> IO[str]:
    try:
        if path.lower().endswith(".gz"):
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
        return open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        raise BenchmarkError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if value.strip():
            yield value
    elif isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, str) and item.strip():
                yield item


def _detect_fields(record: dict[str, Any]) -> list[str]:
    return [name for name in COMMON_TEXT_FIELDS if any(True for _ in _strings(record.get(name)))]


def _from_records(records: Iterator[dict[str, Any]], path: str, text_fields: Sequence[str],
                  stats: PassageStats) -> Iterator[str]:
    fields = list(text_fields)
    for record in records:
        stats.records += 1
        if not fields:
            fields = _detect_fields(record)
            if not fields:
                stats.records_without_text += 1
                continue
            stats.text_fields = fields
        found = False
        for name in fields:
            for text in _strings(record.get(name)):
                found = True
                stats.passages += 1
                yield text
        if not found:
            stats.records_without_text += 1
    if stats.records and not fields:
        raise BenchmarkError(
            f"{path}: no text field: none of {', '.join(COMMON_TEXT_FIELDS)} holds text in any record "
            "(name the field with --text-field)"
        )
    if stats.records and stats.passages == 0:
        raise BenchmarkError(f"{path}: text field(s) {', '.join(fields)} hold no text in any record")


def _jsonl_records(path: str) -> Iterator[dict[str, Any]]:
    with _open(path) as handle:
        try:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise BenchmarkError(f"{path}: line {number}: not JSON ({exc})") from None
                if not isinstance(record, dict):
                    raise BenchmarkError(f"{path}: line {number}: not a JSON object")
                yield record
        except (OSError, EOFError) as exc:
            raise BenchmarkError(f"{path}: cannot be read: {exc}") from None


def _parquet_records(path: str, text_fields: Sequence[str]) -> Iterator[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise BenchmarkError(f"{path}: cannot be read as Parquet: {exc}") from None
    names = parquet.schema_arrow.names
    columns = [c for c in (text_fields or COMMON_TEXT_FIELDS) if c in names]
    if not columns:
        wanted = ", ".join(text_fields or COMMON_TEXT_FIELDS)
        raise BenchmarkError(f"{path}: no text field: no column {wanted} (columns: {', '.join(names)})")
    for batch in parquet.iter_batches(columns=columns):
        yield from batch.to_pylist()


def _plain_passages(path: str, unit: str, stats: PassageStats) -> Iterator[str]:
    with _open(path) as handle:
        block: list[str] = []
        try:
            for line in handle:
                stats.records += 1
                if unit == "line":
                    if line.strip():
                        stats.passages += 1
                        yield line
                elif line.strip():
                    block.append(line)
                elif block:
                    stats.passages += 1
                    yield "".join(block)
                    block = []
        except (OSError, EOFError) as exc:
            raise BenchmarkError(f"{path}: cannot be read: {exc}") from None
        if block:
            stats.passages += 1
            yield "".join(block)


def iter_passages(path: str, text_fields: Sequence[str] = (), plain_unit: str = "line",
                  stats: PassageStats | None = None) -> Iterator[str]:
    """The passages of a benchmark file (see the module docstring); ``stats`` is filled as they are
    read."""
    stats = stats if stats is not None else PassageStats()
    if plain_unit not in PLAIN_UNITS:
        raise BenchmarkError(f"plain-text unit must be one of {', '.join(PLAIN_UNITS)}, got {plain_unit!r}")
    if not Path(path).is_file():
        raise BenchmarkError(f"{path}: no such file" if not Path(path).exists() else f"{path}: not a file")
    stats.format = file_format(path)
    if stats.format == "text":
        stats.text_fields = [f"<{plain_unit}>"]
        yield from _plain_passages(path, plain_unit, stats)
    elif stats.format == "jsonl":
        yield from _from_records(_jsonl_records(path), path, text_fields, stats)
    else:
        yield from _from_records(_parquet_records(path, text_fields), path, text_fields, stats)
