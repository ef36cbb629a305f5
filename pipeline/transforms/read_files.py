"""Reading input files on Beam one at a time, tolerant of bad ones: the read step of fuzzy and exact dedup.

Why one home: both dedups read documents files the same way (match the paths, open each file, read its
columns, and count and log a file that cannot be read while the others go on); only what they read and
the counter they count in differ.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

log = logging.getLogger(__name__)

# read(path, open binary file) -> the elements of that file
FileReader = Callable[[str, Any], Iterable[Any]]


class _ReadEach(beam.DoFn):
    """A matched file -> the elements ``read`` gives for it; a file whose read raises is counted and
    logged, never fatal (elements it gave before it failed stay, and the log says how many)."""

    def __init__(self, read: FileReader, namespace: str, counter: str, what: str, compression_type: str):
        self._read = read
        self._what = what
        self._compression = compression_type
        self._bad_files = Metrics.counter(namespace, counter)

    def process(self, metadata: Any) -> Iterator[Any]:
        done = 0
        try:
            with FileSystems.open(metadata.path, compression_type=self._compression) as handle:
                for element in self._read(metadata.path, handle):
                    yield element
                    done += 1
        except Exception as exc:  # noqa: BLE001 - bad input is counted, never fatal
            self._bad_files.inc()
            after = f" (after {done} elements)" if done else ""
            log.error("%s: cannot read %s%s: %s", self._what, metadata.path, after, exc)


class ReadEachFile(beam.PTransform):
    """File paths (or patterns) -> the elements ``read(path, handle)`` yields for each matched file.

    ``namespace``/``counter``: the Beam counter of files that could not be read; ``what``: the log
    prefix; ``compression_type``: how a file is opened (``CompressionTypes.AUTO`` goes by its name).
    """

    def __init__(self, read: FileReader, *, namespace: str, counter: str, what: str,
                 compression_type: str = CompressionTypes.UNCOMPRESSED):
        super().__init__()
        self._read_each = _ReadEach(read, namespace, counter, what, compression_type)

    def expand(self, paths):
        return paths | "Match" >> fileio.MatchAll() | "ReadColumns" >> beam.ParDo(self._read_each)
