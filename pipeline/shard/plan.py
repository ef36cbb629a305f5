"""The shard stage's declared step list: which steps run, in which order, built from the run settings.

The order lives in the run config's ``pipeline`` list (configs/default.yaml), as cc_net's ``pipeline``
option; a user may drop or reorder steps there, within the dependencies checked here (one line names
the problem before any work starts). ``read`` is the first pass over the shard's files (it feeds every
other step and the line hashes); the others are ``doc -> doc | Drop(reason)`` callables
(pipeline/ccnet/steps.py, pipeline/shard/annotators.py) applied per document by the processor's one
loop, which counts and times each of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

READ = "read"
LINE_DEDUP = "line_dedup"
# step -> the steps that must come before it (the fields it reads are written by them)
REQUIRES: dict[str, tuple[str, ...]] = {
    READ: (),
    LINE_DEDUP: (READ,),
    "lid": (READ,),
    "keep_language": ("lid",),
    "perplexity": ("lid",),
    "bucket": ("perplexity",),
    "signals": ("lid",),
    "minhash": (READ,),
}
KNOWN_STEPS = tuple(REQUIRES)
# the output is partitioned by language, so a run always identifies it
MANDATORY = (READ, "lid")
ANNOTATION_STEPS = ("signals", "minhash")


class PlanError(ValueError):
    """A step list that cannot run; the message names the step and the rule."""


def check_plan(steps: Sequence[str]) -> tuple[str, ...]:
    """Validate a declared step order: known names, no repeats, ``read`` first, ``lid`` present, and
    every step after the steps it needs. Returns it as a tuple."""
    steps = tuple(steps)
    unknown = [s for s in steps if s not in REQUIRES]
    if unknown:
        raise PlanError(f"unknown step(s) {', '.join(map(repr, unknown))}: known steps are {', '.join(KNOWN_STEPS)}")
    repeated = sorted({s for s in steps if steps.count(s) > 1})
    if repeated:
        raise PlanError(f"step(s) listed twice: {', '.join(repeated)}")
    if not steps or steps[0] != READ:
        raise PlanError(f"the first step must be {READ!r} (got {steps[0] if steps else 'nothing'!r})")
    for step in MANDATORY:
        if step not in steps:
            raise PlanError(f"step {step!r} is required (the output is partitioned by language)")
    for index, step in enumerate(steps):
        for needed in REQUIRES[step]:
            if needed not in steps[:index]:
                raise PlanError(f"step {step!r} needs {needed!r} before it")
    return steps


def build_steps(settings: Any, overrides: Mapping[str, Any] | None = None) -> list[Any]:
    """The per-document steps of ``settings.steps`` (all but ``read``, and but ``line_dedup``, which the
    processor builds per shard from its line hashes), in order, models not yet loaded.

    ``overrides`` replaces a step by name (tests, benchmarks, a user's own step)."""
    from pipeline.ccnet import steps as ccnet

    overrides = dict(overrides or {})
    built: list[Any] = []
    for name in check_plan(settings.steps):
        if name in (READ, LINE_DEDUP):
            continue
        if name in overrides:
            built.append(overrides[name])
        elif name == "lid":
            from pipeline.ccnet.language_id import LanguageIdentifier

            built.append(ccnet.IdentifyLanguage(LanguageIdentifier(settings.lid_model), settings.lid_threshold))
        elif name == "keep_language":
            built.append(ccnet.KeepLanguage(settings.languages))
        elif name == "perplexity":
            from pipeline.ccnet.perplexity import LanguageModels

            models = LanguageModels(settings.models_dir) if settings.models_dir else None
            built.append(ccnet.Perplexity(models, settings.languages))
        elif name == "bucket":
            built.append(ccnet.Bucket(settings.cutoffs))
        elif name == "signals":
            from pipeline.shard.annotators import SignalsAnnotator

            built.append(SignalsAnnotator(settings.artifacts or None, settings.languages or ()))
        elif name == "minhash":
            from pipeline.shard.annotators import MinHashAnnotator

            built.append(MinHashAnnotator())
    return built
