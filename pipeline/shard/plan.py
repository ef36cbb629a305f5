"""The shard stage's declared step list: which steps run, in which order, built from the run settings.

The order lives in the run config's ``pipeline`` list (configs/default.yaml), as cc_net's ``pipeline``
option; a user may drop or reorder steps there, within the dependencies checked here (one line names
the problem before any work starts). ``read`` is the first pass over the shard's files (it feeds every
other step and the line hashes); the others are ``doc -> doc | Drop(reason)`` callables
(pipeline/ccnet/steps.py, pipeline/shard/annotators.py) applied per document by the processor's one
loop, which counts and times each of them.

The models the steps load may be given by URI: :func:`resolve_sources` (on the launcher) turns them into
a :class:`ModelSources` plan of URIs and sha256s, and :func:`fetch_models` (in each worker's
``DoFn.setup``) fetches what the plan lists into the local cache (pipeline/io/fetch.py) before the steps
are built.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.io.fetch import RemoteDir, RemoteFile

if TYPE_CHECKING:
    from pipeline.io.remote import RetryPolicy

log = logging.getLogger(__name__)

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
    "contamination": (READ,),  # benchmark n-gram overlap (pipeline/contamination); optional, after signals
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


@dataclass(frozen=True)
class ModelSources:
    """The models a run gives by URI, as the launcher resolved them: for each, the files the workers
    need with their recorded sha256s. Picklable; carried in the stage settings. A model given by local
    path (or ``file://``) is not in it: it is read in place, as the settings name it."""

    lid_model: RemoteFile | None = None
    models_dir: RemoteDir | None = None  # the kept languages' {lang}.sp.model + {lang}.arpa.bin
    artifacts: RemoteDir | None = None  # the signals' files for the kept languages
    contamination: RemoteDir | None = None  # the benchmark n-gram index (rpv2 contamination build)

    @property
    def empty(self) -> bool:
        return (self.lid_model is None and self.models_dir is None and self.artifacts is None
                and self.contamination is None)


def resolve_sources(
    *,
    lid_model: str | None,
    models_dir: str | None,
    artifacts: str | None,
    languages: Collection[str] | None,
    steps: Sequence[str],
    retry: RetryPolicy | None = None,
    contamination: str | None = None,
) -> ModelSources:
    """The plan of the models given by URI (on the launcher; no I/O for local paths): a single file's
    sha256 from its ``.sha256`` sidecar (else it is streamed once to hash it), a directory's files from
    its ``SHA256SUMS``, narrowed to what the declared ``steps`` read for the kept ``languages`` (None:
    every language). Raises :class:`pipeline.io.fetch.FetchError` (a missing manifest among them)."""
    from pipeline.io.fetch import remote_dir, remote_file
    from pipeline.io.uris import is_remote

    lid = remote_file(lid_model, retry) if "lid" in steps and lid_model and is_remote(lid_model) else None
    models = None
    if "perplexity" in steps and models_dir and is_remote(models_dir):
        from pipeline.ccnet.perplexity import model_languages, needed_model_files

        models = remote_dir(models_dir, lambda manifest: needed_model_files(manifest, languages), retry)
        missing = sorted(set(languages or ()) - set(model_languages(models.files)))
        if missing:
            log.warning("%s: no model for kept language(s) %s in its SHA256SUMS: their documents get bucket "
                        "'all' (counted as kept_without_lm)", models_dir, ", ".join(missing))
    arts = None
    if "signals" in steps and artifacts and is_remote(artifacts):
        from pipeline.shard.annotators import needed_artifacts

        arts = remote_dir(artifacts, lambda manifest: needed_artifacts(manifest, languages), retry)
    index = None
    if "contamination" in steps and contamination and is_remote(contamination):
        index = remote_dir(contamination, None, retry)
    return ModelSources(lid_model=lid, models_dir=models, artifacts=arts, contamination=index)


def fetch_models(settings: Any, cache_dir: str | os.PathLike[str] | None = None) -> Any:
    """``settings`` with the models of its :class:`ModelSources` fetched into the local cache (default
    ``$RPV2_CACHE/fetched``) and their local paths in place of the URIs; called in each worker's
    ``DoFn.setup``, where the files are checked against the recorded sha256s.

    A kept language's model that cannot be fetched or is not the recorded file raises
    :class:`pipeline.ccnet.perplexity.ModelLoadError` naming the language, the URI and the reason; the
    LID model or a signal artifact, :class:`pipeline.io.fetch.FetchError` naming the URI. The run fails:
    no document gets bucket ``all`` or null signals because a worker lacked a file."""
    from pipeline.io.fetch import FetchError, fetch, fetch_tree

    sources: ModelSources = settings.sources
    if sources.empty:
        return settings
    changes: dict[str, str] = {}
    if sources.lid_model is not None:
        lid = sources.lid_model
        try:
            changes["lid_model"] = str(fetch(lid.uri, lid.sha256, cache_dir, settings.retry))
        except FetchError as exc:
            raise type(exc)(exc.uri, f"LID model: {exc.reason}") from exc
    if sources.models_dir is not None:
        from pipeline.ccnet.perplexity import ModelLoadError, model_language

        try:
            changes["models_dir"] = str(fetch_tree(sources.models_dir, cache_dir, settings.retry))
        except FetchError as exc:
            raise ModelLoadError(model_language(exc.relpath or ""), exc.uri, exc.reason) from exc
    if sources.artifacts is not None:
        try:
            changes["artifacts"] = str(fetch_tree(sources.artifacts, cache_dir, settings.retry))
        except FetchError as exc:
            raise type(exc)(exc.uri, f"signal artifact {exc.relpath}: {exc.reason}") from exc
    if sources.contamination is not None:
        try:
            changes["contamination"] = str(fetch_tree(sources.contamination, cache_dir, settings.retry))
        except FetchError as exc:
            raise type(exc)(exc.uri, f"contamination index {exc.relpath}: {exc.reason}") from exc
    return settings.replace(**changes)


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

            origin = settings.sources.models_dir.uri if settings.sources.models_dir is not None else None
            models = LanguageModels(settings.models_dir, origin=origin) if settings.models_dir else None
            built.append(ccnet.Perplexity(models, settings.languages))
        elif name == "bucket":
            built.append(ccnet.Bucket(settings.cutoffs))
        elif name == "signals":
            from pipeline.shard.annotators import SignalsAnnotator

            built.append(SignalsAnnotator(settings.artifacts or None, settings.languages or ()))
        elif name == "minhash":
            from pipeline.shard.annotators import MinHashAnnotator

            built.append(MinHashAnnotator())
        elif name == "contamination":
            from pipeline.contamination.annotator import ContaminationAnnotator

            built.append(ContaminationAnnotator(settings.contamination))
    return built


def with_contamination(steps: Sequence[str], index: str | None) -> tuple[str, ...]:
    """The declared steps with the ``contamination`` step as the index asks: left out without an index;
    with one and not declared, added right after ``signals`` (whose document view it reuses), else
    last."""
    steps = tuple(steps)
    if not index:
        return tuple(s for s in steps if s != "contamination")
    if "contamination" in steps:
        return steps
    at = steps.index("signals") + 1 if "signals" in steps else len(steps)
    return (*steps[:at], "contamination", *steps[at:])
