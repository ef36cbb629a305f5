"""Accounting for reading CommonCrawl: every record ends in exactly one counted outcome.

The run summary must be able to state ``read = kept + sum(dropped)`` exactly (issue 2, "Nothing is
lost without a count"), so the readers report through one object:

- ``read``: document records encountered (WET ``conversion`` records; WARC ``response`` records),
  plus records whose type could not even be known because their bytes were lost (a corrupt gzip
  member, a record cut short). Each one ends as ``kept`` or in exactly one ``dropped[reason]``.
- ``other_records``: records that are not documents (``warcinfo``, ``request``, ``metadata``): counted
  by WARC type, outside the identity.
- ``repaired``: documents that were kept after a repair (invalid UTF-8 replaced by U+FFFD, a wrong
  Content-Length resynchronised, a missing digest recomputed): annotations, not outcomes.
- ``file_failures``: files that could not be read at all or only in part (404, retries exhausted,
  empty file), by reason; the documents of a file that failed after some were read stay counted.
- ``failures``: one entry per problem, ``{file, offset, reason, message}``, for the summary and logs.

The object is plain data (picklable, mergeable) so Beam can combine per-shard reports.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

# Reasons a document record is dropped by the readers (one outcome each).
DROP_REASONS = (
    "too_short",  # len(raw_content) < min_len, as CCNet's parse_warc_file
    "too_large",  # block larger than max_doc_bytes, skipped without being held in memory
    "corrupt_gzip",  # a gzip member that does not decompress: its record is lost
    "truncated_record",  # the file ends before Content-Length bytes of the block
    "invalid_utf8",  # only with on_invalid_utf8="drop"; the default repairs and keeps
    "missing_headers",  # no WARC-Type / WARC-Target-URI / WARC-Date, or an unparsable header
    "http_status",  # WARC mode: HTTP status other than 200
    "not_html",  # WARC mode: a response that is not text/html
    "extract_failed",  # WARC mode: the HTML could not be parsed
)

# Reasons a whole file (or the rest of it) could not be read.
FILE_FAILURE_REASONS = (
    "file_not_found",  # 404 / missing local file: not retried
    "file_failed",  # retries exhausted, or an I/O error the reader cannot resume from
    "empty_file",  # zero bytes: no records at all
    "corrupt_gzip",  # not a failure of the whole file; listed so the summary shows where data was lost
    "listing_failed",  # the wet.paths.gz listing itself could not be read
)

# Cap on stored failure entries, so a pathological file cannot blow up the report; counts stay exact.
MAX_FAILURE_ENTRIES = 1000


@dataclass
class ReadReport:
    """Counts of everything the readers saw, plus the list of problems with file and offset."""

    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    other_records: Counter = field(default_factory=Counter)
    repaired: Counter = field(default_factory=Counter)
    file_failures: Counter = field(default_factory=Counter)
    files_read: int = 0
    bytes_read: int = 0
    retries: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    failures_truncated: int = 0

    # -- outcomes ---------------------------------------------------------------------------------
    def count_kept(self) -> None:
        self.read += 1
        self.kept += 1

    def count_dropped(
        self, reason: str, file: str = "", offset: int | None = None, message: str = "", log: bool = False
    ) -> None:
        """A document record was read and dropped for ``reason``.

        Expected drops (too_short) are only counted; problems (log=True) are also listed and logged.
        """
        self.read += 1
        self.dropped[reason] += 1
        if log:
            self.add_failure(file, offset, reason, message)

    def count_other(self, warc_type: str) -> None:
        self.other_records[warc_type or "unknown"] += 1

    def count_repaired(self, reason: str, file: str, offset: int | None, message: str) -> None:
        self.repaired[reason] += 1
        self.add_failure(file, offset, reason, message, level=logging.INFO)

    def count_file_failure(self, reason: str, file: str, offset: int | None, message: str) -> None:
        self.file_failures[reason] += 1
        self.add_failure(file, offset, reason, message)

    def add_failure(
        self, file: str, offset: int | None, reason: str, message: str, level: int = logging.WARNING
    ) -> None:
        logger.log(level, "%s: %s at offset %s: %s", file, reason, offset, message)
        if len(self.failures) < MAX_FAILURE_ENTRIES:
            self.failures.append({"file": file, "offset": offset, "reason": reason, "message": message})
        else:
            self.failures_truncated += 1

    # -- combination ------------------------------------------------------------------------------
    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def is_balanced(self) -> bool:
        """The accounting identity the run summary relies on."""
        return self.read == self.kept + self.dropped_total

    def merge(self, other: ReadReport) -> ReadReport:
        """Add ``other`` into self (in place) and return self; order of merges does not matter."""
        self.read += other.read
        self.kept += other.kept
        self.dropped.update(other.dropped)
        self.other_records.update(other.other_records)
        self.repaired.update(other.repaired)
        self.file_failures.update(other.file_failures)
        self.files_read += other.files_read
        self.bytes_read += other.bytes_read
        self.retries += other.retries
        room = MAX_FAILURE_ENTRIES - len(self.failures)
        self.failures.extend(other.failures[:room])
        self.failures_truncated += other.failures_truncated + max(0, len(other.failures) - room)
        return self

    @classmethod
    def merged(cls, reports: list[ReadReport]) -> ReadReport:
        out = cls()
        for r in reports:
            out.merge(r)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with sorted keys so that summaries are deterministic."""
        failures = sorted(self.failures, key=lambda f: (f["file"], f["offset"] or 0, f["reason"]))
        return {
            "read": self.read,
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "dropped_total": self.dropped_total,
            "other_records": dict(sorted(self.other_records.items())),
            "repaired": dict(sorted(self.repaired.items())),
            "file_failures": dict(sorted(self.file_failures.items())),
            "files_read": self.files_read,
            "bytes_read": self.bytes_read,
            "retries": self.retries,
            "failures": failures,
            "failures_truncated": self.failures_truncated,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReadReport:
        return cls(
            read=d["read"],
            kept=d["kept"],
            dropped=Counter(d["dropped"]),
            other_records=Counter(d["other_records"]),
            repaired=Counter(d["repaired"]),
            file_failures=Counter(d["file_failures"]),
            files_read=d["files_read"],
            bytes_read=d["bytes_read"],
            retries=d["retries"],
            failures=list(d["failures"]),
            failures_truncated=d.get("failures_truncated", 0),
        )
