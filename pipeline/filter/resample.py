"""Importance resampling: a recipe's ``resample: {weight, k | fraction, seed}``, the Gumbel top-k draw.

RPv2 ships DSIR log-importance weights (``rps_doc_{books,openwebtext,wikipedia}_importance``: log p(doc)/q(doc),
Xie et al. 2023, "Data Selection for Language Models via Importance Resampling") and its FAQ resamples with
them as a code snippet: sample k documents without replacement with probability proportional to exp(weight),
by the Gumbel top-k trick (DSIR's own ``np.argpartition(-(log_w + gumbel), k)``). A recipe states it as data::

    resample:
      weight: "rps_doc_books_importance - rps_doc_openwebtext_importance"   # a number per document
      k: 1000          # or  fraction: 0.1  (k = round(fraction * documents the rules keep), half up)
      seed: 17         # required: no silent default, the seed decides which documents are chosen

Why Gumbel top-k: adding independent Gumbel(0, 1) noise G to every log-weight and keeping the k largest
``weight + G`` draws k items without replacement exactly as successive sampling does (first item with
probability exp(w_i) / sum exp(w), then the next among the rest, ...); Vieira 2014, Kool et al. 2019.

Why a counter-based hash and not a random generator: the noise of a document is a function of
(seed, document id) alone (:func:`uniform`), so any worker, in any order, on any runner computes the same
key for it, and the k largest keys of the whole dataset are the same k documents whether they were found
in one process or merged from per-file top-k lists (:func:`merge_top_k`). Ties are broken by the id: a
candidate is the pair ``(key, id)`` and pairs are totally ordered.

The resample applies to the documents the recipe's rules keep. A document whose weight is null (a null
column, a division by zero, NaN) cannot be weighed: it is dropped and counted by reason
``resample_null_weight``; a weighed document outside the top k is dropped by reason ``resample_not_selected``
(pipeline/filter/apply.py counts both, so read = kept + dropped by rule + dropped by these reasons). A weight
of +inf is kept as such (always before any finite key), -inf as never before one.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.filter.grammar import (
    ColumnKinds,
    RecipeError,
    check_number,
    column_refs,
    evaluate,
    parse_expression,
)

NULL_WEIGHT = "resample_null_weight"
NOT_SELECTED = "resample_not_selected"
DROP_REASONS = (NULL_WEIGHT, NOT_SELECTED)  # in the order they apply
RESAMPLE_KEYS = ("weight", "k", "fraction", "seed")
MAX_SEED = 2**64 - 1  # the seed is the hash key's 8 bytes
MAX_K = 2**63 - 1

# A candidate of the draw: (Gumbel key, document id). Tuples compare by key, then by id: a total order.
Candidate = tuple[float, str]

_PERSON = b"rpv2-resample"  # blake2b personalization: these keys are unrelated to any other hash of the id


def uniform(seed: int, doc_id: str) -> float:
    """A uniform number in the open interval (0, 1), a pure function of (seed, document id).

    blake2b keyed by the seed over the id's UTF-8 bytes (a counter-based generator whose counter is the id);
    the top 53 bits of its 64-bit digest, centred in their cell, so neither 0 nor 1 can occur and
    -log(-log(u)) is always finite."""
    digest = hashlib.blake2b(
        doc_id.encode("utf-8"), digest_size=8, key=seed.to_bytes(8, "little"), person=_PERSON
    ).digest()
    top53 = int.from_bytes(digest, "little") >> 11
    return (top53 + 0.5) / 2.0**53


def gumbel(seed: int, doc_id: str) -> float:
    """Standard Gumbel noise of a document: -log(-log(U)), U = :func:`uniform` (seed, id)."""
    return -math.log(-math.log(uniform(seed, doc_id)))


def gumbel_key(weight: float, seed: int, doc_id: str) -> float:
    """The document's sort key: its log-weight plus its Gumbel noise (the larger, the likelier chosen)."""
    return weight + gumbel(seed, doc_id)


def top_k(candidates: Iterable[Candidate], k: int) -> list[Candidate]:
    """The k largest candidates, largest first (all of them when fewer); bounded memory (a k-heap)."""
    return heapq.nlargest(k, candidates) if k > 0 else []


def push_bounded(heap: list[Candidate], candidate: Candidate, k: int) -> None:
    """Offer ``candidate`` to ``heap``, a min-heap of at most k candidates: the k largest seen so far, kept
    in O(k) memory while a file streams by (``sorted(heap, reverse=True)`` is then its :func:`top_k`)."""
    if len(heap) < k:
        heapq.heappush(heap, candidate)
    elif k > 0 and candidate > heap[0]:
        heapq.heapreplace(heap, candidate)


def merge_top_k(parts: Iterable[Iterable[Candidate]], k: int) -> list[Candidate]:
    """The top k of the union of top-k lists: equals :func:`top_k` of all their candidates, whatever the
    partition of the dataset into parts and the order of merging (what a Beam combiner needs)."""
    return top_k((c for part in parts for c in part), k)


def threshold(selected: list[Candidate]) -> Candidate | None:
    """The smallest selected candidate: a document is selected iff its candidate is >= it. One value that
    every worker can test its documents against, instead of a set of k ids; None selects nothing."""
    return min(selected) if selected else None


def is_selected(candidate: Candidate, cutoff: Candidate | None) -> bool:
    return cutoff is not None and candidate >= cutoff


@dataclass(frozen=True)
class Resample:
    """A recipe's resample step: draw k (or ``fraction`` of the rule-kept) documents, without replacement,
    with probability proportional to exp(weight)."""

    weight: str  # the expression as written, for the report
    tree: Any
    seed: int
    k: int | None = None
    fraction: float | None = None

    @property
    def columns(self) -> set[str]:
        return column_refs(self.tree)

    def check(self, kinds: ColumnKinds) -> None:
        """The weight is a number over known numeric columns; raises RecipeError saying what is wrong."""
        try:
            check_number(self.tree, kinds)
        except RecipeError as exc:
            raise RecipeError(f"weight: {exc}") from None

    def target(self, eligible: int) -> int:
        """How many documents to draw from ``eligible`` weighed ones: k, or fraction * eligible rounded
        half up (never more than there are: the draw then keeps them all)."""
        if self.fraction is None:
            return int(self.k or 0)
        return min(eligible, math.floor(self.fraction * eligible + 0.5))

    def candidate(self, row: Mapping[str, Any]) -> Candidate | None:
        """The document's (key, id), or None when its weight is null or NaN (it cannot be weighed)."""
        weight = evaluate(self.tree, row)
        if weight is None or isinstance(weight, bool) or math.isnan(weight):
            return None
        return (gumbel_key(float(weight), self.seed, row["id"]), row["id"])

    def describe(self) -> dict[str, Any]:
        """The spec as the report shows it."""
        size = {"k": self.k} if self.fraction is None else {"fraction": self.fraction}
        return {"weight": self.weight, **size, "seed": self.seed}


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecipeError(f"'{name}' must be an integer, got {value!r}"[:200])
    if not low <= value <= high:
        raise RecipeError(f"'{name}' must be between {low} and {high}, got {value}"[:200])
    return value


def parse_resample(spec: Any) -> Resample:
    """The resample step from its YAML mapping; a RecipeError names the key that is wrong."""
    if not isinstance(spec, Mapping):
        raise RecipeError("must be a mapping with 'weight', 'k' or 'fraction', and 'seed'")
    unknown = set(spec) - set(RESAMPLE_KEYS)
    if unknown:
        names = sorted(k if isinstance(k, str) and k.isidentifier() else repr(k) for k in unknown)
        raise RecipeError(f"unknown key(s) {', '.join(names)} (known: {', '.join(RESAMPLE_KEYS)})"[:300])
    weight = spec.get("weight")
    if not isinstance(weight, str) or not weight.strip():
        raise RecipeError("'weight' must be an expression over DSIR log-importance columns, e.g. "
                          "'rps_doc_books_importance - rps_doc_openwebtext_importance'")
    try:
        tree = parse_expression(weight)
    except RecipeError as exc:
        raise RecipeError(f"weight: {exc}") from None
    if ("k" in spec) == ("fraction" in spec):
        raise RecipeError("give either 'k' (how many documents) or 'fraction' (of those the rules keep), "
                          "not both or neither")
    if "seed" not in spec:
        raise RecipeError("'seed' is missing: the seed decides which documents are drawn, give one (e.g. seed: 0)")
    seed = _integer(spec["seed"], "seed", 0, MAX_SEED)
    if "k" in spec:
        return Resample(weight.strip(), tree, seed, k=_integer(spec["k"], "k", 1, MAX_K))
    fraction = spec["fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise RecipeError(f"'fraction' must be a number in (0, 1], got {fraction!r}"[:200])
    return Resample(weight.strip(), tree, seed, fraction=float(fraction))
