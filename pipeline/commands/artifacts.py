"""`rpv2 artifacts build`: build RPv2's artifacts layout (word lists, UT1 index, classifiers, DSIR).

Every source is a local path, a ``file://`` URI or a URL (http(s), s3 via smart_open). The output dir
is laid out as RPv2's ``--artifacts_dir`` (plus ``stop_words/``), so `rpv2 signals --artifacts DIR`
and RPv2's own pipeline both read it. What each step reproduces is documented in
signals/artifacts_build.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

HELP = "build the artifacts dir (LDNOOBW, UT1, stop words, fastText classifiers, DSIR counts) from sources"

LDNOOBW_URL = "https://raw.githubusercontent.com/LDNOOBW/List-of-Dirty-Naughty-Obscene-and-Otherwise-Bad-Words/master"
UT1_URL = "http://dsi.ut-capitole.fr/blacklists/download/blacklists.tar.gz"
STOPWORDS_URL = "https://raw.githubusercontent.com/6/stopwords-json/master/dist"
STEPS = ("bad_words", "ut1", "stop_words", "classifiers", "dsir")

log = logging.getLogger("rpv2.artifacts")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="artifacts_command", metavar="ACTION", required=True)
    build = sub.add_parser("build", help=HELP, description=HELP)
    build.add_argument("--output", required=True, help="artifacts dir to write (RPv2 layout)")
    from pipeline.config import default_value

    build.add_argument("--langs", nargs="+", default=list(default_value("languages") or ()),
                       help="languages (default: configs/default.yaml's languages, %(default)s)")
    build.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS), help="steps to run (default: all)")
    build.add_argument("--ldnoobw", default=LDNOOBW_URL, help="dir or URL prefix holding LDNOOBW <lang> files")
    build.add_argument("--ut1", default=UT1_URL, help="UT1 blacklists.tar.gz (URL or path) or extracted dir")
    build.add_argument(
        "--ut1-categories", nargs="+", default=None,
        help="UT1 categories to index (default: RPv2's 13 from configs/rp_v2.0.conf)",
    )
    build.add_argument("--stopwords", default=STOPWORDS_URL, help="dir or URL prefix holding <lang>.json lists")
    build.add_argument(
        "--corpora", default=None,
        help="reference corpora dir, RPv2 layout <lang>/<dataset>/*.jsonl[.gz] with a 'text' field; "
        "datasets: ccnet (source) and wikipedia, openwebtext, books, wikiref (targets)",
    )
    build.add_argument("--dsir-hash", choices=("stable", "rpv2"), default="stable",
                       help="gram hash for DSIR counts: stable (ours) or rpv2 (RPv2's seed-42 hash(), emulated) (default: %(default)s)")
    build.add_argument("--dsir-buckets", type=int, default=10_000)
    build.add_argument("--dsir-num-samples", type=int, default=-1, help="max docs per corpus (default: all)")
    build.add_argument(
        "--classifier-samples", default="1200",
        help="samples_per_class: N, or per language 'en=1200,de=300' (default: %(default)s)",
    )
    build.add_argument(
        "--train-arg", action="append", default=[], metavar="[LANG:]KEY=VALUE",
        help="extra fasttext.train_supervised argument, e.g. en:minCount=3 (repeatable)",
    )
    build.add_argument("--thread", type=int, default=1, help="fastText threads (1 = deterministic)")
    build.add_argument("--seed", type=int, default=42, help="seed of the training-file shuffle")


def _parse_per_lang_int(text: str, langs: list[str]) -> dict[str, int]:
    if "=" not in text:
        return dict.fromkeys(langs, int(text))
    out: dict[str, int] = {}
    for item in text.split(","):
        lang, _, value = item.partition("=")
        out[lang.strip()] = int(value)
    return out


def _parse_value(value: str) -> object:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def _train_args(items: list[str], lang: str) -> tuple[tuple[str, object], ...]:
    args: dict[str, object] = {}
    for item in items:
        scope, _, assignment = item.rpartition(":")
        if scope and scope != lang:
            continue
        key, _, value = assignment.partition("=")
        args[key.strip()] = _parse_value(value.strip())
    return tuple(sorted(args.items()))


def _dataset_file(corpora: Path, lang: str, dataset: str) -> Path | None:
    files = sorted((corpora / lang / dataset).glob("*.jsonl*"))
    if len(files) > 1:
        log.warning("%s/%s: several files, using %s", lang, dataset, files[0].name)
    return files[0] if files else None


def _classifier_specs(corpora: Path, lang: str, samples: int, train_args: tuple) -> list:
    """RPv2 prep_artifacts.py: en -> palm (wikipedia+books+openwebtext vs ccnet), others -> wikipedia;
    plus wikiref (label ``wiki``, as RPv1's model) where a wikiref corpus exists."""
    from signals.artifacts_build import ClassifierSpec

    ccnet = _dataset_file(corpora, lang, "ccnet")
    if ccnet is None:
        return []
    specs = []
    if lang == "en":
        targets = [_dataset_file(corpora, lang, d) for d in ("wikipedia", "books", "openwebtext")]
        targets = [t for t in targets if t is not None]
        if targets:
            specs.append(ClassifierSpec(lang, "palm", tuple(map(str, targets)), str(ccnet), samples, None, train_args))
    else:
        wiki = _dataset_file(corpora, lang, "wikipedia")
        if wiki is not None:
            specs.append(ClassifierSpec(lang, "wikipedia", (str(wiki),), str(ccnet), samples, None, train_args))
    wikiref = _dataset_file(corpora, lang, "wikiref")
    if wikiref is not None:
        specs.append(ClassifierSpec(lang, "wikiref", (str(wikiref),), str(ccnet), samples, "wiki", train_args))
    return specs


def run_build(args: argparse.Namespace) -> dict:
    """Run the requested steps; returns a summary dict (also written to ``<output>/BUILD_INFO.json``), then
    records every file of the dir in ``<output>/SHA256SUMS``."""
    from signals import artifacts_build as ab

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"output": str(out), "steps": {}, "failures": []}
    steps = set(args.steps)

    def attempt(step: str, what: str, func, *a, **kw):
        try:
            return func(*a, **kw)
        except Exception as exc:  # one bad source must not stop the other artifacts
            summary["failures"].append({"step": step, "what": what, "error": f"{type(exc).__name__}: {exc}"})
            log.error("%s %s failed: %s", step, what, exc)
            return None

    if "bad_words" in steps:
        built = [lang for lang in args.langs
                 if attempt("bad_words", lang, ab.build_bad_words, ab.join_source(args.ldnoobw, lang), out, lang)]
        summary["steps"]["bad_words"] = built
    if "stop_words" in steps:
        built = [lang for lang in args.langs
                 if attempt("stop_words", lang, ab.build_stop_words,
                            ab.join_source(args.stopwords, f"{lang}.json"), out, lang)]
        summary["steps"]["stop_words"] = built
    if "ut1" in steps:
        categories = args.ut1_categories or list(ab.RPV2_UT1_CATEGORIES)
        report = attempt("ut1", str(args.ut1), ab.build_ut1_index, args.ut1, out, categories)
        if report is not None:
            summary["steps"]["ut1"] = {
                "categories_read": report.categories_read,
                "categories_missing": report.categories_missing,
                "domains": report.domains,
            }
    corpora = Path(args.corpora) if args.corpora else None
    if corpora is None and steps & {"classifiers", "dsir"}:
        log.warning("no --corpora: classifiers and DSIR counts are not built")
    if corpora is not None and "dsir" in steps:
        built = []
        for lang in args.langs:
            for dataset_dir in sorted(p for p in (corpora / lang).glob("*") if p.is_dir()):
                source = _dataset_file(corpora, lang, dataset_dir.name)
                if source is None or dataset_dir.name == "wikiref":  # RPv2 has no wikiref importance
                    continue
                if attempt("dsir", f"{lang}/{dataset_dir.name}", ab.build_dsir, source, out, lang,
                           dataset_dir.name, args.dsir_buckets, args.dsir_num_samples, args.dsir_hash):
                    built.append(f"{lang}/{dataset_dir.name}")
        summary["steps"]["dsir"] = {"built": built, "hash_mode": args.dsir_hash}
    if corpora is not None and "classifiers" in steps:
        samples = _parse_per_lang_int(args.classifier_samples, args.langs)
        built = []
        for lang in args.langs:
            specs = _classifier_specs(corpora, lang, samples.get(lang, 1200), _train_args(args.train_arg, lang))
            for spec in specs:
                if attempt("classifiers", f"{lang}/{spec.name}", ab.build_classifier, spec, out,
                           seed=args.seed, thread=args.thread):
                    built.append(f"{lang}/{spec.name}")
        summary["steps"]["classifiers"] = built
    (out / "BUILD_INFO.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    from pipeline.io.fetch import write_manifest

    write_manifest(out)  # SHA256SUMS: the dir can be uploaded and given to `rpv2 run --artifacts` by URI
    return summary


def main(args: argparse.Namespace) -> int:
    if args.artifacts_command != "build":
        return 2
    summary = run_build(args)
    for step, result in summary["steps"].items():
        print(f"{step:12s} {json.dumps(result)}")
    for failure in summary["failures"]:
        print(f"FAILED {failure['step']} {failure['what']}: {failure['error']}", file=sys.stderr)
    return 1 if summary["failures"] else 0
