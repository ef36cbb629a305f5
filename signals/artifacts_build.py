"""Build RPv2's artifacts layout from sources given as URLs or local paths.

Layout written (RPv2's, plus ``stop_words/``), under one artifacts dir::

    bad_words/<lang>.txt                                LDNOOBW list (RPv2 update_resources.create_bad_words_list)
    bad_urls/domain_to_category_id.json                 UT1 blacklist index (RPv2 create_bad_urls_index)
    bad_urls/category_index.json
    stop_words/<lang>.json                              stopwords-json list (RPv2 hard-codes the same lists)
    classifiers/<lang>/<name>.model.bin (+ .data.train) fastText classifier (RPv2 artifacts/ft_trainer.py)
    dsir/<lang>/<dataset>.<lang>.<buckets>.counts.npy   DSIR bucket counts (RPv2 artifacts/hash_dist.py)
    dsir/<lang>/<dataset>.<lang>.lambda.npy             mean raw word count (Poisson lambda)
    dsir/<lang>/hash.json                               which gram hash the counts use (ours; see importance.py)

Deliberate differences from RPv2's scripts, none of which changes a value the signals read:

* ``bad_words/<lang>.txt`` is written sorted (RPv2 writes ``"\\n".join(set(...))``, whose order depends
  on PYTHONHASHSEED); the set of lines is the same.
* UT1: category dirs without a ``domains`` file (e.g. ``adult`` in mirrors that split it) are skipped
  and reported, where RPv2 crashes; aliases (UT1 ships ``violence -> agressif`` etc. as symlinks,
  which some copies turn into one-line files naming the target) are followed, as a symlinked dir is by
  RPv2's ``Path.is_dir()``; category dirs are read in sorted order so the JSON is byte-stable.
* The classifier training file is shuffled with a seeded ``random.Random`` instead of unseeded
  ``shuf``, so a rebuild gives the same model; everything else (label lines, sample counts,
  ``fasttext.train_supervised`` defaults) is RPv2's. Threads default to 1, which is what RPv2's
  default (``cpu_count() - 1``) gave on the 2-CPU machine that built the reference artifacts, and
  what makes training deterministic.
* fastText >= 0.9.3 allocates its matrices with ``posix_memalign`` and, with one thread, random-
  initialises only the first tenth of the input matrix; the rest is whatever the allocator returns
  (0.9.2 used a zero-filled ``std::vector``). Recycled heap memory then yields "Encountered NaN" or a
  different model. :func:`zeroed_allocations` makes glibc hand out zero-filled memory while training,
  which restores 0.9.2's behaviour exactly (the models are byte-identical to RPv2's reference ones).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gzip
import io
import itertools
import json
import logging
import os
import random
import tarfile
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from signals.classifiers import classifier_input
from signals.stable_hash import HASH_MODES, RPV2_HASH_ALGORITHM, RPV2_HASH_SEED, hash_features

log = logging.getLogger(__name__)

CCNET_LABEL = "__label__cc"
RPV2_UT1_CATEGORIES = (
    "adult", "agressive", "agressif", "arjel", "chat", "dating", "ddos", "filehosting",
    "gambling", "porn", "mixed_adult", "phishing", "violence",
)  # RPv2 configs/rp_v2.0.conf DOMAIN_BLACKLIST_CATEGORIES (typo "agressive" included)
DSIR_BUCKETS = 10_000
HASH_METADATA_FILE = "hash.json"


# ---------------------------------------------------------------------------------------- sources
def is_url(source: str | os.PathLike[str]) -> bool:
    return "://" in str(source) and not str(source).startswith("file://")


def _local(source: str | os.PathLike[str]) -> Path:
    text = str(source)
    return Path(text[len("file://"):] if text.startswith("file://") else text)


def read_bytes(source: str | os.PathLike[str]) -> bytes:
    """The bytes of a local path, ``file://`` URI or remote URL (http(s), s3, ... via smart_open)."""
    if is_url(source):
        import smart_open

        with smart_open.open(str(source), "rb", compression="disable") as fh:
            return fh.read()
    return _local(source).read_bytes()


def join_source(base: str | os.PathLike[str], name: str) -> str:
    """``base/name`` for a directory or URL prefix; ``{lang}`` templates are filled by callers."""
    text = str(base)
    return text.rstrip("/") + "/" + name


def iter_jsonl_texts(source: str | os.PathLike[str], max_samples: int = -1) -> Iterator[str]:
    """The ``text`` field of each JSON line (.jsonl or .jsonl.gz), as RPv2's ``Reader`` yields them.

    Undecodable lines are skipped (RPv2 logs ``__SAMPLE_READ_ERROR__`` and continues); at most
    ``max_samples`` records when it is > 0.
    """
    data = read_bytes(source)
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    n = 0
    skipped = 0
    for line in io.BytesIO(data):
        try:
            text = json.loads(line)["text"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
        except (ValueError, KeyError, TypeError) as exc:
            skipped += 1
            log.warning("%s: skipping undecodable record (%s)", source, exc)
            continue
        yield text
        n += 1
        if n >= max_samples > 0:
            break


# ----------------------------------------------------------------------------------- bad words
def build_bad_words(source: str | os.PathLike[str], artifacts_dir: Path, lang: str) -> Path:
    """``bad_words/<lang>.txt`` from one LDNOOBW list file (RPv2 ``create_bad_words_list``)."""
    words = set(read_bytes(source).decode("utf-8").splitlines())
    out = artifacts_dir / "bad_words" / f"{lang}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(sorted(words)), encoding="utf-8")
    return out


# ------------------------------------------------------------------------------------ stop words
def build_stop_words(source: str | os.PathLike[str], artifacts_dir: Path, lang: str) -> Path:
    """``stop_words/<lang>.json`` from a stopwords-json list (github.com/6/stopwords-json)."""
    words = json.loads(read_bytes(source).decode("utf-8"))
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ValueError(f"{source}: expected a JSON list of strings")
    out = artifacts_dir / "stop_words" / f"{lang}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")
    return out


# ------------------------------------------------------------------------------------------ UT1
def ut1_category_index(categories: Iterable[str]) -> dict[tuple[str, ...], int]:
    """RPv2 ``_build_category_index``: every non-empty combination of the sorted categories, numbered
    by size then lexicographically (13 categories -> 8191 ids)."""
    ordered = sorted(categories)
    combos = itertools.chain.from_iterable(
        itertools.combinations(ordered, r) for r in range(1, len(ordered) + 1)
    )
    return {tuple(combo): i for i, combo in enumerate(combos)}


def _resolve_alias(entry: Path) -> Path | None:
    """The category dir ``entry`` stands for: itself, its symlink target, or the sibling named by a
    one-line alias file (how symlinks look in copies that cannot store them)."""
    if entry.is_dir():  # follows real symlinks, as RPv2's Path.is_dir() does
        return entry
    if entry.is_file() and entry.stat().st_size < 256:
        target = entry.read_text(encoding="utf-8", errors="replace").strip()
        if target and "/" not in target and (entry.parent / target).is_dir():
            return entry.parent / target
    return None


@dataclass
class Ut1Report:
    categories_read: list[str] = field(default_factory=list)
    categories_missing: list[str] = field(default_factory=list)  # no dir, or a dir without `domains`
    domains: int = 0


def ut1_domain_categories(blacklists_dir: Path, categories: Iterable[str]) -> tuple[dict[str, tuple[str, ...]], Ut1Report]:
    """RPv2 ``_domain_to_category_list_mapping``: domain -> sorted tuple of its categories."""
    wanted = set(categories)
    report = Ut1Report()
    domain_to_categories: dict[str, list[str]] = defaultdict(list)
    for category in sorted(wanted):
        entry = blacklists_dir / category
        category_dir = _resolve_alias(entry) if entry.exists() or entry.is_symlink() else None
        domains_file = category_dir / "domains" if category_dir is not None else None
        if domains_file is None or not domains_file.is_file():
            report.categories_missing.append(category)
            log.warning("UT1 category %r has no domains list in %s: skipped", category, blacklists_dir)
            continue
        report.categories_read.append(category)
        with open(domains_file, encoding="utf-8", errors="replace") as fh:
            for dom in map(str.strip, fh):
                domain_to_categories[dom].append(category)
    mapping = {dom: tuple(sorted(set(cats))) for dom, cats in domain_to_categories.items()}
    report.domains = len(mapping)
    return mapping, report


def _find_blacklists_dir(root: Path) -> Path:
    """The dir holding the category dirs: ``root/blacklists`` (UT1 tarball layout) or ``root``."""
    return root / "blacklists" if (root / "blacklists").is_dir() else root


def build_ut1_index(source: str | os.PathLike[str], artifacts_dir: Path, categories: Sequence[str]) -> Ut1Report:
    """``bad_urls/domain_to_category_id.json`` + ``category_index.json`` (RPv2 ``create_bad_urls_index``).

    ``source``: the UT1 ``blacklists.tar.gz`` (URL or path) or an extracted directory.
    """
    out_dir = artifacts_dir / "bad_urls"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rpv2-ut1-") as tmp:
        local = _local(source)
        if not is_url(source) and local.is_dir():
            root = local
        else:
            with tarfile.open(fileobj=io.BytesIO(read_bytes(source)), mode="r:*") as tar:
                tar.extractall(tmp, filter="data")
            root = Path(tmp)
        index = ut1_category_index(categories)
        mapping, report = ut1_domain_categories(_find_blacklists_dir(root), categories)
    domain_to_id = {dom: index[cats] for dom, cats in sorted(mapping.items())}
    (out_dir / "domain_to_category_id.json").write_text(json.dumps(domain_to_id), encoding="utf-8")
    id_to_categories = {i: list(cats) for cats, i in index.items()}
    (out_dir / "category_index.json").write_text(json.dumps(id_to_categories), encoding="utf-8")
    return report


# ---------------------------------------------------------------------------------- classifiers
@dataclass(frozen=True)
class ClassifierSpec:
    """One fastText classifier as RPv2's ``FastTextTrainer`` builds it.

    ``name`` is the output file stem (palm, wikipedia, wikiref); ``label`` the target label name
    (``__label__<label>``; RPv2's wikiref model uses ``wiki``); ``targets`` the target corpora, each
    contributing at most ``samples_per_class // len(targets)`` records; ``ccnet`` the source corpus,
    contributing as many records as the targets did.
    """

    lang: str
    name: str
    targets: tuple[str, ...]
    ccnet: str
    samples_per_class: int
    label: str | None = None
    train_args: tuple[tuple[str, Any], ...] = ()  # extra fasttext.train_supervised kwargs


def training_lines(spec: ClassifierSpec) -> list[str]:
    """RPv2's unshuffled training file lines: target lines, then as many ccnet lines."""
    label = f"__label__{spec.label or spec.name}"
    per_target = spec.samples_per_class // len(spec.targets)
    lines = [
        f"{label} {classifier_input(text)}\n"
        for target in spec.targets
        for text in iter_jsonl_texts(target, per_target)
    ]
    n_targets = len(lines)
    lines += [f"{CCNET_LABEL} {classifier_input(text)}\n" for text in iter_jsonl_texts(spec.ccnet, n_targets)]
    return lines


@contextlib.contextmanager
def zeroed_allocations() -> Iterator[None]:
    """While active, glibc malloc returns zero-filled memory (see the module docstring for why).

    ``M_PERTURB`` = 0xFF makes malloc fill every block it hands out with ``0xFF ^ 0xFF = 0``; a fixed
    small ``M_MMAP_THRESHOLD`` sends large blocks to fresh (zeroed) mmap pages instead of recycled
    heap. Both are reset afterwards (the threshold to glibc's 128 KiB default, fixed).
    No-op where glibc is not the C library.
    """
    libc_name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(libc_name) if libc_name else None
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        yield
        return
    m_perturb, m_mmap_threshold = -6, -3
    mallopt(m_mmap_threshold, 4096)
    mallopt(m_perturb, 0xFF)
    try:
        yield
    finally:
        mallopt(m_perturb, 0)
        mallopt(m_mmap_threshold, 128 * 1024)


def train_fasttext(train_file: Path, model_file: Path, thread: int = 1, **train_args: Any) -> None:
    """``fasttext.train_supervised(input=train_file, **defaults)`` then ``save_model``, reliably.

    Training runs under :func:`zeroed_allocations`; with ``thread=1`` the model is deterministic and
    byte-identical to fastText 0.9.2's for the same file (as RPv2 trained it).
    """
    import fasttext

    with zeroed_allocations():
        model = fasttext.train_supervised(input=str(train_file), verbose=0, thread=thread, **train_args)
    model.save_model(str(model_file))


def build_classifier(spec: ClassifierSpec, artifacts_dir: Path, seed: int = 42, thread: int = 1) -> Path:
    """``classifiers/<lang>/<name>.model.bin`` (+ ``<name>.data.train``), as RPv2's FastTextTrainer."""
    out_dir = artifacts_dir / "classifiers" / spec.lang
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = training_lines(spec)
    random.Random(seed).shuffle(lines)
    train_file = out_dir / f"{spec.name}.data.train"
    train_file.write_text("".join(lines), encoding="utf-8")
    model_file = out_dir / f"{spec.name}.model.bin"
    train_fasttext(train_file, model_file, thread=thread, **dict(spec.train_args))
    log.info("classifier %s/%s: %d training lines -> %s", spec.lang, spec.name, len(lines), model_file)
    return model_file


# ------------------------------------------------------------------------------------------ DSIR
def dsir_counts(
    texts: Iterable[str], buckets: int = DSIR_BUCKETS, hash_mode: str = "stable"
) -> tuple[np.ndarray, float]:
    """Summed RPv2 hash features over ``texts`` and the mean raw word count (RPv2 ``HashDist.run``)."""
    from signals.document import Document

    total = np.zeros(buckets, dtype=np.int64)
    words = 0
    docs = 0
    for text in texts:
        raw_words = Document(text).raw_words
        total += hash_features(raw_words, buckets, hash_mode)
        words += len(raw_words)
        docs += 1
    if docs == 0:
        raise ValueError("DSIR corpus has no documents")
    return total, words / docs


def write_hash_metadata(lang_dir: Path, hash_mode: str, buckets: int) -> None:
    meta = {
        "hash_mode": hash_mode,
        "buckets": buckets,
        "grams": "raw WordPunct unigrams and bigrams (RPv2 Document.hash_features)",
        "definition": "signals/stable_hash.py",
    }
    if hash_mode == "rpv2":  # RPv2's hash() under PYTHONHASHSEED=42, emulated (signals/cpython_hash.py)
        meta["python_hash_seed"] = str(RPV2_HASH_SEED)
        meta["python_hash_algorithm"] = RPV2_HASH_ALGORITHM
    (lang_dir / HASH_METADATA_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def build_dsir(
    source: str | os.PathLike[str],
    artifacts_dir: Path,
    lang: str,
    dataset: str,
    buckets: int = DSIR_BUCKETS,
    num_samples: int = -1,
    hash_mode: str = "stable",
) -> tuple[Path, Path]:
    """``dsir/<lang>/<dataset>.<lang>.<buckets>.counts.npy`` and ``<dataset>.<lang>.lambda.npy``.

    ``hash_mode="rpv2"`` reproduces RPv2's counts (its ``hash()`` under PYTHONHASHSEED=42, emulated by
    :mod:`signals.cpython_hash`, so in any process); ``"stable"`` counts are ours. Both are the same in
    every process.
    """
    if hash_mode not in HASH_MODES:
        raise ValueError(f"unknown hash mode {hash_mode!r}")
    lang_dir = artifacts_dir / "dsir" / lang
    lang_dir.mkdir(parents=True, exist_ok=True)
    counts, lam = dsir_counts(iter_jsonl_texts(source, num_samples), buckets, hash_mode)
    counts_path = lang_dir / f"{dataset}.{lang}.{buckets}.counts.npy"
    lambda_path = lang_dir / f"{dataset}.{lang}.lambda.npy"
    np.save(counts_path, counts)
    np.save(lambda_path, np.float64(lam))
    write_hash_metadata(lang_dir, hash_mode, buckets)
    return counts_path, lambda_path
