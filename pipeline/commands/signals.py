"""`rpv2 signals`: RedPajama-V2 quality signals (and MinHash) for CCNet-format documents.

Reads CCNet's document format (JSON lines, optionally gzip: url, raw_content, source_domain, language,
length, nlines, original_length, original_nlines, language_score, perplexity, bucket, cc_segment, ...)
and writes RPv2's signals record format, one JSON object per input document, as RPv2's worker does
(app/src/core/worker.py): ``{"id", "id_int", "metadata": {cc_segment, cc_net_source, url,
source_domain, language, snapshot_id}, "quality_signals": {name: [[start, end, score], ...]}}``.

Ids: a record that carries its own ``id`` (a non-empty string or an integer) keeps it, and ``id_int`` is
computed from it with RPv2's formula (first 8 bytes of sha1(id), little-endian), so users join our signals
to their documents by their own keys. A record without one gets RPv2's ``<uri_id>/<row>``, where ``row``
is the 0-based line of the record in the input file and ``uri_id`` is the input path from its snapshot
(``YYYY-MM``) onward, found with RPv2's regex; ``--documents-root`` (path relative to a root) or
``--id-prefix`` (given, one input) override it.

Inputs: file paths, directories (every ``.jsonl``, ``.jsonl.gz``, ``.json.gz`` under them, sorted), or an
RPv2 listing (``--listing``: one path per line relative to ``--documents-root``). One input file is one
task; ``--workers N`` processes run the tasks, and each output depends on its input file alone, so the
bytes are the same for any N. Outputs follow RPv2's layout: ``--output DIR`` gets
``<uri_id without extension>.signals.json.gz`` per input (RPv2's quality_signals/), ``--minhash-output
DIR`` ``<...>.minhash.parquet`` (RPv2's minhash/, schema shard_id, id, id_int, signature_sim1.0 .. 0.7,
:class:`dedup.minhash.RPv2MinHash`). One input file with ``--output FILE.jsonl[.gz]`` writes that file.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pipeline.commands import command_error
from pipeline.dataset.ids import snapshot_of, uri_id_of
from pipeline.export.rpv2_records import dumps_signals_record as _dumps
from pipeline.export.rpv2_records import signals_record

HELP = "RedPajama-V2 quality signals (+ MinHash) for CCNet-format JSON-lines documents"

log = logging.getLogger("rpv2.signals")

# what a directory input contributes (CCNet's and RPv2's documents files)
INPUT_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz")
# an --output with one of these names a file: the single-input form
_FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".json", ".gz")
SIGNALS_SUFFIX = ".signals.json.gz"  # RPv2 Worker.shard_pattern_signals
MINHASH_SUFFIX = ".minhash.parquet"  # RPv2 Worker.shard_pattern_minhash
# zlib level 4: on the signals lines, half the CPU of level 6 (the default) for 11% larger files, and a
# fifth of level 9's (RPv2's gzip.open default) for 14% larger ones (benchmarks/corpus.py documents)
GZIP_LEVEL = 4
# what is counted and named per file in the summary: lines skipped, files cut short, ids replaced
COUNT_KEYS = ("bad_json_lines", "records_without_text", "unreadable_input_tail", "unreadable_input", "ids_not_usable")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT",
        help="CCNet-format documents: .jsonl, .jsonl.gz or .json.gz files (local paths or URIs) or local "
             "directories (every such file under them, sorted)",
    )
    parser.add_argument("--listing", default=None,
                        help="RPv2 listing file: one input path per line, relative to --documents-root")
    parser.add_argument("--artifacts", required=True, help="RPv2-layout artifacts directory")
    parser.add_argument(
        "--output", required=True,
        help="directory: <uri_id without extension>.signals.json.gz per input (RPv2's layout); "
             "or, for one input file, a file .jsonl / .jsonl.gz / .json.gz",
    )
    parser.add_argument(
        "--minhash-output", default=None,
        help="also write RPv2's minhash parquet: a directory (<...>.minhash.parquet per input) or, with a "
             "file --output, one .parquet file",
    )
    ids = parser.add_mutually_exclusive_group()
    ids.add_argument(
        "--id-prefix", default=None,
        help="the uri_id of the one input (generated ids are <uri_id>/<row>), e.g. 2023-06/0000/en_head.json.gz",
    )
    ids.add_argument(
        "--documents-root", default=None,
        help="uri_id = the input path relative to this directory (as RPv2's listings)",
    )
    parser.add_argument("--snapshot-id", default=None, help="metadata snapshot_id (default: from the uri_id)")
    parser.add_argument(
        "--hash-mode", default="auto", choices=("auto", "stable", "rpv2"),
        help="DSIR feature hash (auto: from the artifacts; rpv2: RPv2's seed-42 hash(), emulated)",
    )
    parser.add_argument("--no-models", action="store_true", help="skip the classifier and DSIR signals (null)")
    parser.add_argument(
        "--contamination", default=None,
        help="benchmark n-gram index (rpv2 contamination build; path or URI): adds contam_<name>_frac, "
             "contam_<name>_span and contam_max_overlap to quality_signals as [[0, len, score]]",
    )
    parser.add_argument("--max-docs", type=int, default=-1, help="stop after this many documents per input file")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes, one input file per task (output bytes do not depend on it)")


class SignalsConfigError(ValueError):
    """A command line that cannot work (missing inputs, an --output that does not fit them, ...)."""


@dataclass(frozen=True)
class SignalsJob:
    """One input file and where its outputs go."""

    input: str
    uri_id: str
    output: str
    minhash_output: str | None
    size: int | None = None  # bytes of a local input (the progress total); None for a URI


@dataclass
class FileReport:
    """What one input file gave: written documents and every other line counted by reason."""

    input: str
    output: str
    counts: Counter[str] = field(default_factory=Counter)
    num_chars: int = 0
    minhash_rows: int = 0
    missing_artifacts: Counter[str] = field(default_factory=Counter)
    error: str | None = None


def derive_uri_id(input_path: str, id_prefix: str | None = None, documents_root: str | None = None,
                  directory: str | None = None) -> str:
    """RPv2's ``uri_id`` of an input file (the part of a generated document id before the row): the
    given prefix, else the path relative to ``documents_root``, else the path from its snapshot on (RPv2's
    regex), else the path relative to the ``directory`` input it was found in, else its name."""
    if id_prefix:
        return id_prefix.strip("/")
    if documents_root:
        return Path(os.path.relpath(input_path, documents_root)).as_posix()
    uri_id = uri_id_of(Path(input_path).as_posix())
    if uri_id:
        return uri_id
    if directory:
        return Path(os.path.relpath(input_path, directory)).as_posix()
    return Path(input_path).name


def shard_stem(uri_id: str) -> str:
    """The uri_id without its documents extension, as RPv2 names outputs (``uri_id.split(".")[0]``, which
    is the same for RPv2's names; here a dot in a directory name is kept)."""
    head, _, name = uri_id.rpartition("/")
    for suffix in (".jsonl.gz", ".json.gz", ".jsonl", ".json", ".gz"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return f"{head}/{name}" if head else name


def _is_uri(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def _join(root: str, rel: str) -> str:
    return f"{root.rstrip('/')}/{rel}" if _is_uri(root) else os.path.join(_local(root), rel)


def _directory_files(directory: str) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [os.path.join(dirpath, name) for name in filenames
                  if name.endswith(INPUT_SUFFIXES) and not name.startswith(".")]
    return sorted(found, key=lambda p: Path(os.path.relpath(p, directory)).as_posix())


def _read_listing(listing: str) -> list[str]:
    """RPv2's listing: one relative path per line; blank lines and ``#`` comments are skipped."""
    with _open_text(listing, "r") as handle:
        entries = [line.strip() for line in handle]
    return [entry.lstrip("/") for entry in entries if entry and not entry.startswith("#")]


def _inside(path: str, directory: str) -> bool:
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def plan_jobs(args: argparse.Namespace) -> tuple[list[SignalsJob], bool]:
    """(the jobs, whether --output names one file) of the command line; SignalsConfigError naming the
    first problem, before any work."""
    if not args.inputs and not args.listing:
        raise SignalsConfigError("no input: give INPUT files or directories, or --listing with --documents-root")
    if args.listing and not args.documents_root:
        raise SignalsConfigError("--listing needs --documents-root (the directory its paths are relative to)")
    if args.workers < 1:
        raise SignalsConfigError(f"--workers must be at least 1, not {args.workers}")
    if not _is_uri(args.artifacts) and not os.path.isdir(_local(args.artifacts)):
        raise SignalsConfigError(f"--artifacts {args.artifacts}: not a directory")
    found: list[tuple[str, str | None, bool]] = []  # (path, directory it was found in, given as a file)
    missing: list[str] = []
    for given in args.inputs:
        if _is_uri(given):
            found.append((given, None, True))
        elif os.path.isdir(_local(given)):
            files = _directory_files(_local(given))
            if not files:
                raise SignalsConfigError(f"{given}: a directory without {', '.join(INPUT_SUFFIXES)} files")
            if not _is_uri(args.output) and _inside(_local(args.output), _local(given)):
                raise SignalsConfigError(f"--output {args.output} lies inside the input directory {given}")
            found += [(path, _local(given), False) for path in files]
        elif os.path.isfile(_local(given)):
            found.append((_local(given), None, True))
        else:
            missing.append(given)
    if args.listing:
        if not _is_uri(args.listing) and not os.path.isfile(_local(args.listing)):
            raise SignalsConfigError(f"--listing {args.listing}: no such file")
        entries = _read_listing(args.listing)
        if not entries:
            raise SignalsConfigError(f"--listing {args.listing} lists no files")
        for entry in entries:
            path = _join(args.documents_root, entry)
            if not _is_uri(path) and not os.path.isfile(path):
                missing.append(path)
            found.append((path, None, False))
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise SignalsConfigError(f"input not found: {missing[0]}{more}")
    single_file = len(found) == 1 and found[0][2]
    file_output = args.output.endswith(_FILE_SUFFIXES) and not os.path.isdir(_local(args.output))
    if file_output and not single_file:
        raise SignalsConfigError(
            f"--output {args.output} names a file, but there are {len(found)} input files (or a directory or "
            "listing): give a directory, which gets one <uri_id>.signals.json.gz per input"
        )
    if args.id_prefix and len(found) != 1:
        raise SignalsConfigError(f"--id-prefix names the uri_id of one input, and there are {len(found)}")
    if not file_output and not _is_uri(args.output) and os.path.exists(_local(args.output)) \
            and not os.path.isdir(_local(args.output)):
        raise SignalsConfigError(f"--output {args.output} is a file; give a directory (one output per input)")
    if args.minhash_output and not file_output:
        if args.minhash_output.endswith(".parquet") or (
                not _is_uri(args.minhash_output) and os.path.isfile(_local(args.minhash_output))):
            raise SignalsConfigError(
                f"--minhash-output {args.minhash_output} names a file; with a directory --output give a "
                "directory (one <uri_id>.minhash.parquet per input)"
            )
    if args.documents_root and not _is_uri(args.documents_root):
        outside = [path for path, _, _ in found if not _inside(path, _local(args.documents_root))]
        if outside:
            raise SignalsConfigError(f"input {outside[0]} is not under --documents-root {args.documents_root}")
    jobs: list[SignalsJob] = []
    owner: dict[str, str] = {}
    for path, directory, _ in found:
        uri_id = derive_uri_id(path, args.id_prefix, args.documents_root, directory)
        size = None if _is_uri(path) else os.path.getsize(_local(path))
        if file_output:
            jobs.append(SignalsJob(path, uri_id, args.output, args.minhash_output, size))
            continue
        stem = shard_stem(uri_id)
        if stem.startswith("/") or ".." in stem.split("/"):
            raise SignalsConfigError(f"input {path}: its uri_id {uri_id!r} does not name a path under --output")
        out = _join(args.output, stem + SIGNALS_SUFFIX)
        if out in owner:
            raise SignalsConfigError(f"inputs {owner[out]} and {path} would both write {out}")
        owner[out] = path
        minhash = _join(args.minhash_output, stem + MINHASH_SUFFIX) if args.minhash_output else None
        jobs.append(SignalsJob(path, uri_id, out, minhash, size))
    inputs = {os.path.realpath(job.input) for job in jobs if not _is_uri(job.input)}
    for job in jobs:
        for written in (job.output, job.minhash_output):
            if written and not _is_uri(written) and os.path.realpath(_local(written)) in inputs:
                raise SignalsConfigError(f"output {written} is an input: it would be overwritten")
    return jobs, file_output


def _open_text(path: str, mode: str) -> IO[str]:
    if _is_uri(path):
        import smart_open

        return smart_open.open(path, mode, encoding="utf-8")
    local = _local(path)
    if local.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(local, mode[0] + "b"), encoding="utf-8", errors="surrogateescape")
    return open(local, mode, encoding="utf-8", errors="surrogateescape")


@contextlib.contextmanager
def _open_output(path: str, stack_path: str) -> Iterator[IO[str]]:
    """The signals writer of ``stack_path`` (the temporary name of ``path``, or ``path``): a local .gz
    gets a gzip stream without file name or timestamp in its header and at level GZIP_LEVEL, so the same
    input gives the same bytes whatever the temporary name, the time or the worker."""
    if _is_uri(stack_path) or not path.endswith(".gz"):
        with _open_text(stack_path, "w") as handle:
            yield handle
        return
    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(open(_local(stack_path), "wb"))
        gz = stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                               compresslevel=GZIP_LEVEL))
        yield stack.enter_context(io.TextIOWrapper(gz, encoding="utf-8", errors="surrogateescape"))


# -- one input file --------------------------------------------------------------------------------

_COMPUTER: Any = None  # the worker process's QualitySignals (models and lists load once per process)
_SETTINGS: dict[str, Any] = {}
_CONTAMINATION: Any = None  # the worker process's contamination matcher (index loaded once per process)
_BYTES_READ: Any = None  # input bytes read by every worker: a multiprocessing.Value the command's progress polls


def _init_worker(settings: dict[str, Any], bytes_read: Any = None) -> None:
    """Load the signal computer (and MinHash) once per process, before its first file."""
    global _COMPUTER, _SETTINGS, _CONTAMINATION, _BYTES_READ
    from signals.registry import QualitySignals

    _SETTINGS = settings
    _BYTES_READ = bytes_read
    _CONTAMINATION = None
    if settings.get("contamination"):
        from pipeline.contamination.index import load_index

        _CONTAMINATION = load_index(settings["contamination"]).matcher
    _COMPUTER = QualitySignals(settings["artifacts"], hash_mode=settings["hash_mode"],
                               with_models=settings["with_models"])


def _record_id(record: dict[str, Any]) -> str | None:
    """The record's own id, when it has a usable one (a non-empty string, or an integer)."""
    own = record.get("id")
    if own.__class__ is str:
        return own or None
    if own.__class__ is int:
        return str(own)
    return None


class _BytesRead:
    """Adds a file's read offset to the shared progress count as the file is read, every 1024 lines (a
    lock per 1024 documents, nothing per document), and the rest of the file when it is done."""

    def __init__(self, shared: Any) -> None:
        self.shared = shared
        self.reported = 0

    def add(self, n: int) -> None:
        if self.shared is not None and n > 0:
            with self.shared.get_lock():
                self.shared.value += n
            self.reported += n

    def to(self, position: Callable[[], int] | None) -> None:
        if position is not None:
            try:
                self.add(position() - self.reported)
            except (OSError, ValueError):
                pass


def _input_position(handle: Any) -> Callable[[], int] | None:
    """The offset in the input file as stored (compressed, for gzip) of a text handle, if it has one."""
    buffer = getattr(handle, "buffer", None)
    raw = getattr(buffer, "fileobj", None) or buffer
    return getattr(raw, "tell", None)


def process_file(job: SignalsJob) -> FileReport:
    """Signals (and MinHash rows) of one input file, written to the job's outputs; every line counted."""
    progress = _BytesRead(_BYTES_READ)
    try:
        return _process_file(job, progress)
    except Exception as exc:  # noqa: BLE001 - one bad input (unopenable, unwritable output) must not stop the rest
        log.error("%s: failed: %s: %s", job.input, type(exc).__name__, exc)
        report = FileReport(job.input, job.output, error=f"{type(exc).__name__}: {exc}")
        report.counts["unreadable_input"] += 1
        return report
    finally:
        progress.add((job.size or 0) - progress.reported)  # the whole file is done, however it ended


def _process_file(job: SignalsJob, progress: _BytesRead) -> FileReport:
    from pipeline.dataset.ids import document_id_int

    computer, settings = _COMPUTER, _SETTINGS
    missing_before = Counter(computer.missing_artifacts)
    minhasher = None
    if job.minhash_output:
        from dedup.minhash import RPv2MinHash

        minhasher = RPv2MinHash()
    report = FileReport(job.input, job.output)
    counts = report.counts
    uri_id = job.uri_id
    snapshot_id = settings["snapshot_id"] or snapshot_of(uri_id)
    max_docs = settings["max_docs"]
    minhash_rows: list[dict[str, Any]] = []
    tmp_path = None
    if not _is_uri(job.output):
        out_local = _local(job.output)
        Path(out_local).parent.mkdir(parents=True, exist_ok=True)
        tmp_path = str(Path(out_local).with_name(f".{Path(out_local).name}.tmp-{os.getpid()}"))
    with _open_text(job.input, "r") as src, _open_output(job.output, tmp_path or job.output) as dst:
        position = _input_position(src) if progress.shared is not None else None
        row = -1
        while True:
            try:
                line = src.readline()
            except (OSError, EOFError, UnicodeDecodeError) as exc:  # corrupt gzip / truncated file
                counts["unreadable_input_tail"] += 1
                log.error("%s: stopped reading after row %d: %s: %s", job.input, row, type(exc).__name__, exc)
                break
            if not line:
                break
            row += 1
            if not row & 1023:
                progress.to(position)
            if 0 < max_docs <= counts["documents_written"]:
                break
            counts["lines_read"] += 1
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                counts["bad_json_lines"] += 1
                log.error("%s/%d: skipped: %s", uri_id, row, exc)
                continue
            if not isinstance(record.get("raw_content"), str):
                counts["records_without_text"] += 1
                log.error("%s/%d: skipped: raw_content missing or not a string", uri_id, row)
                continue
            doc = computer.document(record)  # the views shared by the signals and the MinHash
            report.num_chars += doc.num_chars
            quality_signals = computer.compute_document(doc, record)
            if _CONTAMINATION is not None:  # document-level, RPv2's span format: [[0, len(text), score]]
                contamination = _CONTAMINATION.annotate_content(doc.normalized_content)
                quality_signals.update({k: [[0, doc.num_chars, int(v) if k.endswith("_span") else v]]
                                        for k, v in contamination.items()})
            out = signals_record(record, quality_signals, uri_id, row, snapshot_id)
            own_id = _record_id(record)
            if own_id is not None:
                out["id"], out["id_int"] = own_id, document_id_int(own_id)
                counts["own_ids"] += 1
            elif record.get("id") is not None:  # an id we cannot use (empty, a float, an object): RPv2's id
                counts["ids_not_usable"] += 1
            dst.write(_dumps(out))
            dst.write("\n")
            counts["documents_written"] += 1
            if minhasher is not None:
                bands = minhasher.banded_signatures(doc.normalized_words)
                minhash_rows.append({"shard_id": uri_id, "id": out["id"], "id_int": out["id_int"], **bands})
    if tmp_path:
        os.replace(tmp_path, _local(job.output))
    if minhasher is not None and job.minhash_output:
        from dedup.minhash import write_rpv2_minhash_parquet

        report.minhash_rows = write_rpv2_minhash_parquet(job.minhash_output, minhash_rows)
    report.missing_artifacts = computer.missing_artifacts - missing_before
    return report


# -- the command -----------------------------------------------------------------------------------


def _context() -> Any:
    import multiprocessing

    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)


@contextlib.contextmanager
def _job_runner(settings: dict[str, Any], workers: int, num_jobs: int, bytes_read: Any = None
                ) -> Iterator[Callable[[list[SignalsJob]], Iterator[FileReport]]]:
    """A function giving the reports of jobs in their order, computed by ``workers`` processes (1: this
    one); the input bytes they read are added to ``bytes_read`` (a shared Value) as they go. The worker
    processes start here, before the caller starts its progress thread (no fork while a thread runs)."""
    if workers == 1 or num_jobs == 1:
        _init_worker(settings, bytes_read)
        yield lambda jobs: (process_file(job) for job in jobs)
        return
    with _context().Pool(min(workers, num_jobs), initializer=_init_worker, initargs=(settings, bytes_read)) as pool:
        yield lambda jobs: pool.imap(process_file, jobs, chunksize=1)


def _print_summary(reports: list[FileReport], file_output: bool, args: argparse.Namespace,
                   elapsed: float) -> None:
    total: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    for report in reports:
        total.update(report.counts)
        missing.update(report.missing_artifacts)
    written = total["documents_written"]
    if file_output:
        job = reports[0]
        print(f"rpv2 signals: {written} documents from {job.input} -> {job.output}")
    else:
        print(f"rpv2 signals: {written} documents from {len(reports)} input files -> {args.output}/")
    generated = written - total["own_ids"]
    print(f"  lines read: {total['lines_read']}; ids: {total['own_ids']} the records' own, {generated} generated "
          "(<uri_id>/<row>)")
    for key in COUNT_KEYS:
        if total[key]:
            print(f"  {key}: {total[key]}")
    if len(reports) > 1:
        for report in reports:
            bad = [f"{key} {report.counts[key]}" for key in COUNT_KEYS if report.counts[key]]
            if bad or report.error:
                print(f"  {report.input}: {', '.join(bad)}" + (f" ({report.error})" if report.error else ""))
    elif reports[0].error:
        print(f"  error: {reports[0].error}")
    for key, value in sorted(missing.items()):
        print(f"  missing artifact {key}: {value} documents (signal null)")
    if args.minhash_output:
        rows = sum(report.minhash_rows for report in reports)
        print(f"  minhash: {rows} rows -> {args.minhash_output}")
    chars = sum(report.num_chars for report in reports)
    print(f"  {written / elapsed:.0f} docs/s, {chars / elapsed / 1e6:.2f} M chars/s (wall, {args.workers} worker{'s' if args.workers > 1 else ''})")


def main(args: argparse.Namespace) -> int:
    from pipeline.progress import BYTES, watch

    try:
        jobs, file_output = plan_jobs(args)
    except (SignalsConfigError, OSError) as exc:
        return command_error("signals", exc)
    settings = {"artifacts": args.artifacts, "hash_mode": args.hash_mode, "with_models": not args.no_models,
                "snapshot_id": args.snapshot_id, "max_docs": args.max_docs}
    if args.contamination:
        from pipeline.contamination.index import IndexLoadError, local_index_dir, read_manifest
        from pipeline.io.fetch import FetchError

        try:  # a URI is fetched once here (checked against its SHA256SUMS); the workers read the local copy
            settings["contamination"] = local_index_dir(args.contamination)
            read_manifest(settings["contamination"])
        except (IndexLoadError, FetchError) as exc:
            return command_error("signals", f"--contamination: {exc}")
    started = time.perf_counter()
    reports: list[FileReport] = []
    if all(job.size is not None for job in jobs):  # local inputs: progress in input bytes, within a file too
        bytes_read = _context().Value("q", 0)
        count, total, unit = (lambda: bytes_read.value), sum(job.size or 0 for job in jobs), BYTES
    else:
        bytes_read, count, total, unit = None, (lambda: len(reports)), len(jobs), "files"
    with _job_runner(settings, args.workers, len(jobs), bytes_read) as run_jobs, \
            watch(count, total, unit, desc="signals"):
        for report in run_jobs(jobs):
            reports.append(report)
    _print_summary(reports, file_output, args, max(time.perf_counter() - started, 1e-9))
    failed = any(report.counts["unreadable_input_tail"] or report.error for report in reports)
    return 1 if failed else 0
