"""`rpv2 models download|build-lm|calibrate`: the models of the CCNet stage.

download   the official fastText lid.176.bin and CCNet's {lang}.sp.model / {lang}.arpa.bin
build-lm   a SentencePiece unigram + KenLM n-gram model for a language or domain without one
calibrate  p30/p60 perplexity cutoffs (head/middle/tail) of a sample, written to a cutoffs YAML
manifest   SHA256SUMS of a local dir, so it can be uploaded and given to `rpv2 run` by URI
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from pipeline.commands import command_error

HELP = "download CCNet's models (lid.176.bin, {lang}.sp.model, {lang}.arpa.bin), build your own LMs, calibrate buckets"


def _langs(value: str) -> tuple[str, ...]:
    """``--langs`` through the run config's languages parser; a download needs the codes spelled out."""
    from pipeline.config import ConfigError, parse_languages

    try:
        langs = parse_languages(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if langs is None:
        raise argparse.ArgumentTypeError("name the languages whose models to download, e.g. en,de ('all' has no list)")
    return langs


def _default_langs() -> tuple[str, ...]:
    """The run config's kept languages (configs/default.yaml): the models ``rpv2 run`` uses by default."""
    from pipeline.config import ConfigError, default_value

    langs = default_value("languages")
    if langs is None:
        raise ConfigError("languages: the default is 'all'; give `rpv2 models download --langs en,de,...`")
    return langs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    dl = sub.add_parser(
        "download",
        help="fetch lid.176.bin and CCNet LMs into the cache (resumable, verified)",
        description="Download the official fastText lid.176.bin and CCNet's per-language SentencePiece "
        "and KenLM models into the cache dir ($RPV2_CACHE, default ~/.cache/rpv2): lid.176.bin at "
        "its top, LMs under lm/. Interrupted downloads resume; files are checked against "
        "configs/models.yaml's sha256 or, when none is published, a recorded .sha256 sidecar.",
    )
    dl.add_argument(
        "--langs", type=_langs, default=None, help="LM languages, e.g. en,de (default: configs/default.yaml's languages)"
    )
    dl.add_argument("--cache-dir", type=Path, default=None, help="default: $RPV2_CACHE or ~/.cache/rpv2")
    dl.add_argument(
        "--base-url", default=None,
        help="a mirror holding lid.176.bin and the {lang}.sp.model/{lang}.arpa.bin files (replaces every default URL)",
    )
    dl.add_argument("--no-lid", action="store_true", help="skip lid.176.bin")
    dl.add_argument("--no-lm", action="store_true", help="skip the language models")
    dl.add_argument(
        "--retries", type=int, default=None,
        help="resume attempts per file after the first (default: configs/default.yaml's retry.max_attempts - 1)",
    )
    dl.add_argument(
        "--timeout", type=float, default=None, help="socket timeout in seconds (default: configs/default.yaml's retry)"
    )
    dl.add_argument("--no-progress", action="store_true", help="no progress bar")
    dl.set_defaults(_models_main=_download)

    build = sub.add_parser(
        "build-lm",
        help="train {lang}.sp.model + {lang}.arpa.bin (SentencePiece unigram + KenLM) on text files",
        description="Train a SentencePiece unigram model and a KenLM n-gram model (lmplz, then "
        "build_binary) on CCNet-normalized text, for a language or domain without a published CCNet "
        "model. Needs KenLM's lmplz and build_binary: `bash scripts/build_kenlm_tools.sh`.",
    )
    build.add_argument("--lang", required=True, help="language (or domain) code, used in the file names")
    build.add_argument("--corpus", nargs="+", required=True, type=Path, help="text files (.gz too), one sentence or paragraph per line")
    build.add_argument("--out", type=Path, default=None, help="output dir (default: <cache>/lm)")
    build.add_argument("--vocab-size", type=int, default=8000, help="SentencePiece vocabulary (soft limit; default 8000)")
    build.add_argument("--order", type=int, default=5, help="n-gram order (default 5, as CCNet)")
    build.add_argument("--memory", default="1G", help="lmplz -S memory budget (default 1G)")
    build.add_argument("--keep-arpa", action="store_true", help="also keep the text ARPA file")
    build.set_defaults(_models_main=_build_lm)

    cal = sub.add_parser(
        "calibrate",
        help="compute p30/p60 perplexity cutoffs from a sample and write them to a cutoffs YAML",
        description="Score a sample with a language's model and write its 30th/60th percentile "
        "perplexities (the head/middle/tail cutoffs) into a cutoffs YAML, keeping other languages.",
    )
    cal.add_argument("--lang", required=True)
    cal.add_argument("--models", type=Path, required=True, help="dir with {lang}.sp.model and {lang}.arpa.bin")
    cal.add_argument(
        "samples", nargs="+", type=Path,
        help="text files (one document per line), CCNet JSONL(.gz) or rpv2 Parquet (raw_content of that language)",
    )
    cal.add_argument(
        "--cutoffs", type=Path, default=None,
        help="cutoffs YAML to update (default: configs/perplexity_cutoffs.yaml)",
    )
    cal.set_defaults(_models_main=_calibrate)

    man = sub.add_parser(
        "manifest",
        help="write DIR/SHA256SUMS (sha256sum format) for a models or artifacts dir before uploading it",
        description="Hash every file of a local directory into DIR/SHA256SUMS. A models dir, an artifacts "
        "dir given to `rpv2 run` by URI (gs://, s3://, http(s)://) must carry one: it lists the files "
        "(HTTP cannot list a directory) and workers check what they fetch against it.",
    )
    man.add_argument("dir", type=Path, help="local directory (e.g. ~/.cache/rpv2/lm or an artifacts dir)")
    man.set_defaults(_models_main=_manifest)


def main(args: argparse.Namespace) -> int:
    return int(args._models_main(args) or 0)


def _download(args: argparse.Namespace) -> int:
    from pipeline.ccnet.model_store import default_cache_dir, download_models
    from pipeline.config import ConfigError
    from pipeline.io.remote import RetryPolicy

    cache = args.cache_dir or default_cache_dir()
    try:
        langs = () if args.no_lm else args.langs if args.langs is not None else _default_langs()
        retry = RetryPolicy()
        if args.retries is not None:
            retry = dataclasses.replace(retry, max_attempts=args.retries + 1)
        if args.timeout is not None:
            retry = dataclasses.replace(retry, timeout=args.timeout)
    except ConfigError as exc:
        return command_error("models download", exc)
    results, failures = download_models(
        langs, cache, args.base_url, include_lid=not args.no_lid,
        progress=not args.no_progress and sys.stderr.isatty(), retry=retry,
    )
    for result in results:
        print(f"{result.status:>10}  {result.path}  ({result.size:,} bytes, sha256 {result.sha256[:16]}…)")
    for item, message in failures:
        print(f"{'FAILED':>10}  {item.dest}: {message}", file=sys.stderr)
    print(f"cache: {cache} ({len(results)} ok, {len(failures)} failed)")
    return 1 if failures else 0


def _build_lm(args: argparse.Namespace) -> int:
    from pipeline.ccnet.model_store import KenLMToolsMissing, build_lm, lm_cache_dir

    missing = [str(p) for p in args.corpus if not p.is_file()]
    if missing:
        return command_error("models build-lm", f"corpus file(s) not found: {', '.join(missing)}")
    out = args.out or lm_cache_dir()
    try:
        result = build_lm(
            args.lang, args.corpus, out, vocab_size=args.vocab_size, order=args.order,
            memory=args.memory, keep_arpa=args.keep_arpa,
        )
    except (KenLMToolsMissing, ValueError, RuntimeError) as exc:
        command_error("models build-lm", exc)
        return 1  # the build started: a failure, not a usage error
    print(
        f"built {result.sp_model} (vocab {result.vocab_size}) and {result.lm_binary} "
        f"from {result.n_lines:,} lines / {result.n_tokens:,} tokens"
    )
    print(f"next: rpv2 models calibrate --lang {args.lang} --models {out} SAMPLE...")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from pipeline.ccnet.buckets import DEFAULT_CUTOFFS_PATH
    from pipeline.ccnet.model_store import calibrate

    missing = [str(p) for p in args.samples if not p.is_file()]
    if missing:
        return command_error("models calibrate", f"sample file(s) not found: {', '.join(missing)}")
    cutoffs = args.cutoffs or DEFAULT_CUTOFFS_PATH
    try:
        result = calibrate(args.lang, args.models, args.samples, cutoffs)
    except (FileNotFoundError, ValueError) as exc:
        command_error("models calibrate", exc)
        return 1  # the calibration started: a failure, not a usage error
    print(
        f"{result.lang}: p30={result.p30} p60={result.p60} from {result.n_documents:,} documents "
        f"-> {os.fspath(result.cutoffs_path)}"
    )
    return 0


def _manifest(args: argparse.Namespace) -> int:
    from pipeline.io.fetch import parse_manifest, write_manifest

    try:
        path = write_manifest(args.dir)
    except (FileNotFoundError, NotADirectoryError) as exc:
        return command_error("models manifest", exc)
    entries = parse_manifest(path.read_text(encoding="utf-8"), str(path))
    print(f"{path}: {len(entries)} files")
    return 0
