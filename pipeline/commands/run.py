"""`rpv2 run`: the whole pipeline, from a CommonCrawl snapshot to bucketed Parquet with a run summary,
then exact and fuzzy dedup of the files written when the config asks for them: one Beam pipeline,
built and run by :func:`pipeline.transforms.run.run_pipeline`; this module parses, calls it and prints.

With no snapshot (``rpv2 run`` alone) it runs the embedded sample: a small CommonCrawl-layout mirror
and small language models that the project builds from text it ships, offline.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from pipeline.commands import beam_epilog

HELP = (
    "run the pipeline: CommonCrawl snapshot -> line dedup, LID, perplexity buckets, signals, MinHash -> "
    "Parquet (no arguments: the embedded sample)"
)
BEAM_OPTIONS = True  # Beam's own pipeline options pass through (pipeline.cli)
# what the fork server of DirectRunner worker processes imports before it serves (pipeline/transforms/
# worker_pool.py): the stage the workers run
WORKER_IMPORTS = ("pipeline.transforms.run",)

logger = logging.getLogger(__name__)

# CLI flag -> RunConfig field (flags default to None: "not given", the YAML value stays).
_FLAGS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--snapshot", "snapshot", {"help": "CommonCrawl snapshot: CC-MAIN-2023-06 or 2023-06 (none: the embedded sample)"}),
    ("--base-url", "base_url", {"help": "https://data.commoncrawl.org/ (default), s3://commoncrawl/, or a local mirror"}),
    ("--num-shards", "num_shards", {"type": int, "help": "number of shards the listing is cut into (RPv2: 5000)"}),
    ("--shards", "shards", {"help": "shards to process, e.g. 0-3,7 (default: all)"}),
    ("--output", "output", {"help": "output root: local path, gs:// or s3://"}),
    ("--input-format", "input_format", {"choices": ("wet", "warc"), "help": "wet (CC's text) or warc (HTML)"}),
    ("--min-len", "min_len", {"type": int, "help": "drop documents shorter than this (characters; CCNet: 300)"}),
    ("--languages", "languages", {"help": "languages kept, e.g. en,de,fr,es,it, or all"}),
    ("--lid-threshold", "lid_threshold", {"type": float, "help": "minimum LID score (default 0.5)"}),
    ("--lid-model", "lid_model", {"help": "fastText LID model (default: the bundled lid.176.ftz)"}),
    ("--models-dir", "models_dir", {"help": "directory of {lang}.sp.model + {lang}.arpa.bin"}),
    ("--cutoffs", "cutoffs", {"help": "per-language perplexity cutoffs file (default: CCNet's)"}),
    ("--artifacts", "artifacts", {"help": "RPv2 artifacts dir (word lists, classifiers, DSIR) for the quality signals"}),
    ("--contamination", "contamination",
     {"help": "benchmark n-gram index (rpv2 contamination build; path or URI): adds contam_* columns"}),
    ("--work-dir", "work_dir", {"help": "local scratch directory for shard spools"}),
    ("--exact-dedup-state", "exact_dedup_state",
     {"help": "then exact-dedup the files written, with this Bloom-filter state dir (as rpv2 dedup exact)"}),
    ("--fuzzy-dedup", "fuzzy_dedup",
     {"help": "then fuzzy-dedup the files written at this threshold: 0.7, 0.8, 0.9, 1.0 (as rpv2 dedup fuzzy)"}),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML run configuration (keys as configs/default.yaml)")
    from pipeline.transforms.runner import add_runner_profile_argument

    add_runner_profile_argument(parser)  # for `rpv2 run` the profile's other keys are run settings too
    for flag, dest, kwargs in _FLAGS:
        parser.add_argument(flag, dest=dest, default=None, **kwargs)
    parser.add_argument(
        "--no-signals", dest="signals", action="store_const", const=False, default=None,
        help="do not compute the quality signals",
    )
    parser.add_argument(
        "--no-minhash", dest="minhash", action="store_const", const=False, default=None,
        help="do not compute MinHash signatures",
    )
    parser.add_argument(
        "--force", action="store_true",
        help="recompute everything: replace what an earlier run wrote in --output (by default a rerun "
             "resumes: finished shards are kept, and other settings than the output's are refused)",
    )
    parser.epilog = beam_epilog()


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    fields = [dest for _, dest, _ in _FLAGS] + ["signals", "minhash"]
    return {name: getattr(args, name, None) for name in fields}


def sample_overrides(workdir: str | None = None) -> dict[str, Any]:
    """Build the embedded sample (mirror, LMs, cutoffs; cached) and return the config values that point
    the run at it."""
    from pipeline.sample.builder import default_workdir, prepare_sample

    info = prepare_sample(workdir or default_workdir())
    values = {
        "snapshot": info.snapshot,
        "base_url": str(info.base_url),
        "num_shards": info.num_shards,
        "models_dir": str(info.models_dir),
        "cutoffs": str(info.cutoffs),
        "lid_model": str(info.lid_model),
        "languages": list(info.languages),
        "min_len": info.min_len,
        # the sample holds an exact and a near duplicate page: show fuzzy dedup at the end of the run
        "fuzzy_dedup": 0.8,
    }
    return {key: value for key, value in values.items() if value is not None}


def print_dedup(summary: dict[str, Any], output: str) -> None:
    """The exact-dedup table and the fuzzy-dedup line of a run that chained them."""
    if "exact_dedup" in summary:
        from pipeline.commands.dedup_exact import print_summary

        print_summary(summary["exact_dedup"], output)
    fuzzy = summary.get("fuzzy_dedup")
    if fuzzy is not None:
        counters, clustered, clusters = fuzzy["counters"], fuzzy["clustered"], fuzzy["clusters"]
        print(f"fuzzy dedup (threshold {fuzzy['threshold']}): {counters.get('documents', 0)} documents, "
              f"{clusters} clusters of near duplicates holding {clustered} documents, "
              f"{clustered - clusters} to drop; {counters.get('cc_rounds_run', 0)} star rounds; "
              f"output: {fuzzy['output']}/")
        logger.debug("fuzzy dedup counters: %s", counters)


def finished_shards(output: str, snapshot: str, planned: list[int]) -> Any:
    """The progress count of a run: the planned shards whose completion record
    (``<out>/_shards/<snap>/<shard>.json``, pipeline.dataset.completion) is published, the last thing a
    shard writes; resumed shards count as done from the start."""
    from pipeline.dataset.completion import SHARDS_DIR
    from pipeline.dataset.ids import short_snapshot
    from pipeline.progress import count_files

    names = {f"{shard:04d}.json" for shard in planned}
    return count_files(f"{output.rstrip('/')}/{SHARDS_DIR}/{short_snapshot(snapshot)}", "*.json",
                       keep=lambda path: path.rsplit("/", 1)[-1] in names)


def main(args: argparse.Namespace) -> int:
    from pipeline.config import ConfigError, load_config
    from pipeline.transforms import worker_pool

    overrides = _overrides(args)
    try:
        config = load_config(args.config, overrides, runner_profile=args.runner_profile)
        sample = config.snapshot is None
        if sample:
            from pipeline.sample.builder import default_workdir

            workdir = str(default_workdir())
            print(
                "rpv2: no snapshot given: running the EMBEDDED SAMPLE, offline: a CommonCrawl-layout mirror "
                f"built from text rpv2 ships, with the bundled lid.176.ftz and small LMs built for it, in {workdir}",
                file=sys.stderr,
            )
            # sample values first, then anything the user gave on the command line wins
            config = load_config(
                args.config,
                {**sample_overrides(workdir), **{k: v for k, v in overrides.items() if v is not None}},
                runner_profile=args.runner_profile,
            )
        # SDK worker processes asked for in the config or the runner profile: their fork server starts now
        # (pipeline/transforms/worker_pool.py; pipeline.cli started it already for the command line's)
        worker_pool.start_for(config.beam_args(getattr(args, "beam_args", None) or ()), imports=WORKER_IMPORTS)
        from pipeline.preflight import check_run

        config = check_run(config, getattr(args, "beam_args", None) or ())  # every check before any work
        if config.contamination:
            from pipeline.contamination.index import check_index_uri

            check_index_uri(config.contamination, config.retry)
    except ConfigError as exc:
        print(f"rpv2 run: configuration error: {exc}", file=sys.stderr)
        return 2
    from pipeline.progress import poll_interval, watch
    from pipeline.shard.stats import format_table
    from pipeline.sources.listing import ListingError, parse_shard_spec
    from pipeline.transforms.fuzzy_dedup import FuzzyDedupError
    from pipeline.transforms.run import RunSetupError, run_pipeline

    try:
        planned = parse_shard_spec(config.shards, config.num_shards)
    except ValueError as exc:
        print(f"rpv2 run: configuration error: shards: {exc}", file=sys.stderr)
        return 2
    try:
        with watch(finished_shards(config.output, config.snapshot, planned), len(planned), "shards", desc="run",
                   poll=poll_interval(config.output)):
            summary = run_pipeline(config, beam_args=list(getattr(args, "beam_args", []) or []), sample=sample,
                                   force=bool(getattr(args, "force", False)))
    except RunSetupError as exc:
        print(f"rpv2 run: {exc}", file=sys.stderr)
        return 2
    except ListingError as exc:
        print(f"rpv2 run: {exc}", file=sys.stderr)
        return 1
    except FuzzyDedupError as exc:
        print(f"rpv2 run: fuzzy dedup failed: {exc}", file=sys.stderr)
        return 1
    output = config.output.rstrip("/")
    print(format_table(summary))
    resumed = summary.get("run", {}).get("shards_resumed") or []
    if resumed:
        print(f"resumed: {len(resumed)} shard(s) finished by an earlier run were kept, not recomputed")
    refused = summary.get("run", {}).get("listing_entries_refused") or {}
    if refused.get("count"):
        first = refused["entries"][0]
        print(f"rpv2 run: WARNING: {refused['count']} listing entries refused, never read (first, line "
              f"{first['line']}: {first['entry']!r}: {first['reason']}); see run.listing_entries_refused in "
              f"{output}/_run_summary.json", file=sys.stderr)
    print(f"output: {output}/documents  summary: {output}/_run_summary.json")
    print_dedup(summary, output)
    if sample:
        print("(this was the embedded sample; give --snapshot to process real CommonCrawl)")
    return 0
