"""CCNet's per-document steps, each ``doc -> doc | Drop(reason)``, as cc_net's mine.py declares them.

cc_net chains small transforms over dict documents in a declared order (``dedup -> lid -> keep_lang ->
sp -> lm -> pp_bucket``); every step here is one of them, a callable with a ``name`` that takes the
document dict and returns it (updated in place) or a :class:`Drop` naming why it leaves the pipeline.
The order is declared once, in the run config's ``pipeline`` list (configs/default.yaml), and applied by
:class:`pipeline.shard.processor.ShardProcessor`'s one loop, which counts and times every step.

The steps hold their models (loaded once per worker, in ``DoFn.setup``) but no per-shard state, except
:class:`LineDedup`, which the processor builds for each shard (or group of shards) from the line hashes
of its first pass.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from pipeline.ccnet.buckets import perplexity_bucket
from pipeline.ccnet.language_id import DROP_LOW_SCORE, DROP_NOT_KEPT, below_threshold, not_kept
from pipeline.ccnet.line_dedup import HASH_DTYPE, DuplicateLineSet, dedup_document
from pipeline.ccnet.model_time import ModelTime

# The field in which pass 1 hands a document's line hashes to LineDedup (spool only, never written):
# their uint64 array, or its bytes.
LINE_HASHES = "_line_hashes"

DROP_EMPTY_AFTER_DEDUP = "empty_after_line_dedup"


@dataclass(frozen=True)
class Drop:
    """A step's verdict that the document leaves the pipeline; ``reason`` is counted in the summary."""

    reason: str


Document = dict[str, Any]
StepResult = Document | Drop


class Step(Protocol):
    """One declared step: ``name`` (as in the config's ``pipeline`` list) and ``doc -> doc | Drop``."""

    name: str

    def __call__(self, doc: Document) -> StepResult: ...


class LineDedup:
    """cc_net's ``dedup``: remove the lines whose hash the shard's (or group's) first pass found in two
    or more documents, and later copies of a line within one document (pipeline/ccnet/line_dedup.py).
    A document left with no line is dropped (``empty_after_line_dedup``)."""

    name = "line_dedup"

    def __init__(self, duplicates: DuplicateLineSet) -> None:
        self.duplicates = duplicates

    def __call__(self, doc: Document) -> StepResult:
        hashes = doc.pop(LINE_HASHES, None)
        if isinstance(hashes, bytes):  # as the processor's spool carries them
            hashes = np.frombuffer(hashes, dtype=HASH_DTYPE)
        deduped = dedup_document(doc, self.duplicates, hashes)
        if not deduped["nlines"]:
            return Drop(DROP_EMPTY_AFTER_DEDUP)
        return deduped


class IdentifyLanguage:
    """cc_net's ``lid`` (``split_by_lang.Classifier`` with ``threshold``): fastText lid.176, top-1 label,
    score rounded to 2 decimals, on the text with newlines removed; a document whose score is below the
    threshold (or without text) is dropped, as cc_net's Classifier drops it."""

    name = "lid"

    def __init__(self, identifier: Any, threshold: float) -> None:
        self.identifier = identifier  # pipeline.ccnet.language_id.LanguageIdentifier
        self.threshold = threshold
        self.model_time = ModelTime()  # the fastText predict calls themselves

    def load(self) -> None:
        _ = self.identifier.model

    def __call__(self, doc: Document) -> StepResult:
        language, score = self.identifier.predict(doc["raw_content"], self.model_time)
        if below_threshold(language, score, self.threshold):
            return Drop(DROP_LOW_SCORE)
        doc["language"] = language
        doc["language_score"] = score
        return doc


class KeepLanguage:
    """cc_net's ``keep_lang``: only the configured languages go on (None keeps every language)."""

    name = "keep_language"

    def __init__(self, languages: Collection[str] | None) -> None:
        self.languages = None if languages is None else frozenset(languages)

    def __call__(self, doc: Document) -> StepResult:
        if not_kept(doc.get("language"), self.languages):
            return Drop(DROP_NOT_KEPT)
        return doc


class Perplexity:
    """cc_net's ``sp`` + ``lm``: SentencePiece + KenLM perplexity of the document under its language's
    model (pipeline/ccnet/perplexity.py); None when the language has no model (its bucket is then
    ``all``, and the run counts ``kept_without_lm``)."""

    name = "perplexity"

    def __init__(self, models: Any | None, languages: Collection[str] | None) -> None:
        self.models = models  # pipeline.ccnet.perplexity.LanguageModels, or None: no models dir
        self.languages = languages
        self.model_time = ModelTime()  # the SentencePiece and KenLM calls

    def load(self) -> None:
        """Load the kept languages' models now (DoFn.setup), not in the first shard."""
        if self.models is None:
            return
        for language in self.models.languages if self.languages is None else sorted(self.languages):
            scorer = self.models.get(language)
            if scorer is not None:
                _ = scorer.sp, scorer.lm

    def __call__(self, doc: Document) -> StepResult:
        language = doc.get("language")
        doc["perplexity"] = (
            None if self.models is None else self.models.perplexity(doc["raw_content"], language, self.model_time)
        )
        return doc


class Bucket:
    """cc_net's ``pp_bucket``: head / middle / tail from the language's p30 / p60 perplexity cutoffs, or
    ``all`` without a perplexity or without cutoffs for the language."""

    name = "bucket"

    def __init__(self, cutoffs: Mapping[str, Any]) -> None:
        self.cutoffs = {language: tuple(pair) for language, pair in cutoffs.items()}

    def __call__(self, doc: Document) -> StepResult:
        doc["bucket"] = perplexity_bucket(doc.get("perplexity"), doc.get("language"), self.cutoffs)
        return doc

