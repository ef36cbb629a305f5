"""What one export wrote and what it could not, per file or summed over files: the part every export
format shares (files, documents, skipped files by reason and their messages). Each format's stats
(:class:`pipeline.export.rpv2.ExportStats`, :class:`pipeline.export.hf.HFExportStats`) adds its own
fields on top, so skipping, summing and reporting a file mean the same thing in every format."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

_Stats = TypeVar("_Stats", bound="FileStats")


@dataclass
class FileStats:
    files: int = 0
    documents: int = 0
    counts: Counter = field(default_factory=Counter)  # skipped files (and other events) by reason
    errors: list[str] = field(default_factory=list)

    def skipped(self: _Stats, rel_path: str, reason: str, message: str) -> _Stats:
        """Count a file that was not exported, by ``reason``, and list it; returns self."""
        self.counts[reason] += 1
        self.errors.append(f"{rel_path}: skipped: {message}")
        return self

    def absorb(self: _Stats, other: FileStats) -> _Stats:
        """Add the shared stats of ``other`` (other files); a format's stats add their own fields too.
        Returns self."""
        self.files += other.files
        self.documents += other.documents
        self.counts.update(other.counts)
        self.errors.extend(other.errors)
        return self

    @classmethod
    def total(cls: type[_Stats], stats: Iterable[_Stats]) -> _Stats:
        """The stats of several files as one (commutative and associative, as a Beam combiner needs; no
        input is changed)."""
        total = cls()
        for item in stats:
            total.absorb(item)
        return total

    @classmethod
    def of_file(cls: type[_Stats], path: str, temp_prefix: str, export: Callable[[Any, str], _Stats]) -> _Stats:
        """``export(shard, work_dir)`` of one documents file, in a local temporary directory removed
        afterwards; a file outside the layout or unreadable (a corrupt file, wrong column types) is
        skipped and counted (``files_outside_layout``, ``unreadable_files``), the same way in every format."""
        import tempfile

        from pipeline.dataset.layout import from_path

        shard = from_path(path)
        if shard is None:
            return cls().skipped(path, "files_outside_layout",
                                 "not snapshot=<s>/language=<l>/bucket=<b>/<shard>.parquet")
        try:
            with tempfile.TemporaryDirectory(prefix=temp_prefix) as work_dir:
                return export(shard, work_dir)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return cls().skipped(shard.rel_path, "unreadable_files", f"{type(exc).__name__}: {exc}")

    def problem_lines(self, limit: int = 20) -> list[str]:
        """The lines a command prints under its summary: counts by reason, then the first ``limit``
        errors and how many more there were."""
        lines = [f"  {key}: {value}" for key, value in sorted(self.counts.items())]
        lines += [f"  error: {message}" for message in self.errors[:limit]]
        if len(self.errors) > limit:
            lines.append(f"  ... {len(self.errors) - limit} more errors")
        return lines
