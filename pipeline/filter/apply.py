"""Applying a recipe to one documents file: rule outcomes per document, dedup flags joined from the sibling
datasets, the kept rows published in the same layout, and the per-rule report's arithmetic.

Kept apart from the recipe model (pipeline/filter/recipe.py) and the grammar (pipeline/filter/grammar.py),
which are pure and read no data: this is the part that reads and writes Parquet (through Beam FileSystems:
local, gs://, s3://) and counts what happened (null outcomes as the grammar defines them: kept, counted as
``null``). :func:`filter_file` handles one file and returns its :class:`FilterReport`; reports of files
add up (:func:`sum_reports`). The Beam pipeline that applies it to every file of a dataset, one file per
unit of work, is pipeline/transforms/filter.py.

A recipe's resample (pipeline/filter/resample.py) needs the whole dataset before any file is written:
:func:`resample_scan` gives a file's count of weighed documents and its top-k candidates, the pipeline
merges them into one cutoff candidate, and :func:`filter_file` then keeps the rule-kept documents whose
candidate reaches it. Its two drop reasons are reported as the last two "rules" (``resample_null_weight``,
``resample_not_selected``), so read = kept + sum(dropped first) still holds, row by row of the report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.dataset.layout import ShardFile
from pipeline.filter.grammar import RecipeError
from pipeline.filter.recipe import (
    DEDUP_EXACT_FLAG,
    Recipe,
    Rule,
    check_flags_computed,
    flag_source,
    fuzzy_flag,
    is_dedup_flag,
)
from pipeline.filter.resample import (
    DROP_REASONS,
    NOT_SELECTED,
    NULL_WEIGHT,
    Candidate,
    is_selected,
    push_bounded,
)

BATCH_ROWS = 2000  # rows read, evaluated and written at a time: a file is never held whole


def rule_outcomes(rules: Sequence[Rule], row: Mapping[str, Any]) -> list[bool | None]:
    """Every rule's outcome for one document; it is kept when none is False."""
    return [rule.keeps(row) for rule in rules]


def stage_names(recipe: Recipe) -> list[str]:
    """The report's rows: the rules, then the resample's drop reasons when the recipe resamples."""
    return [rule.name for rule in recipe.rules] + (list(DROP_REASONS) if recipe.resample else [])


def resample_drop(recipe: Recipe, row: Mapping[str, Any], cutoff: Candidate | None) -> str | None:
    """Why the resample drops a document the rules keep (None: it is drawn)."""
    candidate = recipe.resample.candidate(row)
    if candidate is None:
        return NULL_WEIGHT
    return None if is_selected(candidate, cutoff) else NOT_SELECTED


@dataclass
class RuleCounts:
    """Per rule: documents it dropped as their first failing rule, documents it fails at all (the rule
    alone), and documents where it was null (kept)."""

    dropped_first: int = 0
    dropped_alone: int = 0
    null: int = 0


@dataclass
class FilterReport:
    recipe: Recipe
    read: int = 0
    kept: int = 0
    files_read: int = 0
    files_written: int = 0
    rule_counts: dict[str, RuleCounts] | None = None
    by_partition: dict[str, dict[str, int]] | None = None
    counts: dict[str, int] | None = None
    errors: list[str] | None = None

    def __post_init__(self) -> None:
        self.rule_counts = self.rule_counts or {name: RuleCounts() for name in stage_names(self.recipe)}
        self.by_partition = self.by_partition or {}
        self.counts = self.counts or {}
        self.errors = self.errors or []

    def add(self, outcomes: Sequence[bool | None], partition: str, dropped_after_rules: str | None = None) -> bool:
        """Count one document's rule outcomes, and the reason the resample dropped it if the rules keep it
        (``dropped_after_rules``); returns whether it is kept."""
        self.read += 1
        first_failed = True
        for rule, outcome in zip(self.recipe.rules, outcomes, strict=True):
            counts = self.rule_counts[rule.name]
            if outcome is None:
                counts.null += 1
            elif outcome is False:
                counts.dropped_alone += 1
                if first_failed:
                    counts.dropped_first += 1
                    first_failed = False
        kept = first_failed
        if kept and dropped_after_rules is not None:
            counts = self.rule_counts[dropped_after_rules]
            counts.dropped_first += 1
            counts.dropped_alone += 1  # the resample weighs only what the rules keep: first and alone agree
            kept = False
        part = self.by_partition.setdefault(partition, {"read": 0, "kept": 0})
        part["read"] += 1
        if kept:
            self.kept += 1
            part["kept"] += 1
        return kept

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def skipped(self, rel_path: str, reason: str, message: str) -> FilterReport:
        """Count a file that was not filtered, by ``reason``, and list it; returns self."""
        self.count(reason)
        self.errors.append(f"{rel_path}: skipped: {message}")
        return self

    def absorb(self, other: FilterReport) -> FilterReport:
        """Add the counts of ``other`` (a report of other files, same recipe); returns self."""
        self.read += other.read
        self.kept += other.kept
        self.files_read += other.files_read
        self.files_written += other.files_written
        for name, theirs in other.rule_counts.items():
            mine = self.rule_counts[name]
            mine.dropped_first += theirs.dropped_first
            mine.dropped_alone += theirs.dropped_alone
            mine.null += theirs.null
        for partition, theirs in other.by_partition.items():
            mine = self.by_partition.setdefault(partition, {"read": 0, "kept": 0})
            mine["read"] += theirs["read"]
            mine["kept"] += theirs["kept"]
        for key, n in other.counts.items():
            self.count(key, n)
        self.errors.extend(other.errors)
        return self

    @property
    def identity_holds(self) -> bool:
        return self.read == self.kept + sum(c.dropped_first for c in self.rule_counts.values())

    def counters(self) -> dict[str, int]:
        """The report as counter values (Beam counters, namespace ``rpv2.filter``): summed over files
        they are the whole run's report. Per rule: ``dropped_<rule>`` (first), ``fails_<rule>`` (alone),
        ``null_<rule>``; then documents, files and the counts by reason."""
        values = {"documents_read": self.read, "documents_kept": self.kept,
                  "files_read": self.files_read, "files_written": self.files_written}
        for name in stage_names(self.recipe):
            c = self.rule_counts[name]
            values |= {f"dropped_{name}": c.dropped_first, f"fails_{name}": c.dropped_alone,
                       f"null_{name}": c.null}
        return values | self.counts

    def as_dict(self) -> dict[str, Any]:
        """The report as ``_filter_report.json`` holds it (errors in path order: the same bytes for any
        order in which files were reported)."""
        resample = self.recipe.resample
        exprs = {rule.name: rule.expr for rule in self.recipe.rules}
        if resample is not None:
            exprs[NULL_WEIGHT] = f"resample: weight {resample.weight!r} is null"
            exprs[NOT_SELECTED] = f"resample: not among the top k of weight + Gumbel noise (seed {resample.seed})"
        return {
            "recipe": {"name": self.recipe.name, "description": self.recipe.description, "source": self.recipe.source},
            "read": self.read,
            "kept": self.kept,
            "dropped": self.read - self.kept,
            "read_equals_kept_plus_dropped_first": self.identity_holds,
            "null_semantics": "a rule whose value is null does not drop the document (counted as null)",
            **({"resample": resample.describe()} if resample is not None else {}),
            "rules": [
                {"name": name, "expr": exprs[name], **vars(self.rule_counts[name])}
                for name in stage_names(self.recipe)
            ],
            "files_read": self.files_read,
            "files_written": self.files_written,
            "by_partition": dict(sorted(self.by_partition.items())),
            "counts": dict(sorted(self.counts.items())),
            "errors": sorted(self.errors),
        }

    @classmethod
    def from_dict(cls, recipe: Recipe, data: Mapping[str, Any]) -> FilterReport:
        """The report :meth:`as_dict` wrote, for ``recipe``."""
        return cls(
            recipe,
            read=data["read"],
            kept=data["kept"],
            files_read=data["files_read"],
            files_written=data["files_written"],
            rule_counts={r["name"]: RuleCounts(r["dropped_first"], r["dropped_alone"], r["null"])
                         for r in data["rules"]},
            by_partition={k: dict(v) for k, v in data["by_partition"].items()},
            counts=dict(data["counts"]),
            errors=list(data["errors"]),
        )

    def table(self) -> str:
        """The printed per-rule table: read = kept + Σ dropped (first failing rule)."""
        names = stage_names(self.recipe)
        width = max([len("kept"), *(len(name) for name in names)]) + 2
        lines = [
            f"filter recipe {self.recipe.name}: {self.read} documents read from {self.files_read} files",
            f"  {'rule':<{width}}{'dropped (first)':>16}{'fails (alone)':>15}{'null (kept)':>13}",
        ]
        for name in names:
            c = self.rule_counts[name]
            lines.append(f"  {name:<{width}}{c.dropped_first:>16}{c.dropped_alone:>15}{c.null:>13}")
        lines.append(f"  {'kept':<{width}}{self.kept:>16}")
        lines.append(f"  {'read':<{width}}{self.read:>16}")
        verdict = "ok" if self.identity_holds else "MISMATCH"
        lines.append(f"read == kept + sum(dropped first): {verdict}")
        if self.recipe.resample is not None:
            spec = ", ".join(f"{key}: {value}" for key, value in self.recipe.resample.describe().items())
            lines.append(f"  resample ({spec}): {self.kept} drawn")
        for key, value in sorted(self.counts.items()):
            lines.append(f"  {key}: {value}")
        return "\n".join(lines)


def sum_reports(recipe: Recipe, reports: Iterable[FilterReport]) -> FilterReport:
    """The reports of several files as one (commutative and associative, as a Beam combiner needs; no
    report is changed)."""
    total = FilterReport(recipe)
    for report in reports:
        total.absorb(report)
    return total


# ------------------------------------------------------------------------------------ checks before work


def check_sibling_datasets(root: str, recipe: Recipe) -> None:
    """Fail early, with the command to run, when the recipe reads a dedup flag nobody computed."""
    from pipeline.dataset.layout import document_files

    check_flags_computed(recipe, root, lambda dataset: bool(document_files([f"{root}/{dataset}"])))


def check_recipe(root: str, first_file: str, recipe: Recipe) -> None:
    """Before any work: the recipe fits the dataset's columns (those of ``first_file``, its first file)
    and the dedup flags it reads were computed; raises :class:`RecipeError` naming the rule."""
    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(first_file, compression_type="uncompressed") as handle:
        schema = pq.ParquetFile(handle, pre_buffer=False).schema_arrow
    recipe.check_schema(schema)
    check_sibling_datasets(root, recipe)


# ------------------------------------------------------------------------------------------- one file


def flag_values(root: str, shard: ShardFile, name: str) -> dict[str, bool | None] | None:
    """id -> dedup flag ``name`` (:func:`pipeline.filter.recipe.flag_source`) for the documents file
    ``shard`` of the run at ``root``, read from its sibling dataset's file; None when that file is absent.
    The one reading of a flag: recipes (:func:`sibling_flags`) and ``rpv2 export --format hf`` use it."""
    from apache_beam.io.filesystems import FileSystems

    from pipeline.dataset.files import read_parquet

    source = flag_source(name)
    path = shard.path(root, source.dataset)
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path, compression_type="uncompressed") as handle:
        table = read_parquet(handle, ["id", source.column])
    values = table.column(source.column).to_pylist()
    if source.negated:
        values = [None if v is None else not v for v in values]
    return dict(zip(table.column("id").to_pylist(), values, strict=True))


def computed_flags(root: str) -> list[str]:
    """The dedup flags computed for the run at ``root``, sorted: ``is_duplicate_exact`` when its dataset
    has files, ``is_fuzzy_duplicate_sim<t>`` for each ``clusters_sim<t>/documents`` dataset with files."""
    import re

    from pipeline.dataset.layout import document_files

    names = [DEDUP_EXACT_FLAG] if document_files([f"{root}/{DEDUP_EXACT_FLAG}"]) else []
    thresholds = {match.group(1) for path in document_files([f"{root}/clusters_sim*"])
                  if (match := re.search(r"/clusters_sim([0-9.]+)/documents/", path))}
    return sorted(names + [fuzzy_flag(t) for t in thresholds])


def sibling_flags(
    root: str, shard: ShardFile, flags: Sequence[str], report: FilterReport
) -> dict[str, dict | None]:
    """For each dedup flag the recipe reads: id -> flag for the documents file ``shard``, from the
    sibling datasets of the run at ``root``; a missing file is counted (its flags are null)."""
    out: dict[str, dict[str, bool | None] | None] = {}
    for name in flags:
        table = flag_values(root, shard, name)
        if table is None:
            report.count(f"files_without_{name}")
        out[name] = table
    return out


def _rows(
    batch: Any, recipe: Recipe, from_path: Mapping[str, str], flags: Mapping[str, dict | None]
) -> Iterator[dict[str, Any]]:
    """The rows of one batch as the rules and the resample weight see them: the columns they read, the
    partition values of the file's path (``from_path``) and the dedup ``flags`` by id."""
    needed = sorted((recipe.read_columns - set(flags) - set(from_path)) | {"id"})
    for row in batch.select(needed).to_pylist():
        row.update(from_path)
        for name, table in flags.items():
            row[name] = None if table is None else table.get(row["id"])
        yield row


def kept_batches(
    parquet: Any, recipe: Recipe, from_path: Mapping[str, str], flags: Mapping[str, dict | None],
    report: FilterReport, partition: str, cutoff: Candidate | None = None,
) -> Iterator[Any]:
    """The kept rows of an open documents file (every column, in order), batch by batch; every document
    read is counted in ``report``. When the recipe resamples, a document the rules keep is kept only if
    its candidate reaches the dataset's ``cutoff`` (:func:`pipeline.filter.resample.threshold`)."""
    import pyarrow as pa

    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, use_threads=False):
        mask = []
        for row in _rows(batch, recipe, from_path, flags):
            outcomes = rule_outcomes(recipe.rules, row)
            late = None
            if recipe.resample is not None and False not in outcomes:
                late = resample_drop(recipe, row, cutoff)
            mask.append(report.add(outcomes, partition, late))
        kept = batch.filter(pa.array(mask, type=pa.bool_()))
        if kept.num_rows:
            yield kept


@contextlib.contextmanager
def _open_for_recipe(
    path: str, root: str, shard: ShardFile, recipe: Recipe, report: FilterReport
) -> Iterator[tuple[Any, dict[str, str], dict[str, dict[str, bool | None]]]]:
    """One documents file opened for ``recipe``, as every pass over it needs it: (the ParquetFile, the
    partition values its path gives and its columns lack, the dedup flags the recipe reads from the
    sibling datasets). Raises RecipeError when the file's columns do not fit the recipe."""
    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    from pipeline.dataset.layout import partition_values

    with FileSystems.open(path, compression_type="uncompressed") as handle:
        parquet = pq.ParquetFile(handle, pre_buffer=False)
        schema = parquet.schema_arrow
        recipe.check_schema(schema)
        path_values = {k: v for k, v in partition_values(path).items() if k not in schema.names}
        flags = sibling_flags(root, shard, sorted(n for n in recipe.columns if is_dedup_flag(n)), report)
        yield parquet, path_values, flags


def resample_scan(path: str, root: str, recipe: Recipe, k: int | None) -> tuple[int, list[Candidate]]:
    """For a recipe that resamples: how many documents of one file the rules keep and the weight can weigh,
    and (``k`` given) their top-k candidates, largest first. A file :func:`filter_file` would skip (outside
    the layout, unreadable, not fitting the recipe) gives (0, []): it offers no document to the draw, and
    the writing pass counts it. Reads only the columns the rules and the weight need."""
    from pipeline.dataset.layout import from_path

    shard = from_path(path)
    if shard is None or recipe.resample is None:
        return 0, []
    try:
        with _open_for_recipe(path, root, shard, recipe, FilterReport(recipe)) as (parquet, path_values, flags):
            columns = sorted((recipe.read_columns - set(flags) - set(path_values)) | {"id"})
            eligible = 0
            heap: list[Candidate] = []  # the file's top k so far
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns, use_threads=False):
                for row in _rows(batch, recipe, path_values, flags):
                    if False in rule_outcomes(recipe.rules, row):
                        continue
                    candidate = recipe.resample.candidate(row)
                    if candidate is not None:
                        eligible += 1
                        if k is not None:
                            push_bounded(heap, candidate, k)
    except (RecipeError, OSError, ValueError, KeyError, TypeError):  # as filter_file: the file is skipped
        return 0, []
    return eligible, sorted(heap, reverse=True)


def filter_file(
    path: str, root: str, output: str, recipe: Recipe, cutoff: Candidate | None = None
) -> FilterReport:
    """Apply ``recipe`` to one documents file of the run at ``root`` and publish its kept rows, every
    column and in order, to the same path under ``<output>/documents/`` (atomically; a file with no kept
    row is not written, and one an earlier filter left there is removed). Returns this file's report.
    A recipe that resamples keeps the documents whose candidate reaches ``cutoff`` (None: none).

    A file outside the layout, unreadable, or whose columns do not fit the recipe is skipped: counted by
    reason (``files_outside_layout``, ``unreadable_files``, ``files_not_fitting_recipe``) and listed in
    ``errors``; it counts no document and publishes nothing."""
    import itertools

    from apache_beam.io.filesystems import FileSystems

    from pipeline.dataset.layout import from_path
    from pipeline.io.publish import publish

    shard = from_path(path)
    if shard is None:
        return FilterReport(recipe).skipped(
            path, "files_outside_layout", "not snapshot=<s>/language=<l>/bucket=<b>/<shard>.parquet"
        )
    report = FilterReport(recipe)
    destination = shard.path(output)
    try:
        with _open_for_recipe(path, root, shard, recipe, report) as (parquet, from_path_values, flags):
            schema = parquet.schema_arrow
            partition = f"{shard.snapshot}/{shard.language}/{shard.bucket}"
            batches = kept_batches(parquet, recipe, from_path_values, flags, report, partition, cutoff)
            first = next(batches, None)
            if first is None:
                if FileSystems.exists(destination):
                    FileSystems.delete([destination])
            else:
                kept = itertools.chain([first], batches)
                publish(destination, lambda sink: _write_parquet(sink, schema, kept))
                report.files_written += 1
    except RecipeError as exc:
        return FilterReport(recipe).skipped(shard.rel_path, "files_not_fitting_recipe", str(exc))
    except (OSError, ValueError, KeyError, TypeError) as exc:  # corrupt file, odd column types
        message = f"{type(exc).__name__}: {exc}"
        return FilterReport(recipe).skipped(shard.rel_path, "unreadable_files", message)
    report.files_read += 1
    return report


def _write_parquet(sink: Any, schema: Any, batches: Iterable[Any]) -> None:
    import pyarrow.parquet as pq

    from pipeline.io.publish import PARQUET_COMPRESSION

    with pq.ParquetWriter(sink, schema, compression=PARQUET_COMPRESSION) as writer:
        for batch in batches:
            writer.write_batch(batch)
