"""All 45 RedPajama-V2 quality signals by name, in RPv2's emit order, and the per-worker computer.

RPv2's worker (app/src/core/worker.py) writes, per document, the 7 ``ccnet_*`` signals and then the
registered signal callables module by module (content, repetitions, natural language, lines,
classifiers, importance weights), alphabetically by class name within a module. ``SIGNAL_NAMES`` is
that order; ``QualitySignals.compute`` returns a dict in it.

The ML (fastText) and DSIR signals live in :mod:`signals.classifiers` (``ClassifierScorer``) and
:mod:`signals.importance` (``ImportanceScorer``); if either module is not installed those signals are
None.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from signals import ccnet_signals, content, lines, natural_language, repetition
from signals.document import Document
from signals.stable_hash import NATIVE_RPV2_COUNTS
from signals.text_normalization import char_table
from signals.word_lists import WordLists

log = logging.getLogger(__name__)

Spans = list[tuple[int, int, float | int | None]]

CCNET_SIGNALS: tuple[str, ...] = tuple(ccnet_signals.SIGNALS)
CONTENT_SIGNALS: tuple[str, ...] = (
    "rps_doc_curly_bracket",
    "rps_doc_ldnoobw_words",
    "rps_doc_lorem_ipsum",
    "rps_doc_stop_word_fraction",
    "rps_doc_ut1_blacklist",
)
REPETITION_SIGNALS: tuple[str, ...] = tuple(repetition.SIGNALS)
NATURAL_LANGUAGE_SIGNALS: tuple[str, ...] = tuple(natural_language.SIGNALS)
LINE_SIGNALS: tuple[str, ...] = tuple(lines.SIGNALS)
CLASSIFIER_SIGNALS: tuple[str, ...] = (
    "rps_doc_ml_palm_score",
    "rps_doc_ml_wikipedia_score",
    "rps_doc_ml_wikiref_score",
)
IMPORTANCE_SIGNALS: tuple[str, ...] = (
    "rps_doc_books_importance",
    "rps_doc_books_importance_length_correction",
    "rps_doc_openwebtext_importance",
    "rps_doc_openwebtext_importance_length_correction",
    "rps_doc_wikipedia_importance",
    "rps_doc_wikipedia_importance_length_correction",
)

# the signals computed from raw_content and the word lists (the rule-based ones)
RULE_BASED_SIGNALS: tuple[str, ...] = (
    CONTENT_SIGNALS + REPETITION_SIGNALS + NATURAL_LANGUAGE_SIGNALS + LINE_SIGNALS
)
SIGNAL_NAMES: tuple[str, ...] = (
    CCNET_SIGNALS + RULE_BASED_SIGNALS + CLASSIFIER_SIGNALS + IMPORTANCE_SIGNALS
)
# For the Parquet schema: one float column per document-level signal, a list column per line-level one.
LINE_LEVEL: tuple[str, ...] = LINE_SIGNALS
DOC_LEVEL: tuple[str, ...] = tuple(name for name in SIGNAL_NAMES if name not in LINE_SIGNALS)
# Signals whose values RPv2 writes as ints (all others are floats or None).
INT_SIGNALS: frozenset[str] = frozenset({"rps_doc_word_count", "rps_lines_num_words", "rps_doc_ut1_blacklist"})

# name -> function(doc) for the signals that need nothing but the document
DOCUMENT_SIGNALS: dict[str, Callable[[Document], Spans]] = {
    **content.SIGNALS, **repetition.SIGNALS, **natural_language.SIGNALS, **lines.SIGNALS,
}
# name -> function(doc, word_lists)
WORD_LIST_SIGNALS: dict[str, Callable[[Document, WordLists], Spans]] = dict(content.WORD_LIST_SIGNALS)
# name -> function(doc, record)
RECORD_SIGNALS: dict[str, Callable[[Document, Mapping[str, Any]], Spans]] = dict(ccnet_signals.SIGNALS)

assert len(SIGNAL_NAMES) == 45 == len(set(SIGNAL_NAMES))
assert set(RULE_BASED_SIGNALS) == set(DOCUMENT_SIGNALS) | set(WORD_LIST_SIGNALS)


# (name, function(doc) or None, function(doc, lists) or None), in emit order
_RULE_BASED_PLAN: tuple[tuple[str, Any, Any], ...] = tuple(
    (name, DOCUMENT_SIGNALS.get(name), WORD_LIST_SIGNALS.get(name)) for name in RULE_BASED_SIGNALS
)


def _optional_scorer(module_name: str, class_name: str, *args: Any, **kwargs: Any) -> Any | None:
    """An instance of ``module_name.class_name`` or None when that module does not exist (yet)."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        log.warning("%s is not available: its signals are null", module_name)
        return None
    return getattr(module, class_name)(*args, **kwargs)


class QualitySignals:
    """Computes RPv2's 45 signals for CCNet-format records; build one per worker.

    Args:
        artifacts_dir: an RPv2-layout artifacts directory (bad_words/, bad_urls/, stop_words/,
            classifiers/, dsir/); None computes the list- and model-based signals as None.
        languages: languages whose lists and models are loaded now instead of on first use.
        hash_mode: DSIR feature hash, passed to ``ImportanceScorer`` ("auto", "stable", "rpv2").
        with_models: False leaves the 9 classifier and importance signals None (rule-based only).
    """

    def __init__(
        self,
        artifacts_dir: str | os.PathLike[str] | None,
        languages: list[str] | tuple[str, ...] = (),
        hash_mode: str = "auto",
        with_models: bool = True,
    ) -> None:
        self.artifacts_dir = artifacts_dir
        self.word_lists = WordLists(artifacts_dir)
        self.bad_records: Counter[str] = Counter()
        self.classifiers = None
        self.importance = None
        if with_models and artifacts_dir is not None:
            self.classifiers = _optional_scorer("signals.classifiers", "ClassifierScorer", artifacts_dir)
            self.importance = _optional_scorer(
                "signals.importance", "ImportanceScorer", artifacts_dir, hash_mode=hash_mode
            )
        # state now, not inside the first document (the tables come precomputed: signals/unicode_tables.py)
        for table in ("isupper", "isnumeric", "isspace", "wordpunct_classes"):
            char_table(table)
        for lang in languages:
            self.word_lists.bad_words(lang)
            self.word_lists.stop_words(lang)
        if languages:
            self.word_lists.ut1_domains()
            self.word_lists.missing.clear()

    @property
    def missing_artifacts(self) -> Counter[str]:
        """Documents per missing artifact (``bad_words/xx``, ``stop_words/xx``, ``dsir/xx/...``, ...)."""
        total: Counter[str] = Counter(self.word_lists.missing)
        for scorer in (self.classifiers, self.importance):
            total.update(getattr(scorer, "missing", None) or {})
        return total

    def document(self, record: Mapping[str, Any]) -> Document:
        """The shared Document of a CCNet record; a text that is not a string is counted and empty."""
        raw = record.get("raw_content")
        if not isinstance(raw, str):
            self.bad_records["raw_content_not_a_string"] += 1
            raw = ""
        domain = record.get("source_domain")
        language = record.get("language")
        return Document(
            raw,
            domain=domain if isinstance(domain, str) else None,
            language=language if isinstance(language, str) else None,
            # word ids pay off when the DSIR scorer shares them (signals/vocabulary.py); with the C
            # kernel RPv2's DSIR hashes the words directly, and the counts per token are cheaper
            use_vocabulary=self.importance is not None and not NATIVE_RPV2_COUNTS,
        )

    def compute(self, record: Mapping[str, Any]) -> dict[str, Spans]:
        """All 45 signals of a CCNet-format record, ``{name: [(start, end, score), ...]}`` in RPv2 order."""
        return self.compute_document(self.document(record), record)

    def compute_document(self, doc: Document, record: Mapping[str, Any]) -> dict[str, Spans]:
        """All 45 signals for an already built Document (its record gives the ccnet_* fields)."""
        out = ccnet_signals.ccnet_signals(doc, record)
        out.update(self.rule_based(doc))
        span_end = doc.num_chars
        if self.classifiers is not None:
            scores = self.classifiers.score(doc)
            for name in CLASSIFIER_SIGNALS:
                out[name] = [(0, span_end, scores.get(name))]
        else:
            for name in CLASSIFIER_SIGNALS:
                out[name] = [(0, span_end, None)]
        if self.importance is not None:
            scores = self.importance.score(doc)
            for name in IMPORTANCE_SIGNALS:
                out[name] = [(0, span_end, scores.get(name))]
        else:
            for name in IMPORTANCE_SIGNALS:
                out[name] = [(0, span_end, None)]
        return out

    def rule_based(self, doc: Document) -> dict[str, Spans]:
        """The content, repetition, natural-language and line signals, in RPv2 order."""
        lists = self.word_lists
        return {
            name: fn(doc) if lists_fn is None else lists_fn(doc, lists)
            for name, fn, lists_fn in _RULE_BASED_PLAN
        }
