"""DSIR importance weights: rps_doc_{books,openwebtext,wikipedia}_importance[_length_correction].

Reproduces RPv2's ``core/quality_signals/importance_weights.py`` (``Base_Importance``):

* features: RPv2's ``hash_feature`` counts of the document's raw WordPunct unigrams and raw bigrams
  in ``buckets`` (10,000) hashed buckets (see :mod:`signals.stable_hash` for the two hash modes; with the
  C kernel, "rpv2" mode hashes every word in C, else each distinct word is hashed once per process,
  through the document's vocabulary ids);
* score: ``np.inner(features, log(p_target + 1e-8) - log(p_source + 1e-8))`` where ``p`` are the
  normalised bucket counts of the target corpus (wikipedia / openwebtext / books) and of the source
  corpus (ccnet), rounded to 8 decimals. The dense 10,000-long product is kept on purpose: summing
  only the buckets a document hits would add the same terms in another order (BLAS ``ddot`` keeps
  several partial sums), which can change the last bits and so, rarely, the 8th decimal;
* length correction: ``+ log(pois(len; lambda_t) + 1e-8) - log(pois(len; lambda_s) + 1e-8)`` with
  ``len = len(raw_content)`` in *characters* while the lambdas are mean *word* counts (RPv2's unit
  mismatch, kept on purpose: the values must equal RPv2's);
* None when the document is empty or when the artifacts for the language are missing.

Artifacts layout (RPv2's, read as is): ``<artifacts>/dsir/<lang>/<dataset>.<lang>.<buckets>.counts.npy``
and ``<dataset>.<lang>.lambda.npy``. Which hash the counts were made with is recorded by our builder
in ``<artifacts>/dsir/<lang>/hash.json`` (``{"hash_mode": "stable", "buckets": 10000, ...}``); a
directory without that file was made by RPv2's own code and uses ``"rpv2"`` mode: RPv2's built-in
``hash()`` under PYTHONHASHSEED=42, which :mod:`signals.cpython_hash` reproduces in any process (no
PYTHONHASHSEED needed here).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from signals.stable_hash import (
    HASH_MODES,
    NATIVE_RPV2_COUNTS,
    gram_counts_from_ids,
    hash_features,
    rpv2_gram_counts,
)

log = logging.getLogger(__name__)

PRECISION = 8  # RPv2 core.constants.PRECISION
SOURCE_DATASET = "ccnet"
TARGET_DATASETS = ("books", "openwebtext", "wikipedia")
HASH_METADATA_FILE = "hash.json"
_PMF_UNDERFLOW = -800.0  # exp() of anything below -745.2 is 0.0 in float64

# target -> (its importance signal, its length-corrected one)
_TARGET_SIGNALS: dict[str, tuple[str, str]] = {
    target: (f"rps_doc_{target}_importance", f"rps_doc_{target}_importance_length_correction")
    for target in TARGET_DATASETS
}
SIGNAL_NAMES: tuple[str, ...] = tuple(name for names in _TARGET_SIGNALS.values() for name in names)


@dataclass(frozen=True)
class DsirModel:
    """One (language, target) pair: the log-ratio vector and the two Poisson lambdas."""

    log_diff: np.ndarray  # float64 [buckets]
    target_lambda: np.ndarray  # 0-d float64, as RPv2's np.load of the lambda file
    source_lambda: np.ndarray


@dataclass(frozen=True)
class DsirLanguage:
    """Everything loaded for one language."""

    hash_mode: str
    buckets: int
    targets: dict[str, DsirModel]  # target dataset name -> model (missing targets absent)


def read_hash_mode(lang_dir: Path) -> str:
    """The hash mode recorded in ``lang_dir/hash.json``; ``"rpv2"`` when the file is absent."""
    meta_path = lang_dir / HASH_METADATA_FILE
    if not meta_path.exists():
        return "rpv2"
    mode = json.loads(meta_path.read_text(encoding="utf-8")).get("hash_mode", "rpv2")
    if mode not in HASH_MODES:
        raise ValueError(f"{meta_path}: unknown hash_mode {mode!r}")
    return mode


def _find_dsir_files(lang_dir: Path) -> dict[str, dict[str, Path]]:
    """dataset -> {"counts": path, "lambda": path}, discovered as RPv2's pipeline.py does."""
    found: dict[str, dict[str, Path]] = {}
    for counts in sorted(lang_dir.glob("*.counts.npy")):
        found.setdefault(counts.name.split(".")[0], {})["counts"] = counts
    for lam in sorted(lang_dir.glob("*.lambda.npy")):
        found.setdefault(lam.name.split(".")[0], {})["lambda"] = lam
    return found


def _normalised(counts: np.ndarray) -> np.ndarray:
    return counts / counts.sum()


def load_dsir_language(lang_dir: Path, hash_mode: str | None = None) -> DsirLanguage | None:
    """Load the DSIR artifacts of one language dir; None if the source (ccnet) counts are missing."""
    files = _find_dsir_files(lang_dir)
    source = files.get(SOURCE_DATASET, {})
    if "counts" not in source:
        return None
    source_counts = np.load(source["counts"])
    source_dist = _normalised(source_counts)
    source_lambda = np.load(source["lambda"]) if "lambda" in source else None
    targets: dict[str, DsirModel] = {}
    for target in TARGET_DATASETS:
        entry = files.get(target, {})
        if "counts" not in entry or "lambda" not in entry or source_lambda is None:
            continue
        target_counts = np.load(entry["counts"])
        if target_counts.shape != source_counts.shape:
            raise ValueError(f"{entry['counts']}: {target_counts.shape} buckets, source has {source_counts.shape}")
        log_diff = np.array(np.log(_normalised(target_counts) + 1e-8) - np.log(source_dist + 1e-8))
        targets[target] = DsirModel(log_diff, np.load(entry["lambda"]), source_lambda)
    mode = hash_mode or read_hash_mode(lang_dir)
    return DsirLanguage(hash_mode=mode, buckets=int(source_counts.shape[0]), targets=targets)


def poisson_pmf(k: int, mu: np.ndarray) -> float:
    """``scipy.stats.poisson.pmf(k, mu)`` for k >= 0, computed as scipy does (exp of xlogy - gammaln - mu).

    Calling the ufuncs directly avoids rv_discrete's per-call argument checking (~100 us). Most
    documents are far longer (in characters) than lambda (in words), where the pmf underflows to
    exactly 0.0; a cheap ``math`` estimate of the log-pmf detects that case (exp(x) == 0.0 for every
    x < -745.2, and the estimate is far more accurate than the -800 margin).
    """
    kf = float(k)
    muf = float(mu)
    if muf > 0.0:
        estimate = kf * math.log(muf) - math.lgamma(kf + 1.0) - muf
        if estimate < _PMF_UNDERFLOW:
            return 0.0
    if muf > 0.0 and kf + 1.0 >= _STIRLING_MIN and muf == muf:
        # scipy's xlogy(k, mu) is k * log(mu) (0 for k == 0) with the C library's log, as math.log
        xlogy = kf * math.log(muf) if kf != 0.0 else 0.0
        return float(np.exp(np.float64(xlogy) - cephes_lgam(kf + 1.0) - mu))
    from scipy import special  # the few other cases; importing scipy.special costs ~0.25 s of start-up

    return float(np.exp(special.xlogy(kf, mu) - special.gammaln(kf + 1.0) - mu))


# Cephes lgam (Stephen L. Moshier), the function behind scipy.special.gammaln for real x, for x >= 13:
# Stirling's formula with the same constants and the same order of operations, so the same doubles
# (tests/unit/test_signals_speed_paths.py compares it with scipy bit for bit).
_STIRLING_MIN = 13.0
_LS2PI = 0.91893853320467274178
_MAXLGM = 2.556348e305
_LGAM_A = (8.11614167470508450300e-4, -5.95061904284301438324e-4, 7.93650340457716943945e-4,
           -2.77777777730099687205e-3, 8.33333333333331927722e-2)


def cephes_lgam(x: float) -> float:
    """``scipy.special.gammaln(x)`` for 13 <= x (finite), computed as Cephes ``lgam`` does."""
    if x > _MAXLGM:
        return math.inf
    q = (x - 0.5) * math.log(x) - x + _LS2PI
    if x > 1.0e8:
        return q
    p = 1.0 / (x * x)
    if x >= 1000.0:
        q += ((7.9365079365079365079365e-4 * p - 2.7777777777777777777778e-3) * p + 0.0833333333333333333333) / x
    else:
        poly = _LGAM_A[0]
        for coefficient in _LGAM_A[1:]:
            poly = poly * p + coefficient
        q += poly / x
    return q


_LOG_EPSILON = float(np.log(1e-8))


def _log_pmf_term(pmf: float) -> float:
    """RPv2's ``np.log(pmf + 1e-8)``; the pmf of a long document is exactly 0.0, whose term is a constant."""
    return _LOG_EPSILON if pmf == 0.0 else float(np.log(pmf + 1e-8))


def importance_scores(
    features: np.ndarray, doc_len: int, lang: DsirLanguage | None
) -> dict[str, float | None]:
    """All 6 importance signals from a document's hash feature vector and its length in characters."""
    out: dict[str, float | None] = dict.fromkeys(SIGNAL_NAMES)
    if lang is None or doc_len == 0:
        return out
    feats = np.asarray(features, dtype=np.float64)  # np.inner(int64, float64) casts the same way
    source_pmf: dict[float, float] = {}  # the source lambda is shared by all targets
    for target, model in lang.targets.items():
        score = float(np.inner(feats, model.log_diff))
        name, corrected_name = _TARGET_SIGNALS[target]
        out[name] = round(score, PRECISION)
        source_key = float(model.source_lambda)
        if source_key not in source_pmf:
            source_pmf[source_key] = poisson_pmf(doc_len, model.source_lambda)
        correction = _log_pmf_term(poisson_pmf(doc_len, model.target_lambda)) - _log_pmf_term(
            source_pmf[source_key]
        )
        out[corrected_name] = round(score + correction, PRECISION)
    return out


class ImportanceScorer:
    """The 6 DSIR importance signals of a document, with artifacts loaded once per language.

    ``hash_mode``: ``"auto"`` (default) reads each language dir's ``hash.json`` (absent -> ``"rpv2"``,
    RPv2's own artifacts); ``"stable"`` or ``"rpv2"`` force a mode. ``missing`` counts documents whose
    signals are None because an artifact was missing (keys ``dsir/<lang>/<dataset>``).
    """

    def __init__(self, artifacts_dir: str | os.PathLike[str], hash_mode: str = "auto") -> None:
        if hash_mode != "auto" and hash_mode not in HASH_MODES:
            raise ValueError(f"hash_mode must be 'auto' or one of {HASH_MODES}, got {hash_mode!r}")
        self.artifacts_dir = Path(artifacts_dir)
        self.hash_mode = hash_mode
        self.missing: Counter[str] = Counter()
        self._languages: dict[str, DsirLanguage | None] = {}

    def language(self, lang: str) -> DsirLanguage | None:
        """The loaded artifacts of ``lang`` (None when its dir or ccnet counts are missing)."""
        if lang not in self._languages:
            lang_dir = self.artifacts_dir / "dsir" / lang
            forced = None if self.hash_mode == "auto" else self.hash_mode
            loaded = load_dsir_language(lang_dir, forced) if lang_dir.is_dir() else None
            if loaded is None:
                log.warning("no DSIR artifacts for language %r in %s: importance signals are null", lang, lang_dir)
            self._languages[lang] = loaded
        return self._languages[lang]

    def score(self, doc: Any, language: str | None = None) -> dict[str, float | None]:
        """The 6 signals for ``doc`` (needs ``raw_content``, ``raw_words`` and ``language``)."""
        lang_code = language or getattr(doc, "language", None) or ""
        lang = self.language(lang_code) if lang_code else None
        raw = doc.raw_content
        if lang is None:
            self.missing[f"dsir/{lang_code or '?'}/{SOURCE_DATASET}"] += 1
            return dict.fromkeys(SIGNAL_NAMES)
        for target in TARGET_DATASETS:
            if target not in lang.targets:
                self.missing[f"dsir/{lang_code}/{target}"] += 1
        if len(raw) == 0:
            return dict.fromkeys(SIGNAL_NAMES)
        if lang.hash_mode == "rpv2" and NATIVE_RPV2_COUNTS:  # every word hashed in C, no word table
            return importance_scores(rpv2_gram_counts(doc.raw_words, lang.buckets), len(raw), lang)
        word_ids = getattr(doc, "raw_word_ids", None)
        if word_ids is None:  # any object with raw_words (tests, tools)
            features = hash_features(doc.raw_words, lang.buckets, lang.hash_mode)
        else:
            features = gram_counts_from_ids(word_ids, doc.vocabulary, lang.buckets, lang.hash_mode)
        return importance_scores(features, len(raw), lang)
