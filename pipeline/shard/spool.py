"""The spool between the shard's two passes: pass 1 writes the documents, pass 2 reads them back.

CCNet's line dedup needs the line-hash counts of the whole shard (or group of shards) before any
document can be deduplicated, so the documents read in pass 1 wait in a local zstd stream of
length-prefixed pickles (fast, and a fraction of the text's size), never in memory.
"""

from __future__ import annotations

import os
import pickle
import struct
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa

_LENGTH = struct.Struct("<Q")


class DocumentSpool:
    """Length-prefixed pickled documents in a local zstd stream, read back in the order written."""

    def __init__(self, directory: str | None) -> None:
        handle, self.path = tempfile.mkstemp(prefix="rpv2-spool-", suffix=".zst", dir=directory)
        os.close(handle)
        self._out = pa.CompressedOutputStream(self.path, "zstd")
        self.count = 0

    def append(self, doc: Mapping[str, Any]) -> None:
        blob = pickle.dumps(doc, protocol=pickle.HIGHEST_PROTOCOL)
        self._out.write(_LENGTH.pack(len(blob)))
        self._out.write(blob)
        self.count += 1

    def finish(self) -> None:
        self._out.close()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with pa.CompressedInputStream(pa.OSFile(self.path, "rb"), "zstd") as stream:
            for _ in range(self.count):
                (size,) = _LENGTH.unpack(stream.read(_LENGTH.size))
                yield pickle.loads(stream.read(size))

    def remove(self) -> None:
        if not self._out.closed:
            self._out.close()
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
