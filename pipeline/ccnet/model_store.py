"""Models for the CCNet stage: download the published ones, build and calibrate our own.

* ``download_models``: the official fastText ``lid.176.bin`` and CCNet's per-language
  ``{lang}.sp.model`` / ``{lang}.arpa.bin`` into a cache directory, resuming interrupted downloads
  (HTTP Range on a ``.part`` file), verifying sha256 (from configs/models.yaml where published,
  otherwise the size the server announced, then a recorded ``.sha256`` sidecar) with a progress bar.
* ``build_lm``: a SentencePiece unigram model and a KenLM n-gram model (``lmplz`` then
  ``build_binary``) trained on CCNet-normalized, SentencePiece-tokenized text, the recipe of CCNet's
  published models, for languages or domains without one.
* Both record the LMs they write in the models dir's ``SHA256SUMS`` (pipeline/io/fetch.py), so the
  directory can be uploaded and given to ``rpv2 run --models-dir`` by URI: workers fetch the files and
  check them against it.
* ``calibrate``: p30/p60 perplexity cutoffs of a sample under a model, written into a cutoffs YAML.
"""

from __future__ import annotations

import dataclasses
import gzip
import http.client
import io
import json
import logging
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from pipeline.ccnet.buckets import compute_cutoffs, write_cutoffs
from pipeline.ccnet.text_normalization import normalize
from pipeline.config import CONFIG_DIR
from pipeline.io.fetch import default_cache_dir, sha256_file, update_manifest
from pipeline.io.remote import RetryPolicy

log = logging.getLogger(__name__)

MODELS_CONFIG_PATH = CONFIG_DIR / "models.yaml"
CHUNK_SIZE = 1 << 20

# Used when configs/models.yaml is not beside the code (e.g. a wheel install).
_FALLBACK_CONFIG: dict = {
    "lid": {
        "file": "lid.176.bin",
        "url": "https://dl.fbaipublicfiles.com/fasttext/supervised-models/lid.176.bin",
        "size": 131266198,
        "sha256": "7e69ec5451bc261cc7844e49e4792a85d7f09c06789ec800fc4a44aec362764e",
    },
    "ccnet_lm": {
        "base_url": "http://dl.fbaipublicfiles.com/cc_net/lm/",
        "files": ["{lang}.sp.model", "{lang}.arpa.bin"],
        "sha256": {},
    },
}


# --------------------------------------------------------------------------------------------
# cache and config
# --------------------------------------------------------------------------------------------


def lid_model_cache_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    return Path(cache_dir or default_cache_dir()) / "lid.176.bin"


def lm_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where downloaded CCNet LMs live; ``pipeline.ccnet.perplexity.LanguageModels`` reads it."""
    return Path(cache_dir or default_cache_dir()) / "lm"


def load_models_config(path: str | os.PathLike[str] | None = None) -> dict:
    path = Path(path) if path else MODELS_CONFIG_PATH
    if not path.is_file():
        return json.loads(json.dumps(_FALLBACK_CONFIG))
    import yaml

    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


# --------------------------------------------------------------------------------------------
# download with resume and verification
# --------------------------------------------------------------------------------------------


class DownloadError(RuntimeError):
    """A file could not be downloaded (HTTP error, network failure after retries)."""


class ChecksumMismatch(DownloadError):
    """A downloaded file does not have the expected sha256 or size."""


@dataclasses.dataclass(frozen=True)
class DownloadResult:
    path: Path
    sha256: str
    size: int
    status: str  # "downloaded", "resumed", "cached"


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def read_sidecar(path: Path) -> str | None:
    side = sidecar_path(path)
    if not side.is_file():
        return None
    text = side.read_text(encoding="utf-8").split()
    return text[0].lower() if text else None


def write_sidecar(path: Path, sha256: str) -> None:
    sidecar_path(path).write_text(f"{sha256}  {path.name}\n", encoding="utf-8")


def _verify_existing(dest: Path, expected_sha256: str | None, expected_size: int | None) -> str | None:
    """sha256 of ``dest`` if it passes every check we can make, else None."""
    if expected_size is not None and dest.stat().st_size != expected_size:
        return None
    actual = sha256_file(dest)
    known = expected_sha256 or read_sidecar(dest)
    if known and actual != known.lower():
        return None
    return actual


def _total_size(response, offset: int) -> int | None:
    content_range = response.headers.get("Content-Range")  # "bytes 100-999/1000"
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        if total.isdigit():
            return int(total)
    length = response.headers.get("Content-Length")
    if length and length.isdigit():
        return int(length) + offset
    return None


def _fetch_into_part(url: str, part: Path, timeout: float, progress: bool, desc: str) -> tuple[int | None, bool]:
    """One HTTP attempt, appending to ``part`` from its current size. Returns (total size, resumed)."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "rpv2-models/1"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the part file already holds the whole body
            total = _total_size(exc, 0)
            return (total if total is not None else offset), True
        raise
    with response:
        resumed = offset > 0 and response.status == 206
        if offset and not resumed:  # server ignored the Range header: start over
            offset = 0
        total = _total_size(response, offset)
        from tqdm import tqdm

        with (
            open(part, "ab" if resumed else "wb") as out,
            tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                desc=desc, disable=not progress, leave=False,
            ) as bar,
        ):
            while True:
                chunk = response.read(CHUNK_SIZE)
                if not chunk:
                    break
                out.write(chunk)
                bar.update(len(chunk))
    return total, resumed


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    retry: RetryPolicy | None = None,
    progress: bool = True,
) -> DownloadResult:
    """Download ``url`` to ``dest`` with resume, size and checksum verification.

    ``retry`` (default: the run config's, configs/default.yaml ``retry:``) gives the attempts per call,
    the backoff between them and the socket timeout: the same policy as CommonCrawl reads.

    An existing ``dest`` that verifies (expected sha256, else its ``.sha256`` sidecar) is kept as is.
    The body goes to ``dest.part``; an interrupted transfer (connection reset, truncated body, a
    crash) is resumed with an HTTP Range request, by the retry loop here or by a later call. The
    finished file must have the size the server announced and the expected sha256 when one is
    known; otherwise its sha256 is recorded in the sidecar so later runs can verify it. The
    ``.part`` is renamed to ``dest`` only after every check passed.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        actual = _verify_existing(dest, expected_sha256, expected_size)
        if actual is not None:
            if read_sidecar(dest) is None:
                write_sidecar(dest, actual)
            return DownloadResult(dest, actual, dest.stat().st_size, "cached")
        log.warning("%s does not match its checksum; downloading it again", dest)
        dest.unlink()

    part = dest.with_name(dest.name + ".part")
    resumed_any = part.exists() and part.stat().st_size > 0
    last_error: Exception | None = None
    total: int | None = None
    retry = retry or RetryPolicy()
    for attempt in range(retry.max_attempts):
        try:
            total, resumed = _fetch_into_part(url, part, retry.timeout, progress, dest.name)
            resumed_any = resumed_any or resumed
            size = part.stat().st_size
            if total is not None and size < total:
                raise DownloadError(f"truncated body: {size} of {total} bytes")
            break
        except urllib.error.HTTPError as exc:
            if exc.code < 500 and exc.code != 429:
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
            last_error = exc
        except (OSError, http.client.HTTPException, DownloadError) as exc:  # resets, timeouts, truncation
            last_error = exc
        if attempt + 1 < retry.max_attempts:
            delay = retry.delay(attempt)
            log.warning("download of %s interrupted (%s); resuming in %.1fs", url, last_error, delay)
            retry.sleep(delay)
    else:
        raise DownloadError(
            f"{url}: failed after {retry.max_attempts} attempts ({last_error}); "
            f"{part} is kept and the next run resumes it"
        ) from last_error

    size = part.stat().st_size
    actual = sha256_file(part)
    if expected_size is not None and size != expected_size:
        part.unlink()
        raise ChecksumMismatch(f"{url}: size {size}, expected {expected_size}")
    if expected_sha256 and actual != expected_sha256.lower():
        part.unlink()
        raise ChecksumMismatch(f"{url}: sha256 {actual}, expected {expected_sha256}")
    os.replace(part, dest)
    write_sidecar(dest, actual)
    return DownloadResult(dest, actual, size, "resumed" if resumed_any else "downloaded")


@dataclasses.dataclass(frozen=True)
class ModelFile:
    url: str
    dest: Path
    sha256: str | None = None
    size: int | None = None


def _join_url(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


def planned_downloads(
    langs: Sequence[str],
    cache_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    include_lid: bool = True,
    config: dict | None = None,
) -> list[ModelFile]:
    """The files ``rpv2 models download`` fetches. ``base_url`` replaces every host (a mirror
    holding ``lid.176.bin`` and the ``{lang}.*`` LM files side by side)."""
    config = config or load_models_config()
    cache = Path(cache_dir or default_cache_dir())
    files: list[ModelFile] = []
    if include_lid:
        lid = config["lid"]
        url = _join_url(base_url, lid["file"]) if base_url else lid["url"]
        files.append(ModelFile(url, cache / lid["file"], lid.get("sha256"), lid.get("size")))
    lm = config["ccnet_lm"]
    checksums = lm.get("sha256") or {}
    for lang in langs:
        for pattern in lm["files"]:
            name = pattern.format(lang=lang)
            url = _join_url(base_url or lm["base_url"], name)
            files.append(ModelFile(url, cache / "lm" / name, checksums.get(name)))
    return files


def download_models(
    langs: Sequence[str],
    cache_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    include_lid: bool = True,
    progress: bool = True,
    retry: RetryPolicy | None = None,
) -> tuple[list[DownloadResult], list[tuple[ModelFile, str]]]:
    """Download every planned file; returns (results, failures as (file, message)).

    One failing file does not stop the others. The LMs that are there are recorded in the LM dir's
    ``SHA256SUMS`` (lid.176.bin has its ``.sha256`` sidecar).
    """
    results: list[DownloadResult] = []
    failures: list[tuple[ModelFile, str]] = []
    for item in planned_downloads(langs, cache_dir, base_url, include_lid):
        try:
            results.append(
                download_file(item.url, item.dest, item.sha256, item.size, retry=retry, progress=progress)
            )
        except DownloadError as exc:
            failures.append((item, str(exc)))
    lm_dir = lm_cache_dir(cache_dir)
    lms = {result.path.name: result.sha256 for result in results if result.path.parent == lm_dir}
    if lms:
        update_manifest(lm_dir, lms)
    return results, failures


# --------------------------------------------------------------------------------------------
# building an LM: SentencePiece unigram + KenLM
# --------------------------------------------------------------------------------------------


class KenLMToolsMissing(FileNotFoundError):
    """lmplz / build_binary are not installed."""


def find_kenlm_tool(name: str) -> Path:
    """``lmplz`` or ``build_binary``: $RPV2_KENLM_BIN, then PATH, then ~/.local/bin, /usr/local/bin."""
    candidates: list[Path] = []
    if os.environ.get("RPV2_KENLM_BIN"):
        candidates.append(Path(os.environ["RPV2_KENLM_BIN"]) / name)
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    candidates += [Path.home() / ".local" / "bin" / name, Path("/usr/local/bin") / name]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise KenLMToolsMissing(
        f"KenLM's `{name}` not found (looked in $RPV2_KENLM_BIN, PATH, ~/.local/bin, /usr/local/bin); "
        "build it with `bash scripts/build_kenlm_tools.sh` (or `make kenlm-tools`)"
    )


def read_corpus_lines(paths: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    """Lines of text files (.gz too); undecodable bytes become U+FFFD instead of failing."""
    for path in paths:
        path = Path(path)
        raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
        with raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline=None) as f:
            for line in f:
                yield line.rstrip("\n")


@dataclasses.dataclass(frozen=True)
class LMBuildResult:
    sp_model: Path
    lm_binary: Path
    n_lines: int
    n_tokens: int
    vocab_size: int


def build_lm(
    lang: str,
    corpus: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    vocab_size: int = 8000,
    order: int = 5,
    memory: str = "1G",
    keep_arpa: bool = False,
    threads: int = 2,
) -> LMBuildResult:
    """Train ``{lang}.sp.model`` and ``{lang}.arpa.bin`` in ``out_dir`` from text files, and record them in
    ``out_dir``'s ``SHA256SUMS``.

    The recipe of CCNet's published models: every corpus line normalized as cc_net does before
    SentencePiece (``normalize``: lower-case, accents stripped, digits to 0, punctuation replaced),
    a unigram SentencePiece model trained on those lines, the lines tokenized with it, and a
    modified-Kneser-Ney ``order``-gram model from ``lmplz`` (``--discount_fallback`` so that small
    corpora train too), converted with ``build_binary``. ``vocab_size`` is a soft limit
    (``hard_vocab_limit=false``): a small corpus gets the largest vocabulary it supports.
    Deterministic: the same corpus and settings give byte-identical files.
    """
    import sentencepiece as spm

    lmplz, build_binary = find_kenlm_tool("lmplz"), find_kenlm_tool("build_binary")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"rpv2-lm-{lang}-", dir=out) as tmp_name:
        tmp = Path(tmp_name)
        normalized = tmp / "normalized.txt"
        n_lines = 0
        with open(normalized, "w", encoding="utf-8") as f:
            for line in read_corpus_lines(corpus):
                norm = normalize(line)
                if norm:
                    f.write(norm + "\n")
                    n_lines += 1
        if n_lines == 0:
            raise ValueError(f"corpus for {lang!r} has no text: {', '.join(map(str, corpus))}")

        # Trained from an iterator into a writer (not input=/model_prefix=), so that no temporary
        # path is stored in the model's trainer spec: the same corpus gives the same bytes.
        sp_tmp = tmp / f"{lang}.sp.model"
        with open(normalized, encoding="utf-8") as lines, open(sp_tmp, "wb") as model_out:
            spm.SentencePieceTrainer.train(
                sentence_iterator=(line.rstrip("\n") for line in lines),
                model_writer=model_out,
                vocab_size=vocab_size,
                model_type="unigram",
                hard_vocab_limit=False,
                character_coverage=0.9999,
                input_sentence_size=5_000_000,
                shuffle_input_sentence=True,
                num_threads=threads,
                minloglevel=2,
            )
        sp = spm.SentencePieceProcessor(model_file=str(sp_tmp))

        tokenized = tmp / "tokenized.txt"
        n_tokens = 0
        with open(normalized, encoding="utf-8") as src, open(tokenized, "w", encoding="utf-8") as dst:
            for line in src:
                pieces = sp.encode(line.rstrip("\n"), out_type=str)
                n_tokens += len(pieces)
                dst.write(" ".join(pieces) + "\n")

        arpa = tmp / f"{lang}.arpa"
        _run(
            [str(lmplz), "-o", str(order), "-S", memory, "-T", str(tmp), "--discount_fallback"],
            stdin_path=tokenized,
            stdout_path=arpa,
        )
        binary_tmp = tmp / f"{lang}.arpa.bin"
        _run([str(build_binary), str(arpa), str(binary_tmp)])

        sp_model = out / f"{lang}.sp.model"
        lm_binary = out / f"{lang}.arpa.bin"
        os.replace(sp_tmp, sp_model)
        os.replace(binary_tmp, lm_binary)
        written = [sp_model, lm_binary]
        if keep_arpa:
            os.replace(arpa, out / f"{lang}.arpa")
            written.append(out / f"{lang}.arpa")
        update_manifest(out, {path.name: sha256_file(path) for path in written})
        return LMBuildResult(sp_model, lm_binary, n_lines, n_tokens, sp.get_piece_size())


def _run(cmd: list[str], stdin_path: Path | None = None, stdout_path: Path | None = None) -> None:
    log.info("running %s", " ".join(cmd))
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    stdout = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    try:
        proc = subprocess.run(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, check=False)
    finally:
        for handle in (stdin, stdout):
            if hasattr(handle, "close"):
                handle.close()
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace")[-2000:]
        raise RuntimeError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}):\n{tail}")


# --------------------------------------------------------------------------------------------
# calibrating bucket cutoffs
# --------------------------------------------------------------------------------------------


def read_sample_documents(paths: Iterable[str | os.PathLike[str]], lang: str | None = None) -> Iterator[str]:
    """Documents of a calibration sample.

    ``.parquet`` (rpv2 output) and ``.jsonl``/``.json`` (optionally ``.gz``, CCNet format): the
    ``raw_content`` of each document, only those whose ``language`` is ``lang`` when they have one.
    Any other file: one document per non-empty line.
    """
    for path in paths:
        path = Path(path)
        suffixes = [s.lower() for s in path.suffixes]
        if suffixes and suffixes[-1] == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            columns = table.column_names
            contents = table.column("raw_content").to_pylist()
            langs = table.column("language").to_pylist() if "language" in columns else [None] * len(contents)
            for content, doc_lang in zip(contents, langs, strict=True):
                if content and (lang is None or doc_lang in (None, lang)):
                    yield content
        elif ".jsonl" in suffixes or ".json" in suffixes:
            for line in read_corpus_lines([path]):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError:
                    log.warning("%s: skipping a line that is not JSON", path)
                    continue
                content = doc.get("raw_content") if isinstance(doc, dict) else None
                if content and (lang is None or doc.get("language") in (None, lang)):
                    yield content
        else:
            for line in read_corpus_lines([path]):
                if line.strip():
                    yield line


@dataclasses.dataclass(frozen=True)
class CalibrationResult:
    lang: str
    p30: float
    p60: float
    n_documents: int
    cutoffs_path: Path


def calibrate(
    lang: str,
    models_dir: str | os.PathLike[str],
    samples: Sequence[str | os.PathLike[str]],
    cutoffs_path: str | os.PathLike[str],
    head: int = 30,
    tail: int = 60,
) -> CalibrationResult:
    """p30/p60 of the sample's perplexities under ``{models_dir}/{lang}.*``, written to ``cutoffs_path``."""
    from pipeline.ccnet.perplexity import LanguageModels

    scorer = LanguageModels(models_dir).get(lang)
    if scorer is None:
        raise FileNotFoundError(f"no model for {lang!r} in {models_dir} ({lang}.sp.model + {lang}.arpa.bin)")
    perplexities = [scorer.perplexity(doc) for doc in read_sample_documents(samples, lang)]
    perplexities = [p for p in perplexities if p >= 0]
    p30, p60 = compute_cutoffs(perplexities, head, tail)
    write_cutoffs(cutoffs_path, {lang: (p30, p60)})
    return CalibrationResult(lang, p30, p60, len(perplexities), Path(cutoffs_path))
