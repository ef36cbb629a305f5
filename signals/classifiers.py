"""fastText quality classifiers: rps_doc_ml_palm_score, rps_doc_ml_wikipedia_score, rps_doc_ml_wikiref_score.

Reproduces RPv2's ``core/quality_signals/classifiers.py`` (``BaseMLSignal``):

* the model of a signal is ``<artifacts>/classifiers/<lang>/<name>.model.bin`` (RPv2's
  ``pipeline.py`` globs ``*.bin`` and keys each file by ``stem.split(".")[0]``: palm, wikiref,
  wikipedia); a missing model gives None;
* an empty ``raw_content`` gives None (a whitespace-only document is still scored, as in RPv2);
* the input is ``" ".join(raw_content.splitlines()).strip()`` (RPv2's
  ``preprocess_quality_classifier``; note ``splitlines`` also splits on U+2028, \\x0c, \\x1c...),
  and fastText's Python ``predict`` appends ``"\\n"`` before calling the C++ model;
* top-1 prediction; the score is ``1 - p`` when the label is ``__label__cc`` and ``p`` otherwise,
  rounded to 8 decimals (fastText returns ``exp(log(p + 1e-5))``, hence values slightly outside
  [0, 1], which RPv2 keeps).

fastText 0.9.3's ``FastText.predict`` wraps the result with ``np.array(..., copy=False)``, which raises
under numpy 2; we call the binding ``model.f.predict(text, k, threshold, on_unicode_error)`` that
``predict`` itself calls, so the values are the same without touching numpy.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PRECISION = 8  # RPv2 core.constants.PRECISION
CCNET_LABEL = "__label__cc"  # RPv2 core.constants.CCNET_LABEL

# model name (file stem before the first dot) -> signal name, in RPv2's emit order
MODEL_SIGNALS: dict[str, str] = {
    "palm": "rps_doc_ml_palm_score",
    "wikipedia": "rps_doc_ml_wikipedia_score",
    "wikiref": "rps_doc_ml_wikiref_score",
}
SIGNAL_NAMES: tuple[str, ...] = tuple(MODEL_SIGNALS.values())


def classifier_input(raw_content: str) -> str:
    """RPv2's ``preprocess_quality_classifier``: newlines (in ``str.splitlines``' sense) to spaces, stripped."""
    return " ".join(raw_content.splitlines()).strip()


def _encodable(text: str) -> str:
    """Replace lone surrogates (possible in JSON input) so the UTF-8 conversion cannot fail."""
    return text.encode("utf-8", "replace").decode("utf-8")


def find_model_files(artifacts_dir: Path, lang: str) -> dict[str, Path]:
    """model name -> file for one language, discovered as RPv2's ``pipeline.py`` does."""
    model_dir = artifacts_dir / "classifiers" / lang
    if not model_dir.is_dir():
        return {}
    return {path.name.split(".")[0]: path for path in sorted(model_dir.glob("*.bin"))}


def load_fasttext_model(path: str | os.PathLike[str]) -> Any:
    """Load a fastText model without the deprecation banner ``fasttext.load_model`` prints."""
    import fasttext.FastText as ft_module

    return ft_module._FastText(model_path=str(path))


def predict_top1(model: Any, text: str) -> tuple[str, float] | None:
    """Top-1 (label, probability) exactly as ``model.predict(text)`` computes it, numpy-free."""
    return _predict_line(model, text + "\n")


def _predict_line(model: Any, line: str) -> tuple[str, float] | None:
    """:func:`predict_top1` for a text that already ends with the "\\n" ``predict`` appends (one
    string for all models: pybind11 then converts it to UTF-8 once, as the str keeps its UTF-8 copy)."""
    predictions = model.f.predict(line, 1, 0.0, "strict")
    if not predictions:
        return None
    prob, label = predictions[0]
    return label, prob


def score_from_prediction(label: str, prob: float) -> float:
    """RPv2's high-quality score: ``1 - p`` for the ccnet label, else ``p``, rounded to 8 decimals."""
    return round(float(1 - prob if label == CCNET_LABEL else prob), PRECISION)


class ClassifierScorer:
    """The 3 ML signals of a document; models load once, lazily, per language.

    ``missing`` counts documents whose signal is None because the model for their language is
    missing (keys ``classifiers/<lang>/<name>``); ``repaired_text`` counts documents whose text had
    lone surrogates replaced before prediction (RPv2 would raise on them).
    """

    def __init__(self, artifacts_dir: str | os.PathLike[str]) -> None:
        self.artifacts_dir = Path(artifacts_dir)
        self.missing: Counter[str] = Counter()
        self.repaired_text = 0
        self._models: dict[str, dict[str, Any]] = {}

    def models(self, lang: str) -> dict[str, Any]:
        """name -> loaded fastText model for ``lang`` (only the three RPv2 model names)."""
        if lang not in self._models:
            files = find_model_files(self.artifacts_dir, lang) if lang else {}
            loaded = {name: load_fasttext_model(path) for name, path in files.items() if name in MODEL_SIGNALS}
            absent = sorted(set(MODEL_SIGNALS) - set(loaded))
            if absent:
                log.info("no %s classifier(s) for language %r: those ML signals are null", absent, lang)
            self._models[lang] = loaded
        return self._models[lang]

    def score(self, doc: Any, language: str | None = None) -> dict[str, float | None]:
        """The 3 ML signals for ``doc`` (needs ``raw_content`` and ``language``)."""
        lang = language or getattr(doc, "language", None) or ""
        models = self.models(lang)
        out: dict[str, float | None] = dict.fromkeys(SIGNAL_NAMES)
        for name in MODEL_SIGNALS:
            if name not in models:
                self.missing[f"classifiers/{lang or '?'}/{name}"] += 1
        raw = doc.raw_content
        if not models or len(raw) == 0:
            return out
        text = classifier_input(raw)
        if not text.isascii():  # ASCII always encodes; only other text can hold lone surrogates
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                text = _encodable(text)
                self.repaired_text += 1
        line = text + "\n"
        for name, model in models.items():
            prediction = _predict_line(model, line)
            if prediction is not None:
                out[MODEL_SIGNALS[name]] = score_from_prediction(*prediction)
        return out
