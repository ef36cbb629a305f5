"""The RPv2 steps after bucketing: the 45 quality signals and the MinHash signatures.

Each is a declared step (``doc -> doc``, named ``signals`` / ``minhash`` in the config's ``pipeline``
list) that adds output columns. ``doc_signals`` / ``line_signals`` / ``minhash_thresholds`` declare
those columns for the Parquet schema; ``annotate(record, view)`` computes them for one document, where
``view`` is a per-document dict in which the steps share what they compute (the tokenized RPv2
``Document``), so it is built once per document whichever steps run.

An annotation that fails on one document (a bug meeting odd input) does not stop a crawl-scale run:
the processor keeps the document with this step's columns null, and counts and lists the failure.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pipeline.ccnet.model_time import ModelTime

VIEW = "_view"  # the per-document dict of shared views; never written


def needed_artifacts(manifest: Mapping[str, str], languages: Collection[str] | None) -> dict[str, str]:
    """The entries of an artifacts dir's SHA256SUMS that the signals read for ``languages`` (None: every
    language), so a worker fetches only those: ``bad_words/{lang}.txt`` and ``stop_words/{lang}.json``
    (signals/word_lists.py), ``bad_urls/domain_to_category_id.json`` (the UT1 index, every language),
    ``classifiers/{lang}/*.bin`` (signals/classifiers.py: not the ``.data.train`` files they were
    trained on) and everything in ``dsir/{lang}/`` (signals/importance.py: counts, lambdas, hash.json)."""
    kept = None if languages is None else frozenset(languages)
    needed: dict[str, str] = {}
    for name, digest in manifest.items():
        parts = name.split("/")
        if parts == ["bad_urls", "domain_to_category_id.json"]:
            lang = None
        elif len(parts) == 2 and parts[0] in ("bad_words", "stop_words"):
            lang = parts[1].split(".", 1)[0]
        elif len(parts) == 3 and (parts[0] == "dsir" or (parts[0] == "classifiers" and parts[2].endswith(".bin"))):
            lang = parts[1]
        else:
            continue
        if lang is None or kept is None or lang in kept:
            needed[name] = digest
    return needed


class Annotator:
    """Base of the annotation steps: the step call stores the columns ``annotate`` returns."""

    name = ""
    doc_signals: Sequence[str] = ()
    line_signals: Sequence[str] = ()
    minhash_thresholds: Sequence[float] = ()

    def annotate(self, record: Mapping[str, Any], view: dict[str, Any]) -> Mapping[str, Any]:
        raise NotImplementedError

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        doc.update(self.annotate(doc, doc.setdefault(VIEW, {})))
        return doc

    @property
    def columns(self) -> list[str]:
        """The output columns this step fills (null when it fails on a document)."""
        from dedup.minhash import signature_column

        names = [*self.doc_signals, *self.line_signals, *(signature_column(t) for t in self.minhash_thresholds)]
        return [*names, "line_spans"] if self.line_signals else names

    def load(self) -> None:
        """Load heavy state now (DoFn.setup); the constructors already do."""

    def drain_events(self) -> dict[str, int]:
        """Counts since the last call (per shard) of things worth reporting; none by default."""
        return {}


class SignalsAnnotator(Annotator):
    """RPv2's 45 quality signals (signals/), flattened into columns: a float64 per document-level signal,
    a list<float64> per line-level signal aligned with ``line_spans``. Artifacts missing for a language
    give null signals and are counted (``signal_artifact_missing_<artifact>`` events)."""

    name = "signals"

    def __init__(self, artifacts_dir: str | None, languages: Sequence[str] = ()) -> None:
        from signals.registry import DOC_LEVEL, LINE_LEVEL, QualitySignals

        self.signals = QualitySignals(artifacts_dir, languages=tuple(languages))
        self.doc_signals = tuple(DOC_LEVEL)
        self.line_signals = tuple(LINE_LEVEL)
        self._reported: dict[str, int] = {}
        self.model_time = time_model_scorers(self.signals)

    def annotate(self, record: Mapping[str, Any], view: dict[str, Any]) -> Mapping[str, Any]:
        from pipeline.dataset.schema import signal_columns

        document = view.get("document")
        if document is None:
            document = view["document"] = self.signals.document(record)
        quality_signals = self.signals.compute_document(document, record)
        return signal_columns(quality_signals, record["raw_content"], self.doc_signals, self.line_signals)

    def drain_events(self) -> dict[str, int]:
        """Counts since the last call (per shard): documents whose signals lacked an artifact."""
        totals = dict(self.signals.missing_artifacts)
        totals.update({f"bad_record_{k}": v for k, v in self.signals.bad_records.items()})
        delta = {k: v - self._reported.get(k, 0) for k, v in totals.items() if v != self._reported.get(k, 0)}
        self._reported = totals
        return {f"signal_artifact_missing_{k.replace('/', '_')}": v for k, v in sorted(delta.items())}


def time_model_scorers(signals: Any) -> ModelTime:
    """A ModelTime that the model-based scorers of ``signals`` (a signals.registry.QualitySignals) add
    their seconds to: the fastText quality classifiers' and the DSIR importance weights' ``score`` of
    each document, wrapped on the instances (signals/ stays free of the pipeline's accounting)."""
    model_time = ModelTime()
    for model, attribute in (("classifiers", "classifiers"), ("dsir", "importance")):
        scorer = getattr(signals, attribute, None)
        if scorer is not None:
            scorer.score = model_time.timed(model, scorer.score)
    return model_time


class MinHashAnnotator(Annotator):
    """RPv2's MinHash bands (``signature_sim1.0`` ... ``signature_sim0.7``) from the normalized words of
    the shared :class:`signals.document.Document` view (RPv2: ``compute_banded_signatures(
    document.normalized_words)``)."""

    name = "minhash"

    def __init__(self) -> None:
        from dedup.minhash import RPv2MinHash

        self.minhash = RPv2MinHash()
        self.minhash_thresholds = self.minhash.thresholds

    def annotate(self, record: Mapping[str, Any], view: dict[str, Any]) -> Mapping[str, Any]:
        from pipeline.dataset.schema import minhash_columns

        document = shared_document(record, view)
        return minhash_columns(self.minhash.banded_signatures(document.normalized_words), self.minhash_thresholds)


def shared_document(record: Mapping[str, Any], view: dict[str, Any]):
    """The tokenized document (RPv2 ``Document`` views), built once per record and shared by annotators."""
    document = view.get("document")
    if document is None:
        from signals.document import Document

        document = Document(record["raw_content"], domain=record.get("source_domain"), language=record.get("language"))
        view["document"] = document
    return document
