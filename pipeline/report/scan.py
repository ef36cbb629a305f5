"""Everything the report shows, read from a run's output dir with column-projected pyarrow scans.

A run's output dir (pipeline/dataset/layout.py) holds ``_run_summary.json`` (read/kept/dropped by reason,
the per-stage table), ``documents/`` and, when dedup ran, the sibling datasets ``is_duplicate_exact/`` and
``clusters_sim<t>/documents/`` with the same relative paths. Each Parquet file belongs to one (snapshot,
language, bucket), named by its path, so every file is scanned as one pyarrow.dataset fragment with only
the columns a section needs, batch by batch: counts and sums with pyarrow.compute, histograms with numpy
per batch, a recipe's rules over whole columns (pipeline/report/funnel.py), no row ever becomes a Python
object. Histogram edges are fixed before the binning pass: [0, 1] for fractions and scores, and for
unbounded signals (word count, perplexity) log-spaced between the smallest positive and the largest value,
found by a first pass over those columns only; the second pass reads, once per file, every column the
counts, the histograms and the recipe need. A signal column that is absent or null everywhere in a group
(signals that need artifacts the run did not have) is reported as not computed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.dataset.layout import DOCUMENTS_DATASET, from_path
from pipeline.filter.recipe import (
    DEDUP_EXACT_FLAG,
    Recipe,
    check_flags_computed,
    flag_source,
    fuzzy_flag,
    is_dedup_flag,
)
from pipeline.report.funnel import FunnelCounts, Group, rule_outcomes
from pipeline.shard.stats import SUMMARY_FILE
from signals.classifiers import MODEL_SIGNALS

BATCH_ROWS = 65_536
BINS = 40
FUZZY_DIR = re.compile(r"^clusters_sim(\d+(?:\.\d+)?)$")


class ReportError(ValueError):
    """OUT is not a run's output dir, or a recipe does not fit it: one line for the user."""


@dataclass(frozen=True)
class Signal:
    """A signal the report histograms: fixed [lo, hi] edges, or log-spaced over the data's range."""

    column: str
    label: str
    log: bool = False
    lo: float = 0.0
    hi: float = 1.0


KEY_SIGNALS: tuple[Signal, ...] = (
    Signal("rps_doc_word_count", "words per document", log=True),
    Signal("ccnet_perplexity", "perplexity (CCNet LM)", log=True),
    Signal("rps_doc_stop_word_fraction", "stop-word fraction"),
    Signal("rps_doc_frac_chars_top_2gram", "chars in the top 2-gram"),
    Signal("rps_doc_frac_chars_dupe_10grams", "chars in duplicate 10-grams"),
)
# RPv2's fastText classifier scores (probabilities), histogrammed when the run has their columns
CLASSIFIER_SIGNALS: tuple[Signal, ...] = tuple(Signal(column, f"{model} score (fastText)")
                                              for model, column in MODEL_SIGNALS.items())


@dataclass
class Histogram:
    """Counts of a signal's non-null values in ``edges`` bins (values outside clipped into the end bins)."""

    edges: np.ndarray
    counts: np.ndarray
    log: bool = False
    nulls: int = 0

    @property
    def values(self) -> int:
        """The non-null values binned (what the chart's legend states)."""
        return int(self.counts.sum())


@dataclass
class DedupRate:
    """Documents with a dedup flag, and those flagged duplicate, per group."""

    name: str  # "exact", "fuzzy 0.8"
    documents: dict[Group, int] = field(default_factory=dict)
    duplicates: dict[Group, int] = field(default_factory=dict)

    def add(self, group: Group, documents: int, duplicates: int) -> None:
        self.documents[group] = self.documents.get(group, 0) + documents
        self.duplicates[group] = self.duplicates.get(group, 0) + duplicates


@dataclass
class RunScan:
    """What the report shows about one output dir."""

    root: str
    summary: dict[str, Any] | None
    files: int = 0
    documents: dict[Group, int] = field(default_factory=dict)
    characters: dict[Group, int] = field(default_factory=dict)
    signals: list[Signal] = field(default_factory=list)
    # signal column -> group -> histogram (a group with no value of the signal has none)
    histograms: dict[str, dict[Group, Histogram]] = field(default_factory=dict)
    dedup: list[DedupRate] = field(default_factory=list)
    recipe: Recipe | None = None
    funnel: FunnelCounts | None = None

    @property
    def groups(self) -> list[Group]:
        """The (snapshot, language, bucket) groups that have a documents file, sorted."""
        return sorted(self.documents)

    @property
    def languages(self) -> list[str]:
        """The languages that have a documents file, sorted."""
        return sorted({g[1] for g in self.documents})


# ------------------------------------------------------------------------------------------ the run's files


def _filesystem(root: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path in it) of a local path or a URI pyarrow reads (s3://, gs://, file://)."""
    import pyarrow.fs as pafs

    if "://" in root:
        return pafs.FileSystem.from_uri(root)
    from pathlib import Path

    return pafs.LocalFileSystem(), Path(root).resolve().as_posix()


def dataset_files(fs: Any, root: str, dataset: str) -> list[str]:
    """The layout's files (``snapshot=/language=/bucket=/NNNN.parquet``) of ``<root>/<dataset>``, sorted."""
    import pyarrow.fs as pafs

    base = f"{root.rstrip('/')}/{dataset}"
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return []
    infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    return sorted(i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(".parquet")
                  and not i.base_name.startswith((".", "_")) and from_path(i.path) is not None)


def _group(path: str) -> Group:
    shard = from_path(path)
    assert shard is not None  # dataset_files lists layout files only
    return shard.snapshot, shard.language, shard.bucket


def _fragments(fs: Any, files: Sequence[str]) -> list[tuple[str, Any]]:
    """(path, pyarrow.dataset fragment) of each file, in path order. A fragment reads its footer once and
    keeps it, so the passes over the same files reuse these objects."""
    import pyarrow.dataset as pads

    if not files:
        return []
    dataset = pads.dataset(list(files), format="parquet", filesystem=fs)
    return sorted(((f.path, f) for f in dataset.get_fragments()), key=lambda item: item[0])


def _batches(fragment: Any, columns: Sequence[str]) -> Iterator[Any]:
    """The fragment's record batches holding only ``columns`` (those it has; the caller treats the others
    as null)."""
    present = [c for c in columns if c in fragment.physical_schema.names]
    yield from fragment.to_batches(columns=present, batch_size=BATCH_ROWS, use_threads=False)


def read_summary(fs: Any, root: str) -> dict[str, Any] | None:
    """The run's summary, None when the dir has none (e.g. `rpv2 filter`'s output); :class:`ReportError`
    when the file is not JSON."""
    import pyarrow.fs as pafs

    path = f"{root.rstrip('/')}/{SUMMARY_FILE}"
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as handle:
        try:
            return json.loads(handle.read().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ReportError(f"{path}: not a run summary: {exc}") from None


# ------------------------------------------------------------------------------------------ histograms


def bin_edges(signal: Signal, lo: float | None, hi: float | None, bins: int = BINS) -> np.ndarray:
    """The bin edges of ``signal``: [lo, hi] of the signal for a fixed range; for a log signal, log-spaced
    between the data's smallest positive value ``lo`` and largest value ``hi`` (widened when they meet)."""
    if not signal.log:
        return np.linspace(signal.lo, signal.hi, bins + 1)
    if lo is None or hi is None or not (lo > 0):
        lo, hi = 1.0, 10.0
    hi = max(hi, lo)
    if hi <= lo * 1.0001:
        lo, hi = lo / 2, hi * 2
    return np.logspace(np.log10(lo), np.log10(hi), bins + 1)


def add_to_histogram(hist: Histogram, values: np.ndarray) -> None:
    """Bin a batch's values (NaN are nulls; values beyond the edges go to the end bins) into ``hist``."""
    finite = values[~np.isnan(values)]
    hist.nulls += int(values.size - finite.size)
    if not finite.size:
        return
    clipped = np.clip(finite, hist.edges[0], hist.edges[-1])
    if hist.log:
        counts, _ = np.histogram(np.log10(clipped), np.log10(hist.edges))
    else:
        counts, _ = np.histogram(clipped, hist.edges)
    hist.counts += counts


def _numbers(column: Any) -> np.ndarray:
    """A numeric Arrow column as float64 with NaN for nulls."""
    import pyarrow as pa

    return np.asarray(column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=float)


def _ranges(fragments: Sequence[tuple[str, Any]],
            signals: Sequence[Signal]) -> dict[str, tuple[float | None, float | None]]:
    """(smallest positive, largest) value of each log-scaled signal over all files."""
    import pyarrow.compute as pc

    columns = [s.column for s in signals if s.log]
    lo: dict[str, float | None] = dict.fromkeys(columns)
    hi: dict[str, float | None] = dict.fromkeys(columns)
    for _, fragment in fragments:
        for batch in _batches(fragment, columns):
            for name in batch.schema.names:
                column = batch.column(name)
                top = pc.max(column).as_py()
                low = pc.min(pc.filter(column, pc.greater(column, 0))).as_py()
                if top is not None and not np.isnan(top):
                    hi[name] = top if hi[name] is None else max(hi[name], top)
                if low is not None and not np.isnan(low):
                    lo[name] = low if lo[name] is None else min(lo[name], low)
    return {c: (lo[c], hi[c]) for c in columns}


# ------------------------------------------------------------------------------------------ the scans


def scan_documents(fragments: Sequence[tuple[str, Any]], scan: RunScan, recipe: RecipeScan | None = None) -> None:
    """Documents and characters per group, the key signals' histograms per group and, with a recipe, its
    funnel: a pass over the log signals' columns for their ranges, then one over all counted columns."""
    import pyarrow.compute as pc

    schema_names: set[str] = set()
    for _, fragment in fragments:
        schema_names.update(fragment.physical_schema.names)
    scan.signals = [*KEY_SIGNALS, *(s for s in CLASSIFIER_SIGNALS if s.column in schema_names)]
    ranges = _ranges(fragments, scan.signals)
    edges = {s.column: bin_edges(s, *ranges.get(s.column, (None, None))) for s in scan.signals}
    columns = sorted({"length", *(s.column for s in scan.signals), *(recipe.wanted if recipe else ())})
    for path, fragment in fragments:
        group = _group(path)
        scan.files += 1
        scan.documents.setdefault(group, 0)
        scan.characters.setdefault(group, 0)
        siblings = recipe.sibling_tables(path) if recipe else {}
        for batch in _batches(fragment, columns):
            scan.documents[group] += batch.num_rows
            if "length" in batch.schema.names:
                scan.characters[group] += int(pc.sum(batch.column("length")).as_py() or 0)
            for signal in scan.signals:
                if signal.column not in batch.schema.names:
                    continue
                per_group = scan.histograms.setdefault(signal.column, {})
                hist = per_group.get(group)
                if hist is None:
                    hist = per_group[group] = Histogram(edges[signal.column], np.zeros(BINS, dtype=np.int64),
                                                        signal.log)
                add_to_histogram(hist, _numbers(batch.column(signal.column)))
            if recipe:
                recipe.add(path, group, batch, siblings)
    for per_group in scan.histograms.values():  # a group where the signal is null everywhere: not computed
        for group in [g for g, h in per_group.items() if h.values == 0]:
            del per_group[group]


def scan_dedup(fs: Any, root: str, scan: RunScan) -> None:
    """Exact and fuzzy duplicate rates per group from the dedup flags the run wrote beside documents/:
    ``is_duplicate_exact`` rows flagged True; ``clusters_sim<t>/documents`` rows that are not their
    cluster's representative (the near duplicates a filter drops)."""
    import pyarrow.compute as pc
    import pyarrow.fs as pafs

    sources = [("exact", flag_source(DEDUP_EXACT_FLAG))]
    infos = fs.get_file_info(pafs.FileSelector(root.rstrip("/"), recursive=False))
    for info in sorted(infos, key=lambda i: i.base_name):
        match = FUZZY_DIR.match(info.base_name)
        if match and info.type == pafs.FileType.Directory:
            sources.append((f"fuzzy {match.group(1)}", flag_source(fuzzy_flag(match.group(1)))))
    for name, source in sources:
        files = dataset_files(fs, root, source.dataset)
        if not files:
            continue
        rate = DedupRate(name)
        duplicate_value = not source.negated  # the column's value that marks a duplicate
        for path, fragment in _fragments(fs, files):
            for batch in _batches(fragment, [source.column]):
                flags = batch.column(source.column) if source.column in batch.schema.names else None
                flagged = 0 if flags is None else int(
                    pc.sum(pc.equal(flags, duplicate_value).cast("int64")).as_py() or 0)
                rate.add(_group(path), batch.num_rows, flagged)
        scan.dedup.append(rate)


def check_recipe_fits(fs: Any, root: str, files: Sequence[str], recipe: Recipe) -> None:
    """Before any work: the recipe's columns exist in the documents (or are partition columns) and the
    dedup flags it reads were computed; a :class:`ReportError` naming what to run otherwise."""
    from pipeline.filter.grammar import RecipeError

    if not files:
        return
    try:
        recipe.check_schema(_fragments(fs, files[:1])[0][1].physical_schema)
        check_flags_computed(recipe, root, lambda dataset: bool(dataset_files(fs, root, dataset)))
    except RecipeError as exc:
        raise ReportError(str(exc)) from None


class RecipeScan:
    """A recipe's funnel, counted batch by batch during the documents pass: per rule dropped first / alone
    / null, read and kept per group. Dedup flags are joined by id from the sibling file with the same
    relative path (all null when it is absent, as `rpv2 filter` counts them)."""

    def __init__(self, fs: Any, root: str, recipe: Recipe) -> None:
        self.fs, self.root, self.recipe = fs, root, recipe
        self.columns = frozenset(recipe.columns)
        self.flags = sorted(n for n in self.columns if is_dedup_flag(n))
        self.wanted = sorted((self.columns - set(self.flags)) | ({"id"} if self.flags else set()))
        self.funnel = FunnelCounts()

    def sibling_tables(self, path: str) -> dict[str, Any]:
        """Each dedup flag the recipe reads: (ids, flag values) of the documents file ``path``'s sibling,
        the flag as the recipe means it (fuzzy: not the representative); None when the file is absent."""
        import pyarrow.compute as pc
        import pyarrow.fs as pafs
        import pyarrow.parquet as pq

        shard = from_path(path)
        out: dict[str, Any] = {}
        for name in self.flags:
            source = flag_source(name)
            sibling = shard.path(self.root, source.dataset) if shard else ""
            if not sibling or self.fs.get_file_info(sibling).type != pafs.FileType.File:
                out[name] = None
                continue
            table = pq.read_table(sibling, columns=["id", source.column], filesystem=self.fs, use_threads=False)
            flag = table.column(source.column)
            out[name] = (table.column("id"), pc.invert(flag) if source.negated else flag)
        return out

    def add(self, path: str, group: Group, batch: Any, siblings: dict[str, Any]) -> None:
        """Count one batch of the documents file ``path``."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from pipeline.dataset.layout import partition_values

        columns: dict[str, Any] = dict.fromkeys(self.columns)
        columns.update({k: v for k, v in partition_values(path).items() if k in self.columns})
        columns.update({name: batch.column(name) for name in batch.schema.names if name in self.columns})
        for name, sibling in siblings.items():
            if sibling is None:
                columns[name] = pa.nulls(batch.num_rows, pa.bool_())
            else:
                ids, flags = sibling
                columns[name] = pc.take(flags, pc.index_in(batch.column("id"), value_set=ids))
        self.funnel.add(self.recipe, rule_outcomes(self.recipe, columns, batch.num_rows), group, batch.num_rows)


def scan_run(root: str, recipe: Recipe | None = None) -> RunScan:
    """Read everything the report shows from the output dir ``root``; :class:`ReportError` when it is not
    one (neither a run summary nor a documents dataset) or the recipe does not fit it."""
    fs, base = _filesystem(root)
    summary = read_summary(fs, base)
    files = dataset_files(fs, base, DOCUMENTS_DATASET)
    head, _, name = base.rstrip("/").rpartition("/")
    if summary is None and not files and name == DOCUMENTS_DATASET and head:  # OUT/documents given
        base = head
        summary, files = read_summary(fs, base), dataset_files(fs, base, DOCUMENTS_DATASET)
    if summary is None and not files:
        raise ReportError(f"{root}: not an rpv2 output dir (no {SUMMARY_FILE} and no "
                          f"{DOCUMENTS_DATASET}/snapshot=*/language=*/bucket=*/*.parquet)")
    if recipe is not None:
        check_recipe_fits(fs, base, files, recipe)
    scan = RunScan(root=root, summary=summary)
    recipe_scan = RecipeScan(fs, base, recipe) if recipe is not None else None
    scan_documents(_fragments(fs, files), scan, recipe_scan)
    scan_dedup(fs, base, scan)
    if recipe_scan is not None:
        scan.recipe, scan.funnel = recipe, recipe_scan.funnel
    return scan
