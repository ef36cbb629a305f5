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
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from time import perf_counter
from typing import Any

from pipeline.ccnet.language_id import file_stamp
from pipeline.ccnet.model_time import ModelTime
from pipeline.ccnet.text_normalization import normalize

NO_PERPLEXITY = -1.0
# cc_net's lm_dir layout: {lang}.sp.model beside {lang}.arpa.bin (or a text {lang}.arpa), in that preference
SP_MODEL_SUFFIX = ".sp.model"
LM_SUFFIXES = (".arpa.bin", ".arpa")


class ModelLoadError(RuntimeError):
    """A kept language's model is there but cannot be used (fetch failed, wrong sha256, unreadable): the
    run fails, naming the language, the file and why, rather than giving its documents bucket ``all``."""

    def __init__(self, lang: str | None, uri: str, reason: str) -> None:
        super().__init__(f"language {lang!r}: model {uri} cannot be used: {reason}")
        self.lang = lang
        self.uri = uri
        self.reason = reason


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


def count_words(line: str) -> int:
    """``len(line.split())`` (cc_net's DocLM length, minus the 1 for </s>), without the list of words.

    A printable string holds no whitespace but " " (every other ``str.isspace`` character is a
    control, a line/paragraph separator or a non-" " space separator, none printable), so without a
    leading, trailing or doubled " " its words are its spaces plus one. SentencePiece output joined by
    spaces is that string; anything else is counted by ``split``. Twice as fast as the split.
    """
    if line.isprintable() and "  " not in line and not line.startswith(" ") and not line.endswith(" "):
        return line.count(" ") + 1 if line else 0
    return len(line.split())


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
        lang: str | None = None,
        origin: str | None = None,
    ):
        self.sp_model_path = Path(sp_model_path)
        self.lm_path = Path(lm_path)
        self.per_line = per_line
        self.lang = lang
        self.origin = origin  # the directory URI the files came from (error messages); None: their own dir
        for path in (self.sp_model_path, self.lm_path):
            if not path.is_file():
                raise FileNotFoundError(f"perplexity model file not found: {path}")
        self._sp = None
        self._lm = None

    def __getstate__(self) -> dict[str, object]:
        return {"sp_model_path": self.sp_model_path, "lm_path": self.lm_path, "per_line": self.per_line,
                "lang": self.lang, "origin": self.origin}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update({"lang": None, "origin": None, **state})
        self._sp = None
        self._lm = None

    def _load(self, loader: Callable[[str, tuple[int, int]], Any], path: Path) -> Any:
        """``loader(path)``; a file that does not load raises :class:`ModelLoadError` naming the language
        and where the file came from (a library's own error names neither)."""
        try:
            return loader(str(path), file_stamp(path))
        except Exception as exc:  # noqa: BLE001 - sentencepiece and kenlm raise assorted types
            uri = f"{self.origin.rstrip('/')}/{path.name}" if self.origin else str(path)
            raise ModelLoadError(self.lang, uri, f"{type(exc).__name__}: {exc}") from exc

    @property
    def sp(self):
        if self._sp is None:
            self._sp = self._load(_load_sentencepiece, self.sp_model_path)
        return self._sp

    @property
    def lm(self):
        if self._lm is None:
            self._lm = self._load(_load_kenlm, self.lm_path)
        return self._lm

    def tokenize(self, text: str, timer: ModelTime | None = None) -> str:
        """cc_net's MultiSentencePiece(normalize=True) output for a document (see module doc); the
        SentencePiece calls' seconds are added to ``timer`` (the run summary's time split)."""
        if self.per_line:
            return "\n".join(self._tokenize_line(normalize(line), timer) for line in text.split("\n"))
        return self._tokenize_line(normalize(text), timer)

    def _tokenize_line(self, normalized: str, timer: ModelTime | None = None) -> str:
        if timer is None:
            return " ".join(self.sp.encode(normalized, out_type=str))
        sp = self.sp
        started = perf_counter()
        pieces = sp.encode(normalized, out_type=str)
        timer.add("sentencepiece", perf_counter() - started)
        return " ".join(pieces)

    def score_tokenized(self, tokenized: str, timer: ModelTime | None = None) -> float:
        """cc_net's DocLM on already tokenized text: KenLM log10 scores over lines, rounded pp; the KenLM
        calls' seconds are added to ``timer``."""
        if not tokenized:
            return NO_PERPLEXITY
        lm = self.lm
        lines = tokenized.split("\n")
        started = perf_counter()
        scores = [lm.score(line) for line in lines]
        if timer is not None:
            timer.add("kenlm", perf_counter() - started)
        return perplexity_from_scores(scores, [count_words(line) + 1 for line in lines])

    def perplexity(self, text: str, timer: ModelTime | None = None) -> float:
        """The document's CCNet perplexity (-1.0 for a document without text)."""
        if not text:
            return NO_PERPLEXITY
        return self.score_tokenized(self.tokenize(text, timer), timer)


def model_pair(names: Collection[str], lang: str) -> tuple[str, str] | None:
    """The file names of ``lang``'s model among ``names`` (a directory's files or a SHA256SUMS manifest's
    entries): ``({lang}.sp.model, {lang}.arpa.bin or {lang}.arpa)``, or None if incomplete."""
    sp_model = f"{lang}{SP_MODEL_SUFFIX}"
    if sp_model not in names:
        return None
    for suffix in LM_SUFFIXES:
        if f"{lang}{suffix}" in names:
            return sp_model, f"{lang}{suffix}"
    return None


def model_languages(names: Collection[str]) -> list[str]:
    """Languages with a complete model among ``names``, sorted."""
    langs = {name[: -len(SP_MODEL_SUFFIX)] for name in names if name.endswith(SP_MODEL_SUFFIX) and "/" not in name}
    return sorted(lang for lang in langs if model_pair(names, lang) is not None)


def model_language(name: str) -> str | None:
    """The language a model file belongs to (``de.arpa.bin`` -> ``de``), or None for another file."""
    for suffix in (SP_MODEL_SUFFIX, *LM_SUFFIXES):
        if name.endswith(suffix) and "/" not in name:
            return name[: -len(suffix)]
    return None


def needed_model_files(manifest: Mapping[str, str], languages: Collection[str] | None) -> dict[str, str]:
    """The entries of a models dir's manifest that a run keeping ``languages`` (None: every language)
    reads: each kept language's model pair. A kept language without a complete pair is left out (its
    documents are kept with bucket ``all``, as without a model)."""
    langs = model_languages(manifest) if languages is None else sorted(languages)
    pairs = [model_pair(manifest, lang) for lang in langs]
    return {name: manifest[name] for pair in pairs if pair is not None for name in pair}


def model_files(models_dir: str | os.PathLike[str], lang: str) -> tuple[Path, Path] | None:
    """``({lang}.sp.model, {lang}.arpa.bin or {lang}.arpa)`` in a directory, or None if incomplete."""
    root = Path(models_dir)
    candidates = [f"{lang}{suffix}" for suffix in (SP_MODEL_SUFFIX, *LM_SUFFIXES)]
    pair = model_pair({name for name in candidates if (root / name).is_file()}, lang)
    return None if pair is None else (root / pair[0], root / pair[1])


class LanguageModels:
    """lang -> PerplexityScorer for the models in a directory (cc_net's ``lm_dir`` layout).

    ``get(lang)`` returns None when the language has no model, so the caller keeps the document with
    bucket "all" and counts it. Scorers are built on first use and cached.
    """

    def __init__(self, models_dir: str | os.PathLike[str], per_line: bool = False, origin: str | None = None):
        self.models_dir = Path(models_dir)
        self.per_line = per_line
        # the URI the directory was fetched from (pipeline/io/fetch.py), named when a model fails to load
        self.origin = origin
        self._scorers: dict[str, PerplexityScorer | None] = {}

    def __getstate__(self) -> dict[str, object]:
        return {"models_dir": self.models_dir, "per_line": self.per_line, "origin": self.origin}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update({"origin": None, **state})
        self._scorers = {}

    @property
    def languages(self) -> list[str]:
        """Languages with a complete model pair in the directory, sorted."""
        if not self.models_dir.is_dir():
            return []
        return model_languages({p.name for p in self.models_dir.iterdir() if p.is_file()})

    def get(self, lang: str | None) -> PerplexityScorer | None:
        if not lang:
            return None
        if lang not in self._scorers:
            files = model_files(self.models_dir, lang)
            self._scorers[lang] = (
                PerplexityScorer(*files, per_line=self.per_line, lang=lang, origin=self.origin) if files else None
            )
        return self._scorers[lang]

    def __contains__(self, lang: object) -> bool:
        return isinstance(lang, str) and self.get(lang) is not None

    def perplexity(self, text: str, lang: str, timer: ModelTime | None = None) -> float | None:
        """The document's perplexity under its language's model, or None without a model; the model
        calls' seconds are added to ``timer``."""
        scorer = self.get(lang)
        return None if scorer is None else scorer.perplexity(text, timer)
