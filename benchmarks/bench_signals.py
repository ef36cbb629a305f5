"""How fast `rpv2 signals` is, measured as a user runs it, on distinct documents, beside its peers.

All measurements use the distinct documents of benchmarks/corpus.py (real text from ../shared composed into
CCNet-format pages; no document repeats, so no cache is warmer than it would be on a crawl). Rates are per
core: the whole command runs under ``taskset -c 0``, the in-process rows in this one process, and CPU time
(user + sys) is the measure because wall time on a shared machine mostly measures the neighbours; wall time
is printed too. Nothing is quoted: every figure in the output was measured by this run.

(a) the whole command, as a subprocess: ``rpv2 signals docs.jsonl.gz --artifacts A --output s.jsonl.gz
    --minhash-output m.parquet`` on ``--docs`` documents (default 5,000), start-up and I/O included, the best
    CPU time of ``--repeat`` runs;
(b) the inner loop per signal group (document views, the 7 ccnet, 5 content, 9 repetition, 9 natural-language,
    6 line signals, the 3 fastText classifiers, the 6 DSIR importance weights, RPv2's MinHash, the record's
    JSON), CPU time per group over the same documents;
(c) the peers on the same documents: datatrove's GopherQualityFilter, GopherRepetitionFilter, C4QualityFilter
    and FineWebQualityFilter (each in the document's language) and datasketch's MinHash (128 permutations over
    the same 13-word shingles RPv2 hashes);
(d) the split of (b) between model calls (fastText classifiers, DSIR) and rpv2's own code;
(e) linearity: the inner loop's CPU per document on the first 2,000 and on the first ``--linearity-docs``
    (default 20,000) documents, each with fresh signal state, and the larger run per 2,000-document chunk.

    python benchmarks/bench_signals.py                       # everything (a few minutes)
    python benchmarks/bench_signals.py --quick               # (a) and (b) on 2,000 documents
    python benchmarks/bench_signals.py --profile             # + cProfile of the inner loop
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import corpus  # noqa: E402  (benchmarks/corpus.py)

DEFAULT_ARTIFACTS = corpus.SHARED / "groundtruth" / "rpv2" / "artifacts"
DATATROVE_LANGUAGES = {"en": "eng", "de": "deu", "fr": "fra", "es": "spa", "it": "ita"}


def _cpu() -> float:
    return time.process_time()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------------------------- (a)
def whole_command(input_path: Path, artifacts: Path, workdir: Path, repeat: int) -> dict[str, Any]:
    """Run `rpv2 signals` on ``input_path`` ``repeat`` times; the run with the least CPU time."""
    cli = [sys.executable, "-m", "pipeline.cli"]  # what the `rpv2` entry point runs, from this checkout
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    out, minhash = workdir / "signals.jsonl.gz", workdir / "minhash.parquet"
    cmd = [*pin, *cli, "signals", str(input_path), "--artifacts", str(artifacts), "--output", str(out),
           "--minhash-output", str(minhash)]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    runs = []
    for _ in range(repeat):
        cpu0, wall0 = _children_cpu(), time.perf_counter()
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        cpu, wall = _children_cpu() - cpu0, time.perf_counter() - wall0
        if done.returncode != 0:
            raise SystemExit(f"bench_signals: `{' '.join(cmd)}` failed:\n{done.stdout}\n{done.stderr}")
        runs.append((cpu, wall))
    best = min(runs)
    return {"command": " ".join(["rpv2", *cmd[len(pin) + len(cli):]]), "pinned": bool(pin), "runs": runs,
            "cpu": best[0], "wall": best[1], "output_bytes": out.stat().st_size}


# ---------------------------------------------------------------------------------------------- (b)
def _groups() -> list[tuple[str, Any]]:
    from signals import registry

    return [
        ("ccnet (7)", registry.CCNET_SIGNALS), ("content (5)", registry.CONTENT_SIGNALS),
        ("repetition (9)", registry.REPETITION_SIGNALS), ("natural language (9)", registry.NATURAL_LANGUAGE_SIGNALS),
        ("lines (6)", registry.LINE_SIGNALS),
    ]


MODEL_GROUPS = ("classifiers (3, fastText)", "importance (6, DSIR)")


def inner_loop(records: list[dict], artifacts: Path, warmup: list[dict]) -> tuple[dict[str, float], float]:
    """CPU seconds per group over ``records`` (one fresh QualitySignals; ``warmup`` loads every language's
    models first, outside the timing) and the total."""
    from dedup.minhash import RPv2MinHash
    from pipeline.export.rpv2_records import dumps_signals_record, signals_record
    from signals import registry

    computer = registry.QualitySignals(artifacts)
    minhash = RPv2MinHash()
    for record in warmup:
        computer.compute(record)
    plan = [(group, [(name, registry.DOCUMENT_SIGNALS.get(name), registry.WORD_LIST_SIGNALS.get(name))
                     for name in names]) for group, names in _groups()]
    times: dict[str, float] = dict.fromkeys(
        ["document views", *(g for g, _ in plan), *MODEL_GROUPS, "MinHash", "record + JSON"], 0.0)
    lists = computer.word_lists
    total0 = _cpu()
    for row, record in enumerate(records):
        t0 = _cpu()
        doc = computer.document(record)
        t1 = _cpu()
        times["document views"] += t1 - t0
        out = registry.ccnet_signals.ccnet_signals(doc, record)
        t2 = _cpu()
        times["ccnet (7)"] += t2 - t1
        for group, signals in plan[1:]:
            for name, fn, lists_fn in signals:
                out[name] = fn(doc) if lists_fn is None else lists_fn(doc, lists)
            t3 = _cpu()
            times[group] += t3 - t2
            t2 = t3
        scores = computer.classifiers.score(doc) if computer.classifiers else {}
        t3 = _cpu()
        times[MODEL_GROUPS[0]] += t3 - t2
        scores.update(computer.importance.score(doc) if computer.importance else {})
        t4 = _cpu()
        times[MODEL_GROUPS[1]] += t4 - t3
        for name in registry.CLASSIFIER_SIGNALS + registry.IMPORTANCE_SIGNALS:
            out[name] = [(0, doc.num_chars, scores.get(name))]
        minhash.banded_signatures(doc.normalized_words)
        t5 = _cpu()
        times["MinHash"] += t5 - t4
        dumps_signals_record(signals_record(record, out, "bench/docs.jsonl.gz", row, "2023-06"))
        times["record + JSON"] += _cpu() - t5
    return times, _cpu() - total0


def all_signals_cpu(records: list[dict], artifacts: Path, warmup: list[dict], chunk: int = 2000) -> list[float]:
    """CPU seconds of the command's inner loop (45 signals + MinHash + record JSON) without per-group timers,
    per consecutive ``chunk`` documents (the last chunk may be shorter)."""
    from dedup.minhash import RPv2MinHash
    from pipeline.export.rpv2_records import dumps_signals_record, signals_record
    from signals.registry import QualitySignals

    computer = QualitySignals(artifacts)
    minhash = RPv2MinHash()
    for record in warmup:
        computer.compute(record)
    chunks = []
    cpu0 = _cpu()
    for row, record in enumerate(records):
        doc = computer.document(record)
        out = computer.compute_document(doc, record)
        minhash.banded_signatures(doc.normalized_words)
        dumps_signals_record(signals_record(record, out, "bench/docs.jsonl.gz", row, "2023-06"))
        if (row + 1) % chunk == 0 or row + 1 == len(records):
            now = _cpu()
            chunks.append(now - cpu0)
            cpu0 = now
    return chunks


# ---------------------------------------------------------------------------------------------- (c)
def peer_rows(records: list[dict]) -> list[tuple[str, float, str]]:
    """(name, CPU seconds over records, note) for datatrove's filters and datasketch's MinHash."""
    rows: list[tuple[str, float, str]] = []
    try:
        from datatrove.data import Document as DtDocument
        from datatrove.pipeline.filters import (
            C4QualityFilter,
            FineWebQualityFilter,
            GopherQualityFilter,
            GopherRepetitionFilter,
        )
    except ImportError as exc:
        rows.append(("datatrove filters", float("nan"), f"not installed ({exc.name}): pip install datatrove spacy"))
    else:
        for cls in (GopherQualityFilter, GopherRepetitionFilter, C4QualityFilter, FineWebQualityFilter):
            filters = {lang: cls(language=code) for lang, code in DATATROVE_LANGUAGES.items()}
            for flt in filters.values():  # tokenizers load on first use: outside the timing
                flt.filter(DtDocument(text="Warm up the tokenizer. Second sentence here.", id="w", metadata={}))
            cpu0 = _cpu()
            for record in records:
                flt = filters.get(record["language"], filters["en"])
                flt.filter(DtDocument(text=record["raw_content"], id="x", metadata={}))
            rows.append((f"datatrove {cls.__name__}", _cpu() - cpu0, "per document language"))
    try:
        from datasketch import MinHash
    except ImportError:
        rows.append(("datasketch MinHash", float("nan"), "not installed: pip install datasketch"))
    else:
        from signals.document import Document

        words = [Document(r["raw_content"]).normalized_words for r in records]  # outside the timing
        cpu0 = _cpu()
        for w in words:
            m = MinHash(num_perm=128, seed=42)
            m.update_batch([" ".join(w[i:i + 13]).encode("utf-8") for i in range(max(len(w) - 12, 0))])
        rows.append(("datasketch MinHash (128 perm, 13-grams)", _cpu() - cpu0, "signature only, no bands"))
    return rows


def profile_inner_loop(records: list[dict], artifacts: Path, warmup: list[dict], top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    all_signals_cpu(records, artifacts, warmup, chunk=len(records))
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# -------------------------------------------------------------------------------------------- output
def _rate(docs: int, seconds: float) -> str:
    return f"{docs / seconds:10.0f}" if seconds == seconds and seconds > 0 else f"{'-':>10s}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=5000, help="documents for (a), (b), (c)")
    parser.add_argument("--linearity-docs", type=int, default=20000, help="the larger size of (e)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the whole command (best CPU kept)")
    parser.add_argument("--corpus-dir", type=Path, default=Path(tempfile.gettempdir()) / "rpv2-bench-corpus")
    parser.add_argument("--artifacts", type=Path, default=DEFAULT_ARTIFACTS)
    parser.add_argument("--quick", action="store_true", help="2,000 documents; only (a) and (b)")
    parser.add_argument("--no-peers", action="store_true", help="leave out (c)")
    parser.add_argument("--no-linearity", action="store_true", help="leave out (e)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the inner loop")
    parser.add_argument("--profile-top", type=int, default=30)
    args = parser.parse_args(argv)
    if args.quick:
        args.docs, args.no_peers, args.no_linearity, args.repeat = 2000, True, True, 1
    if args.docs < 1 or args.linearity_docs < 2000 or args.repeat < 1:
        parser.error("--docs >= 1, --linearity-docs >= 2000, --repeat >= 1")

    big = max(args.docs, 2000 if args.no_linearity else args.linearity_docs)
    corpus.write_corpus(args.corpus_dir, big)
    input_path = corpus.write_corpus(args.corpus_dir, args.docs)  # a prefix of the big one: same documents
    everything = corpus.read_corpus(corpus.corpus_path(args.corpus_dir, big))
    records = everything[: args.docs]
    # one document per language from beyond the measured ones, to load the models before any timing
    warmup = list({r["language"]: r for r in everything[args.docs:] or everything[-50:]}.values())
    chars = sum(len(r["raw_content"]) for r in records)
    langs: dict[str, int] = {}
    for r in records:
        langs[r["language"]] = langs.get(r["language"], 0) + 1
    print(f"corpus: {len(records)} distinct documents from benchmarks/corpus.py ({input_path}), "
          f"{chars / 1e6:.1f} M characters (mean {chars / len(records):.0f}), languages {dict(sorted(langs.items()))}")
    print(f"python {sys.version.split()[0]}, artifacts {args.artifacts}")

    with tempfile.TemporaryDirectory(prefix="rpv2-bench-signals-") as work:
        whole = whole_command(input_path, args.artifacts, Path(work), args.repeat)
    print(f"\n(a) whole command, {'one core (taskset -c 0)' if whole['pinned'] else 'not pinned (no taskset)'}, "
          f"best of {args.repeat}:\n    {whole['command']}")
    print(f"    {'':34s} {'cpu s':>8s} {'wall s':>8s} {'docs/s cpu':>10s} {'docs/s wall':>11s}")
    print(f"    {'rpv2 signals (45 signals + MinHash)':34s} {whole['cpu']:8.2f} {whole['wall']:8.2f} "
          f"{_rate(args.docs, whole['cpu'])} {_rate(args.docs, whole['wall']):>11s}")
    print("    all runs (cpu s, wall s): " + ", ".join(f"({c:.2f}, {w:.2f})" for c, w in whole["runs"]))

    times, total = inner_loop(records, args.artifacts, warmup)
    print(f"\n(b) inner loop per signal group, in process ({args.docs} documents, CPU):")
    print(f"    {'group':34s} {'cpu s':>8s} {'share':>7s} {'us/doc':>8s}")
    for group, seconds in times.items():
        print(f"    {group:34s} {seconds:8.3f} {100 * seconds / total:6.1f}% {1e6 * seconds / len(records):8.0f}")
    print(f"    {'total (with timer overhead)':34s} {total:8.3f} {100.0:6.1f}% {1e6 * total / len(records):8.0f}"
          f"   = {len(records) / total:.0f} docs/s")

    models = sum(times[g] for g in MODEL_GROUPS)
    print(f"\n(d) model calls (fastText classifiers + DSIR) {models:.3f} s = {100 * models / total:.1f}%; "
          f"rpv2's own code {total - models:.3f} s = {100 * (total - models) / total:.1f}%")

    if not args.no_peers:
        print(f"\n(c) peers on the same {args.docs} documents, in process (CPU):")
        print(f"    {'step':42s} {'cpu s':>8s} {'docs/s':>10s}  note")
        rpv2_rule = sum(times[g] for g, _ in _groups()) + times["document views"]
        print(f"    {'rpv2 36 rule-based + ccnet signals':42s} {rpv2_rule:8.3f} {_rate(args.docs, rpv2_rule)}  "
              "from (b): document views + ccnet + content + repetition + natural language + lines")
        print(f"    {'rpv2 MinHash (RPv2 bands)':42s} {times['MinHash']:8.3f} {_rate(args.docs, times['MinHash'])}"
              "  from (b)")
        for name, seconds, note in peer_rows(records):
            print(f"    {name:42s} {seconds:8.3f} {_rate(args.docs, seconds)}  {note}")

    if not args.no_linearity:
        small = sum(all_signals_cpu(everything[:2000], args.artifacts, warmup))
        chunks = all_signals_cpu(everything[: args.linearity_docs], args.artifacts, warmup)
        per_small, per_large = small / 2000, sum(chunks) / args.linearity_docs
        print("\n(e) linearity of the inner loop (45 signals + MinHash + JSON, CPU per document):")
        print(f"    a run on the first 2,000 documents: {1e6 * per_small:.0f} us/doc; a run on the first "
              f"{args.linearity_docs:,}: {1e6 * per_large:.0f} us/doc (ratio {per_large / per_small:.2f})")
        sizes = [min(2000, args.linearity_docs - 2000 * i) for i in range(len(chunks))]
        per_chunk = [1e6 * c / n for c, n in zip(chunks, sizes, strict=True)]
        print("    that run, per 2,000 documents (us/doc): " + " ".join(f"{x:.0f}" for x in per_chunk)
              + f"; last / first {per_chunk[-1] / per_chunk[0]:.2f}")

    if args.profile:
        print(profile_inner_loop(records, args.artifacts, warmup, args.profile_top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
