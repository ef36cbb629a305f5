"""The whole ``rpv2 run`` as one Beam composite: CommonCrawl -> CCNet stage -> Parquet -> exact dedup ->
fuzzy dedup, plus the run summary.

:class:`CommonCrawlToRPv2` is ARCHITECTURE.md's data flow, one pipeline from the listing to the last
dedup output::

    listing (wet.paths.gz) -> N shards of contiguous files -> per shard: read -> line dedup -> LID
      -> perplexity -> bucket -> signals -> MinHash -> Parquet
      -> the files written -> exact dedup (Bloom state across snapshots)    [exact_dedup_state]
                           -> fuzzy dedup (MinHash LSH, connected components) [fuzzy_dedup]
      -> combined shard stats -> _run_summary.json

A shard is the unit of work (one DoFn call), because CCNet's line dedup needs the whole shard's line
hashes; the per-document steps inside it are :class:`pipeline.shard.processor.ShardProcessor`'s. Heavy
state (LID model, LMs, signal artifacts) is loaded once per worker in ``DoFn.setup``. Each shard emits
the URIs of the Parquet files it published, and the dedup stages read exactly those: they start on a
file once it exists, inside the same pipeline, whatever the runner. Every drop reason is a Beam counter
``rpv2:dropped_<reason>``; the summary is built in the pipeline (pipeline/transforms/summary.py).

What needs the launcher happens around the one pipeline in :func:`run_pipeline`: the listing is read
(a missing one fails at once, with its URL), the exact-dedup state is opened (a snapshot it already
holds is refused before anything runs), and, in the rare case that the fuzzy-dedup rounds inside the
pipeline did not converge, more passes run on the edges it kept (pipeline/transforms/fuzzy_dedup.py).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from dedup.exact import ExactDedupState
from pipeline.dataset.completion import (
    OutputConflict,
    ShardRecord,
    complete_records,
    prepare_output,
    remove_partial_shards,
    settings_digest,
)
from pipeline.io.publish import remove_stale_temporaries
from pipeline.progress import BEAM_NAMESPACE as PROGRESS_NAMESPACE
from pipeline.shard.processor import ShardProcessor, ShardTask, StageSettings
from pipeline.transforms.exact_dedup import ExactDedupFiles
from pipeline.transforms.fuzzy_dedup import DEFAULT_ROUNDS_PER_PASS, FuzzyDedupFiles
from pipeline.transforms.summary import SummarizeRun, count_stats

logger = logging.getLogger(__name__)

# Documents in one CommonCrawl WET (or WARC) file, an upper bound: files hold ~20-45k records (recent
# crawls: about 3 billion pages in 90,000 files). Sizes a new exact-dedup state in a chained run, where
# the documents are not known before the pipeline is built (wanted as a config key, see run_pipeline).
DOCUMENTS_PER_INPUT_FILE = 45_000


class RunSetupError(ValueError):
    """The run cannot start (checked before any work): the message says why, on one line."""


# --------------------------------------------------------------------------------------------------
# Listing -> shards
# --------------------------------------------------------------------------------------------------


def shard_tasks(
    base_url: str, snapshot: str, paths: Sequence[str], num_shards: int, shards: Sequence[int]
) -> list[ShardTask]:
    """Cut a snapshot listing into CCNet/RPv2 shards (contiguous slices) and keep the chosen ones."""
    from pipeline.io.uris import resolve
    from pipeline.sources.listing import shard_paths

    return [
        ShardTask(snapshot=snapshot, shard=shard,
                  files=tuple(resolve(base_url, rel) for rel in shard_paths(paths, num_shards, shard)))
        for shard in shards
    ]


@dataclass(frozen=True)
class ShardGroup:
    """The shards whose line hashes are pooled (cc_net's ``hash_in_mem`` group, every shard of it, so a
    shard's output does not depend on which others a run selects) and which of them this run writes."""

    tasks: tuple[ShardTask, ...]
    selected: tuple[int, ...]


def hash_groups(
    base_url: str, snapshot: str, paths: Sequence[str], num_shards: int, shards: Sequence[int], hash_in_mem: int
) -> list[ShardGroup]:
    """The chosen shards in their line-dedup groups (:func:`pipeline.ccnet.line_dedup.hash_group`); a
    group is one DoFn call. With ``hash_in_mem`` 1 (the default) every shard is its own group."""
    from pipeline.ccnet.line_dedup import hash_group

    by_group: dict[range, list[int]] = {}
    for shard in sorted(set(shards)):
        by_group.setdefault(hash_group(shard, num_shards, hash_in_mem), []).append(shard)
    return [
        ShardGroup(tuple(shard_tasks(base_url, snapshot, paths, num_shards, list(group))), tuple(chosen))
        for group, chosen in sorted(by_group.items(), key=lambda item: item[0].start)
    ]


class ListShards(beam.PTransform):
    """PBegin -> groups of ShardTasks: the snapshot's listing (read on the launcher, so that a missing
    listing fails the run at once with its URL) cut into the chosen shards, in line-dedup groups."""

    def __init__(
        self, base_url: str, snapshot: str, paths: Sequence[str], num_shards: int, shards: Sequence[int],
        hash_in_mem: int = 1,
    ) -> None:
        super().__init__()
        self.groups = hash_groups(base_url, snapshot, paths, num_shards, shards, hash_in_mem)

    def expand(self, pbegin):
        return pbegin | "ShardTasks" >> beam.Create(self.groups, reshuffle=False)


# --------------------------------------------------------------------------------------------------
# Per shard: the CCNet stage, the RPv2 signals and MinHash, Parquet
# --------------------------------------------------------------------------------------------------


class ProcessShardFn(beam.DoFn):
    """A ShardGroup -> one ShardStats dict per selected shard, and on the ``files`` output the URIs of the
    Parquet files each shard published (atomically, so that a retried bundle rewrites the same bytes)."""

    FILES = "files"

    def __init__(self, settings: StageSettings) -> None:
        self.settings = settings
        self.processor: ShardProcessor | None = None

    def setup(self) -> None:
        # LID model, LMs and signal artifacts: once per worker, not per shard; a worker forked from the
        # fork server finds them loaded there (warm_shard_processor)
        self.processor = _take_warm_processor(self.settings)
        if self.processor is not None:
            logger.info("worker %d: models loaded by the fork server", os.getpid())
        else:
            logger.info("worker %d: loading models", os.getpid())
            self.processor = ShardProcessor(self.settings)
            self.processor.load()

    def process(self, group: ShardGroup) -> Iterator[Any]:
        assert self.processor is not None
        chosen = [task for task in group.tasks if task.shard in group.selected]
        for task, stats in zip(chosen, self.processor.process_group(group.tasks, group.selected), strict=True):
            count_stats(stats)
            Metrics.counter(PROGRESS_NAMESPACE, "shards_done").inc()  # the run's progress on a runner's UI
            logger.info(
                "shard %04d: %d files, %d read, %d kept, %d dropped in %.1fs",
                task.shard, stats.files, stats.documents_read, stats.documents_kept,
                stats.documents_dropped, stats.processing_seconds,
            )
            for uri in stats.outputs:
                yield beam.pvalue.TaggedOutput(self.FILES, uri)
            # the file list goes to the dedup stages, not into the summary
            yield {key: value for key, value in stats.to_dict().items() if key != "outputs"}


# ShardProcessors with their models loaded in the fork server (pipeline/transforms/worker_pool.py), before
# it forks the workers: each worker takes the one built with its settings in ProcessShardFn.setup
_warm_processors: list[tuple[StageSettings, ShardProcessor]] = []


def warm_shard_processor(settings: StageSettings) -> None:
    """A fork-server warm-up step: build and load the ShardProcessor a worker will need for ``settings``."""
    processor = ShardProcessor(settings)
    processor.load()
    _warm_processors.append((settings, processor))


def _take_warm_processor(settings: StageSettings) -> ShardProcessor | None:
    """The warmed-up processor for ``settings`` (each is taken once), or None."""
    for index, (warmed, processor) in enumerate(_warm_processors):
        if warmed == settings:
            del _warm_processors[index]
            return processor
    return None


class ResumedShards(beam.PTransform):
    """(files, stats) of the shards processed now -> the same with the shards a killed run had finished
    added from their records (counted as Beam counters too, so counters and summary agree)."""

    def __init__(self, records: Sequence[ShardRecord], output: str) -> None:
        super().__init__()
        self.stats = [record.stats for record in records]
        self.files = [f"{output.rstrip('/')}/{entry['path']}" for record in records for entry in record.files]

    def expand(self, pcolls):
        written, stats = pcolls
        pipeline = written.pipeline
        old_stats = (
            pipeline
            | "RecordStats" >> beam.Create(self.stats, reshuffle=False)
            | "CountRecordStats" >> beam.Map(_count_resumed)
        )
        old_files = pipeline | "RecordFiles" >> beam.Create(self.files, reshuffle=False)
        return (
            (written, old_files) | "AllFiles" >> beam.Flatten(),
            (stats, old_stats) | "AllStats" >> beam.Flatten(),
        )


def _count_resumed(stats: dict[str, Any]) -> dict[str, Any]:
    from pipeline.shard.stats import ShardStats

    count_stats(ShardStats.from_dict(stats))
    Metrics.counter("rpv2", "shards_resumed").inc()
    Metrics.counter(PROGRESS_NAMESPACE, "shards_done").inc()
    return stats


# --------------------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DedupStages:
    """The dedup stages chained after the CCNet stage: exact dedup with an opened state, fuzzy dedup at
    a threshold with ``rounds_per_pass`` star rounds inside the pipeline; None leaves a stage out."""

    exact_state: ExactDedupState | None = None
    fuzzy_threshold: float | None = None
    rounds_per_pass: int = DEFAULT_ROUNDS_PER_PASS


class CommonCrawlToRPv2(beam.PTransform):
    """CommonCrawl snapshot -> Parquet partitioned by snapshot/language/bucket, then exact and fuzzy dedup
    of the files written (when ``dedup`` asks for them), beside them under ``settings.output``.

    Returns the PCollection holding the one run-summary dict.
    """

    def __init__(
        self,
        *,
        base_url: str,
        snapshot: str,
        listing: Sequence[str],
        num_shards: int,
        shards: Sequence[int],
        settings: StageSettings,
        dedup: DedupStages | None = None,
        resumed: Sequence[ShardRecord] = (),
        run_info: Mapping[str, Any] | None = None,
        started_at: float | None = None,
    ) -> None:
        super().__init__()
        self.base_url = base_url
        self.snapshot = snapshot
        self.listing = tuple(listing)
        self.num_shards = num_shards
        self.shards = tuple(shards)
        self.settings = settings
        self.dedup = dedup or DedupStages()
        self.resumed = tuple(resumed)
        self.run_info = dict(run_info or {})
        self.started_at = time.time() if started_at is None else started_at

    def expand(self, pbegin):
        output = self.settings.output
        shards = pbegin | "ListShards" >> ListShards(
            self.base_url, self.snapshot, self.listing, self.num_shards, self.shards, self.settings.hash_in_mem
        )
        stage = (
            shards
            # one shard group per worker call, spread over the workers
            | "SpreadShards" >> beam.Reshuffle()
            # read -> line dedup -> LID -> keep language -> perplexity -> bucket -> signals -> MinHash
            #   -> Parquet per (language, bucket)
            | "CCNetStageToParquet"
            >> beam.ParDo(ProcessShardFn(self.settings)).with_outputs(ProcessShardFn.FILES, main="stats")
        )
        written, stats = stage[ProcessShardFn.FILES], stage.stats
        if self.resumed:  # a resumed run: the finished shards' records stand for their stats and files
            written, stats = (written, stats) | "ResumedShards" >> ResumedShards(self.resumed, output)
        if self.dedup.exact_state is not None:
            _ = written | "ExactDedup" >> ExactDedupFiles(self.dedup.exact_state, output)
        if self.dedup.fuzzy_threshold is not None:
            _ = written | "FuzzyDedup" >> FuzzyDedupFiles(
                output, self.dedup.fuzzy_threshold, self.dedup.rounds_per_pass
            )
        return stats | "SummarizeRun" >> SummarizeRun(output, self.run_info, self.started_at)


# --------------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------------


def load_stage_cutoffs(path: str | None) -> dict[str, Any]:
    """Per-language bucket cutoffs, read on the launcher (workers get them inside StageSettings)."""
    from pipeline.ccnet.buckets import load_cutoffs

    return dict(load_cutoffs(path)) if path else dict(load_cutoffs())


def expected_documents(tasks: Sequence[ShardTask]) -> int:
    """An upper bound of the documents the chosen shards hold: their input files x
    :data:`DOCUMENTS_PER_INPUT_FILE`."""
    return DOCUMENTS_PER_INPUT_FILE * max(sum(len(task.files) for task in tasks), 1)


def open_exact_state(
    state_uri: str, snapshot: str, tasks: Sequence[ShardTask], output: str | None
) -> tuple[ExactDedupState, bool]:
    """The exact-dedup state of a chained run, opened before the pipeline is built: an existing one with
    its own settings, else a new one sized for ``DEFAULT_GROWTH`` times :func:`expected_documents`.

    Returns (state, done): ``done`` when this output already holds the exact dedup that the state
    committed for ``snapshot`` (a resumed run goes on without redoing it; None: the output is being
    replaced, nothing in it counts). Raises :class:`RunSetupError`
    if the state holds ``snapshot`` from another output (every document would be flagged) or was built
    with another key."""
    from dedup.exact import DEFAULT_ERROR_RATE, DEFAULT_GROWTH, DEFAULT_PARTITIONS, refuse_seen_snapshots
    from pipeline.dataset.ids import short_snapshot

    try:
        state = ExactDedupState.open_or_create(
            state_uri, DEFAULT_PARTITIONS, DEFAULT_GROWTH * expected_documents(tasks), DEFAULT_ERROR_RATE, "digest"
        )
        if output is not None and exact_dedup_done(state, short_snapshot(snapshot), output):
            return state, True
        refuse_seen_snapshots(state, [short_snapshot(snapshot)], "use a fresh --exact-dedup-state")
    except ValueError as exc:
        raise RunSetupError(f"exact dedup: {exc}") from exc
    return state, False


def exact_dedup_done(state: ExactDedupState, snapshot: str, output: str) -> bool:
    """Whether ``output`` holds the exact-dedup results the state committed for ``snapshot``: the
    output's summary (written before the state's commit) names the snapshot and a generation the state
    has reached, and the state holds the snapshot."""
    from dedup.exact import summary_uri
    from pipeline.io.publish import exists, read_bytes

    if snapshot not in state.snapshots or not exists(summary_uri(output)):
        return False
    try:
        summary = json.loads(read_bytes(summary_uri(output)))
    except (OSError, ValueError):
        return False
    generation = summary.get("committed_generation")
    return snapshot in summary.get("per_snapshot", {}) and isinstance(generation, int) and generation <= state.generation


def output_settings(config: Any, settings: StageSettings, listing: Sequence[str]) -> dict[str, Any]:
    """The settings that shape the output's bytes, recorded in ``<out>/_run.json``: a run into an
    output made with other settings is refused (pipeline.dataset.completion). The shard selection is not
    among them: runs of different shards may fill one output."""
    from importlib.metadata import PackageNotFoundError, version

    from pipeline.dataset.ids import short_snapshot

    try:
        rpv2_version = version("rpv2")
    except PackageNotFoundError:
        rpv2_version = "unknown"
    return {
        "rpv2_version": rpv2_version,
        "snapshot": short_snapshot(config.snapshot),
        "num_shards": config.num_shards,
        "listing_sha256": hashlib.sha256("\n".join(listing).encode("utf-8")).hexdigest(),
        "input_format": settings.input_format,
        "min_len": settings.min_len,
        "languages": "all" if settings.languages is None else list(settings.languages),
        "lid_threshold": settings.lid_threshold,
        "lid_model": settings.lid_model,
        "models_dir": settings.models_dir,
        "cutoffs": {lang: list(pair) for lang, pair in sorted(settings.cutoffs.items())},
        "artifacts": settings.artifacts,
        "steps": list(settings.steps),
        "hash_in_mem": settings.hash_in_mem,
        "contamination": contamination_identity(settings.contamination),
        # models given by URI: their files' recorded sha256s, so a changed remote model is a difference
        "model_sha256": model_digests(settings.sources),
    }


def contamination_identity(index: str | None) -> dict[str, str] | None:
    """The contamination index of a run: its path and, for a local index, its manifest's sha256 (the
    manifest holds every array file's sha256), so a rebuilt index at the same path is a difference; a
    URI-given index is covered by its recorded SHA256SUMS (:func:`model_digests`)."""
    if not index:
        return None
    from pipeline.contamination.index import MANIFEST_NAME

    identity = {"path": index}
    manifest = os.path.join(index, MANIFEST_NAME)
    if "://" not in index and os.path.isfile(manifest):
        with open(manifest, "rb") as handle:
            identity["manifest_sha256"] = hashlib.sha256(handle.read()).hexdigest()
    return identity


def model_digests(sources: Any) -> dict[str, Any]:
    """{"lid_model": sha256, "models_dir": {file: sha256}, "artifacts": {...}} of the URI-given models."""
    import dataclasses

    if sources is None:
        return {}
    found: dict[str, Any] = {}
    for name in ("lid_model", "models_dir", "artifacts", "contamination"):
        value = getattr(sources, name, None)
        if value is not None:
            found[name] = json.loads(json.dumps(dataclasses.asdict(value), default=str))
    return found


@contextlib.contextmanager
def scratch_tempdir(work_dir: str) -> Iterator[None]:
    """Python's temp dir (tempfile and TMPDIR, inherited by Beam's worker processes) inside the run's
    scratch dir while the pipeline is built and runs: Beam's own temp dirs (beam-pipeline-temp*, ...)
    then land there, and what a killed run leaves is removed by the next run, not left in /tmp."""
    import tempfile

    path = os.path.join(work_dir, "tmp")
    os.makedirs(path, exist_ok=True)
    saved_tempdir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = path, path
    try:
        yield
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env


def prepare_work_dir(output: str, work_dir: str | None) -> str:
    """The local scratch directory of shard spools and Parquet files before their publish: the one the
    config names, else ``<output>/_work`` for a local output, else a directory under the system temp
    dir named after the output. The default one is emptied here, before any worker starts, so what a
    killed run left there does not accumulate."""
    import shutil
    import tempfile

    from pipeline.io.uris import is_remote, local_path

    if work_dir:
        return work_dir
    if is_remote(output):
        path = os.path.join(tempfile.gettempdir(), "rpv2-work", hashlib.sha1(output.encode("utf-8")).hexdigest()[:16])
    else:
        path = os.path.join(local_path(output), "_work")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    return path


def run_pipeline(
    config: Any, beam_args: Sequence[str] = (), *, sample: bool = False, force: bool = False
) -> dict[str, Any]:
    """Build the whole run for ``config`` (a RunConfig) as one pipeline, run it, wait for it, and return
    the run summary (as written to ``_run_summary.json``) with the ``rpv2`` Beam counters under
    ``"counters"``; with exact dedup, its summary under ``"exact_dedup"``; with fuzzy dedup,
    ``{"threshold", "output", "counters", "clustered", "clusters"}`` under ``"fuzzy_dedup"``.

    Raises ListingError (unreadable listing), RunSetupError (exact-dedup state refused; cutoffs or a
    model's manifest unreadable) before any work,
    and FuzzyDedupError when the components do not converge.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.sources.listing import parse_shard_spec, read_listing
    from pipeline.transforms import fuzzy_dedup, worker_pool
    from pipeline.transforms.exact_dedup import read_exact_summary
    from pipeline.transforms.runner import new_pipeline, run_and_wait
    from pipeline.transforms.summary import pipeline_counters, read_run_summary

    if config.snapshot is None:
        raise ValueError("run_pipeline needs a snapshot (the CLI substitutes the embedded sample)")
    shards = parse_shard_spec(config.shards, config.num_shards)
    # crawl-data/CC-MAIN-<id>/{wet,warc}.paths.gz; raises ListingError (with the URL) if unreadable
    listing = read_listing(config.base_url, config.snapshot, kind=config.input_format, retry=config.retry)
    logger.info("%s: %d %s files in %d shards, %d selected", config.snapshot, len(listing), config.input_format,
                config.num_shards, len(shards))
    try:  # cutoffs and the manifests of models given by URI are read here, before any work
        settings = StageSettings.from_config(config, load_stage_cutoffs(config.cutoffs))
    except (OSError, ValueError) as exc:
        raise RunSetupError(str(exc)) from exc
    # the exact-dedup state first (a refusal writes nothing), then claim the output (refused when another
    # run's settings made it, unless --force), then resume:
    # shards with a complete record are skipped, what a killed run left of the others is removed
    exact_state, exact_done = (
        open_exact_state(config.exact_dedup_state, config.snapshot,
                         shard_tasks(config.base_url, config.snapshot, listing, config.num_shards, shards),
                         None if force else config.output)
        if config.exact_dedup_state else (None, False)
    )
    shaping = output_settings(config, settings, listing)
    try:
        prepare_output(config.output, shaping, force=force)
    except OutputConflict as exc:
        raise RunSetupError(str(exc)) from exc
    digest = settings_digest(shaping)
    settings = settings.replace(run_digest=digest, work_dir=prepare_work_dir(config.output, config.work_dir))
    # workers forked from a fork server (DirectRunner, multi_processing) find their models loaded
    worker_pool.warm(functools.partial(warm_shard_processor, settings))
    resumed = complete_records(config.output, config.snapshot, digest, shards)
    todo = [shard for shard in shards if shard not in resumed]
    removed = remove_partial_shards(config.output, config.snapshot, todo)
    removed += remove_stale_temporaries(config.output)  # files a kill caught mid-publish
    if resumed or removed:
        logger.info("resuming %s: %d shards already complete, %d to do (%d partial files removed)",
                    config.output, len(resumed), len(todo), removed)
    dedup = DedupStages(exact_state=None if exact_done else exact_state, fuzzy_threshold=config.fuzzy_dedup)
    if dedup.fuzzy_threshold is not None:
        fuzzy_dedup.prepare_outputs(config.output, dedup.fuzzy_threshold)
    run_info = {
        "snapshot": config.snapshot,
        "base_url": config.base_url,
        "num_shards": config.num_shards,
        "listed_files": len(listing),
        "shards": config.shards or "all",
        "input_format": config.input_format,
        "languages": "all" if config.languages is None else list(config.languages),
        "output": config.output,
        "embedded_sample": sample,
        "shards_resumed": sorted(resumed),
        # entries of the listing refused as unsafe (pipeline.sources.listing), never read: count + examples
        "listing_entries_refused": listing.refused_summary(),
    }
    options = PipelineOptions(config.beam_args(beam_args))
    started_at = time.time()
    with scratch_tempdir(settings.work_dir):
        pipeline = new_pipeline(options)
        _ = pipeline | "CommonCrawlToRPv2" >> CommonCrawlToRPv2(
            base_url=config.base_url,
            snapshot=config.snapshot,
            listing=listing,
            num_shards=config.num_shards,
            shards=todo,
            settings=settings,
            dedup=dedup,
            resumed=[resumed[shard] for shard in sorted(resumed)],
            run_info=run_info,
            started_at=started_at,
        )
        result = run_and_wait(pipeline)
    import shutil

    # the default scratch dir is ours and holds nothing now; in a given one, only our temp dir
    shutil.rmtree(settings.work_dir if not config.work_dir else os.path.join(settings.work_dir, "tmp"),
                  ignore_errors=True)
    summary = read_run_summary(config.output)
    summary["counters"] = pipeline_counters(result)
    if dedup.exact_state is not None or exact_done:
        summary["exact_dedup"] = read_exact_summary(config.output, result)
    if dedup.fuzzy_threshold is not None:
        summary["fuzzy_dedup"] = _finish_fuzzy_dedup(config.output, dedup, options, result,
                                                     documents_kept=summary["documents"]["kept"])
    return summary


def _finish_fuzzy_dedup(output: str, dedup: DedupStages, options: Any, result: Any, *,
                        documents_kept: int) -> dict[str, Any]:
    """More passes if the pipeline's rounds did not converge (as ``rpv2 dedup fuzzy --engine beam``), then
    what the run reports of the clusters."""
    from pipeline.transforms import fuzzy_dedup

    counters = fuzzy_dedup.fuzzy_counters(result)
    if not counters and documents_kept:  # documents were clustered, so counters must have been reported
        raise fuzzy_dedup.FuzzyDedupError(
            "no Beam metrics reported (a runner without metrics?): cannot tell whether the rounds converged"
        )
    counters = fuzzy_dedup.finish_passes(output, dedup.fuzzy_threshold, options, counters,
                                         rounds_per_pass=dedup.rounds_per_pass)
    root = fuzzy_dedup.output_root(output, dedup.fuzzy_threshold)
    clustered, clusters = fuzzy_dedup.cluster_counts(root)
    return {"threshold": dedup.fuzzy_threshold, "output": root, "counters": counters, "clustered": clustered,
            "clusters": clusters}
