"""Seconds spent inside the model libraries, per model, so the run summary can say how close to the limit
the pipeline is: whatever rpv2 does around the models (reading, normalizing, signals, writing) is its own
code and can be made faster; the models' own calls cannot, short of changing the models.

The steps that call a model (fastText LID, SentencePiece + KenLM, and inside the signals the fastText
quality classifiers and the DSIR importance weights) each hold one :class:`ModelTime`, add the seconds of
each call to it, and the shard processor drains it once per shard into the shard's statistics
(pipeline/shard/stats.py), where they are summed per stage and per model.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

# The models timed, by the name the run summary uses, with what the name covers.
MODELS: dict[str, str] = {
    "fasttext_lid": "fastText lid.176 predict (one call per document)",
    "sentencepiece": "SentencePiece encode of the normalized document",
    "kenlm": "KenLM score of the tokenized document",
    "classifiers": "fastText quality classifiers (palm, wikiref, wikipedia) with their input",
    "dsir": "DSIR importance weights (hashed n-gram counts against the books/openwebtext/wikipedia models)",
}

F = TypeVar("F", bound=Callable[..., Any])


class ModelTime:
    """Seconds per model since the last :meth:`drain` (one shard's worth, in the processor)."""

    __slots__ = ("seconds",)

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, model: str, seconds: float) -> None:
        self.seconds[model] = self.seconds.get(model, 0.0) + seconds

    def drain(self) -> dict[str, float]:
        """The seconds accumulated since the last call, and start again from zero."""
        seconds, self.seconds = self.seconds, {}
        return seconds

    def timed(self, model: str, function: F) -> F:
        """``function`` with the seconds of every call (returned or raised) added under ``model``."""
        clock = time.perf_counter

        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(model, clock() - started)

        return call  # type: ignore[return-value]
