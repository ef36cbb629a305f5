"""CCNet's document perplexity: normalization, SentencePiece, KenLM, pp rounded to one decimal.

Reproduces facebookresearch/cc_net ``perplexity.py`` as wired by ``mine.py``:

* ``MultiSentencePiece(normalize=True)``: ``text_normalizer.normalize(raw_content)`` (lower-case,
  accents stripped, digits to 0, unicode punctuation replaced, control characters removed) applied to
  the *whole document*, then ``sp.encode_as_pieces`` joined by spaces. Because "\\n" is one of the
  control characters cc_net removes, the published pipeline scores a document as one line whose
  original lines are glued together; we reproduce that by default (``per_line=False``) so that our
  perplexities are the ones CCNet and RedPajama published. ``per_line=True`` normalizes and scores
  each line separately instead (cc_net's ``DocLM(normalize=True)`` on raw text).
* ``DocLM(normalize=False)``: for each line of the tokenized text, ``log_score = model.score(line)``
  (KenLM, log10, with <s> and </s>) and ``length = len(line.split()) + 1``;
  ``pp = 10 ** (-sum(log_score) / sum(length))``, rounded to 1 decimal.

A document with no text gets no perplexity in cc_net (its bucket becomes "all"); here it gets -1.0,
the value cc_net's ``PerplexityBucket`` assumes for a missing perplexity.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from pathlib import Path

from pipeline.ccnet.language_id import file_stamp
from pipeline.ccnet.text_normalization import normalize

NO_PERPLEXITY = -1.0


def perplexity_from_scores(log10_scores: Iterable[float], lengths: Iterable[int]) -> float:
    """cc_net's ``pp(sum log10, sum length)`` rounded to 1 decimal; -1.0 when there is nothing."""
    total_score = 0.0
    total_length = 0
    for score, length in zip(log10_scores, lengths, strict=True):
        total_score += score
        total_length += length
    if total_length == 0:
        return NO_PERPLEXITY
    return round(10.0 ** (-total_score / total_length), 1)


# Models are loaded once per process and shared by every scorer (several DoFn instances on one
# worker would otherwise each hold a multi-GB KenLM model); both libraries' queries are read-only.
@functools.cache
def _load_sentencepiece(path: str, stamp: tuple[int, int] = (0, 0)):
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=path)


@functools.cache
def _load_kenlm(path: str, stamp: tuple[int, int] = (0, 0)):
    import kenlm

    config = kenlm.Config()
    config.load_method = kenlm.LoadMethod.POPULATE_OR_READ  # = 2, cc_net's load_method
    return kenlm.Model(path, config)


class PerplexityScorer:
    """One language's SentencePiece model and KenLM model, loaded once (lazily, so it pickles)."""

    def __init__(
        self,
        sp_model_path: str | os.PathLike[str],
        lm_path: str | os.PathLike[str],
        per_line: bool = False,
    ):
        self.sp_model_path = Path(sp_model_path)
        self.lm_path = Path(lm_path)
        self.per_line = per_line
        for path in (self.sp_model_path, self.lm_path):
            if not path.is_file():
                raise FileNotFoundError(f"perplexity model file not found: {path}")
        self._sp = None
        self._lm = None

    def __getstate__(self) -> dict[str, object]:
        return {"sp_model_path": self.sp_model_path, "lm_path": self.lm_path, "per_line": self.per_line}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._sp = None
        self._lm = None

    @property
    def sp(self):
        if self._sp is None:
            self._sp = _load_sentencepiece(str(self.sp_model_path), file_stamp(self.sp_model_path))
        return self._sp

    @property
    def lm(self):
        if self._lm is None:
            self._lm = _load_kenlm(str(self.lm_path), file_stamp(self.lm_path))
        return self._lm

    def tokenize(self, text: str) -> str:
        """cc_net's MultiSentencePiece(normalize=True) output for a document (see module doc)."""
        if self.per_line:
            return "\n".join(self._tokenize_line(normalize(line)) for line in text.split("\n"))
        return self._tokenize_line(normalize(text))

    def _tokenize_line(self, normalized: str) -> str:
        return " ".join(self.sp.encode(normalized, out_type=str))

    def score_tokenized(self, tokenized: str) -> float:
        """cc_net's DocLM on already tokenized text: KenLM log10 scores over lines, rounded pp."""
        if not tokenized:
            return NO_PERPLEXITY
        lm = self.lm
        lines = tokenized.split("\n")
        return perplexity_from_scores((lm.score(line) for line in lines), (len(line.split()) + 1 for line in lines))

    def perplexity(self, text: str) -> float:
        """The document's CCNet perplexity (-1.0 for a document without text)."""
        if not text:
            return NO_PERPLEXITY
        return self.score_tokenized(self.tokenize(text))


def model_files(models_dir: str | os.PathLike[str], lang: str) -> tuple[Path, Path] | None:
    """``({lang}.sp.model, {lang}.arpa.bin or {lang}.arpa)`` in a directory, or None if incomplete."""
    root = Path(models_dir)
    sp_model = root / f"{lang}.sp.model"
    if not sp_model.is_file():
        return None
    for name in (f"{lang}.arpa.bin", f"{lang}.arpa"):
        if (root / name).is_file():
            return sp_model, root / name
    return None


class LanguageModels:
    """lang -> PerplexityScorer for the models in a directory (cc_net's ``lm_dir`` layout).

    ``get(lang)`` returns None when the language has no model, so the caller keeps the document with
    bucket "all" and counts it. Scorers are built on first use and cached.
    """

    def __init__(self, models_dir: str | os.PathLike[str], per_line: bool = False):
        self.models_dir = Path(models_dir)
        self.per_line = per_line
        self._scorers: dict[str, PerplexityScorer | None] = {}

    def __getstate__(self) -> dict[str, object]:
        return {"models_dir": self.models_dir, "per_line": self.per_line}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._scorers = {}

    @property
    def languages(self) -> list[str]:
        """Languages with a complete model pair in the directory, sorted."""
        if not self.models_dir.is_dir():
            return []
        langs = {p.name[: -len(".sp.model")] for p in self.models_dir.glob("*.sp.model")}
        return sorted(lang for lang in langs if model_files(self.models_dir, lang) is not None)

    def get(self, lang: str | None) -> PerplexityScorer | None:
        if not lang:
            return None
        if lang not in self._scorers:
            files = model_files(self.models_dir, lang)
            self._scorers[lang] = PerplexityScorer(*files, per_line=self.per_line) if files else None
        return self._scorers[lang]

    def __contains__(self, lang: object) -> bool:
        return isinstance(lang, str) and self.get(lang) is not None

    def perplexity(self, text: str, lang: str) -> float | None:
        """The document's perplexity under its language's model, or None without a model."""
        scorer = self.get(lang)
        return None if scorer is None else scorer.perplexity(text)
