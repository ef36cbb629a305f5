"""The ``contamination`` shard step: per document and benchmark, ``contam_<name>_frac`` and
``contam_<name>_span``, plus ``contam_max_overlap``, as float64 columns beside the 45 signals.

It reads the normalized text of the shared RPv2 ``Document`` view (built once per document, by the
signals step when it runs first), so with signals on it adds only the hashing and the lookups. The index
is loaded once per worker, in ``DoFn.setup`` (the processor's ``load``), from a local directory: one
given by URI has been fetched into the local cache by then (pipeline/shard/plan.py ``fetch_models``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.contamination.index import ContaminationIndex, benchmark_names, load_index, read_manifest
from pipeline.shard.annotators import Annotator, shared_document
from signals.contamination import column_names

STEP = "contamination"


class ContaminationAnnotator(Annotator):
    """Contamination columns from a local index directory (columns known from its manifest; the arrays
    are loaded by :meth:`load`, or on the first document)."""

    name = STEP

    def __init__(self, index_dir: str) -> None:
        from pipeline.io.uris import local_path

        self.index_dir = local_path(index_dir)  # a local path or file:// (a remote index is fetched by now)
        self.doc_signals = tuple(column_names(benchmark_names(read_manifest(self.index_dir))))
        self._index: ContaminationIndex | None = None

    def load(self) -> None:
        if self._index is None:
            self._index = load_index(self.index_dir)

    def annotate(self, record: Mapping[str, Any], view: dict[str, Any]) -> Mapping[str, Any]:
        self.load()
        document = shared_document(record, view)
        return self._index.matcher.annotate_content(document.normalized_content)  # type: ignore[union-attr]
