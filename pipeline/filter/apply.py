"""Applying a recipe to a documents dataset: per-rule counts, dedup flags joined from sibling datasets,
and the kept rows written to the same layout.

Kept apart from the recipe model (pipeline/filter/recipe.py) and the grammar (pipeline/filter/grammar.py),
which are pure and read no data: this is the part that reads and writes Parquet and counts what happened
(null outcomes as the grammar defines them: kept, counted as ``null``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.filter.grammar import RecipeError, column_kinds
from pipeline.filter.recipe import DEDUP_EXACT_FLAG, Recipe, Rule, fuzzy_threshold, is_dedup_flag


def rule_outcomes(rules: Sequence[Rule], row: Mapping[str, Any]) -> list[bool | None]:
    """Every rule's outcome for one document; it is kept when none is False."""
    return [rule.keeps(row) for rule in rules]


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
        self.rule_counts = self.rule_counts or {rule.name: RuleCounts() for rule in self.recipe.rules}
        self.by_partition = self.by_partition or {}
        self.counts = self.counts or {}
        self.errors = self.errors or []

    def add(self, outcomes: Sequence[bool | None], partition: str) -> bool:
        """Count one document's rule outcomes; returns whether it is kept."""
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
        part = self.by_partition.setdefault(partition, {"read": 0, "kept": 0})
        part["read"] += 1
        if kept:
            self.kept += 1
            part["kept"] += 1
        return kept

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    @property
    def identity_holds(self) -> bool:
        return self.read == self.kept + sum(c.dropped_first for c in self.rule_counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "recipe": {"name": self.recipe.name, "description": self.recipe.description, "source": self.recipe.source},
            "read": self.read,
            "kept": self.kept,
            "dropped": self.read - self.kept,
            "read_equals_kept_plus_dropped_first": self.identity_holds,
            "null_semantics": "a rule whose value is null does not drop the document (counted as null)",
            "rules": [
                {"name": rule.name, "expr": rule.expr, **vars(self.rule_counts[rule.name])}
                for rule in self.recipe.rules
            ],
            "files_read": self.files_read,
            "files_written": self.files_written,
            "by_partition": dict(sorted(self.by_partition.items())),
            "counts": dict(sorted(self.counts.items())),
            "errors": self.errors,
        }

    def table(self) -> str:
        """The printed per-rule table: read = kept + Σ dropped (first failing rule)."""
        width = max([len("kept"), *(len(rule.name) for rule in self.recipe.rules)]) + 2
        lines = [
            f"filter recipe {self.recipe.name}: {self.read} documents read from {self.files_read} files",
            f"  {'rule':<{width}}{'dropped (first)':>16}{'fails (alone)':>15}{'null (kept)':>13}",
        ]
        for rule in self.recipe.rules:
            c = self.rule_counts[rule.name]
            lines.append(f"  {rule.name:<{width}}{c.dropped_first:>16}{c.dropped_alone:>15}{c.null:>13}")
        lines.append(f"  {'kept':<{width}}{self.kept:>16}")
        lines.append(f"  {'read':<{width}}{self.read:>16}")
        verdict = "ok" if self.identity_holds else "MISMATCH"
        lines.append(f"read == kept + sum(dropped first): {verdict}")
        for key, value in sorted(self.counts.items()):
            lines.append(f"  {key}: {value}")
        return "\n".join(lines)


def _flag_table(root: Path, rel_path: str, dataset: str, column: str) -> dict[str, bool | None] | None:
    """id -> flag from a sibling dataset file laid out like documents/ (None when the file is absent)."""
    import pyarrow.parquet as pq

    path = root / dataset / rel_path
    if not path.is_file():
        return None
    table = pq.read_table(path, columns=["id", column])
    return dict(zip(table.column("id").to_pylist(), table.column(column).to_pylist(), strict=True))


def _sibling_flags(
    root: Path, rel_path: str, flags: Sequence[str], report: FilterReport
) -> dict[str, dict[str, bool | None] | None]:
    """For each dedup flag the recipe reads: id -> flag for this file."""
    out: dict[str, dict[str, bool | None] | None] = {}
    for name in flags:
        if name == DEDUP_EXACT_FLAG:
            table = _flag_table(root, rel_path, DEDUP_EXACT_FLAG, DEDUP_EXACT_FLAG)
        else:
            rep = _flag_table(root, rel_path, f"clusters_sim{fuzzy_threshold(name)}/documents", "is_representative")
            table = None if rep is None else {k: (None if v is None else not v) for k, v in rep.items()}
        if table is None:
            report.count(f"files_without_{name}")
        out[name] = table
    return out


def check_sibling_datasets(root: Path, recipe: Recipe) -> None:
    """Fail early, with the command to run, when the recipe reads a dedup flag nobody computed."""
    for name in sorted(recipe.columns):
        if name == DEDUP_EXACT_FLAG and not (root / DEDUP_EXACT_FLAG).is_dir():
            raise RecipeError(
                f"{recipe.source}: reads {name} but {root / DEDUP_EXACT_FLAG} does not exist: run `rpv2 dedup exact`"
            )
        threshold = fuzzy_threshold(name)
        if threshold and not (root / f"clusters_sim{threshold}" / "documents").is_dir():
            raise RecipeError(
                f"{recipe.source}: reads {name} but {root}/clusters_sim{threshold}/documents does not exist: "
                f"run `rpv2 dedup fuzzy --threshold {threshold}`"
            )


def _with_partition_columns(schema: Any) -> Any:
    """The file schema plus the partition columns (snapshot, language, bucket) that live in its path."""
    import pyarrow as pa

    from pipeline.dataset.schema import PARTITION_COLUMNS

    for name in PARTITION_COLUMNS:
        if name not in schema.names:
            schema = schema.append(pa.field(name, pa.string()))
    return schema


def filter_dataset(input_path: str | Path, output: str | Path, recipe: Recipe) -> FilterReport:
    """Apply ``recipe`` to every documents file below ``input_path`` (a run output) and write the kept
    rows, all columns, to ``<output>/documents/`` in the same layout and order (a file with no kept row
    is not written). Unreadable files are counted and reported, never fatal; a recipe that does not fit
    the dataset's columns raises :class:`RecipeError` before anything is written."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.dataset.layout import partition_values
    from pipeline.export.rpv2 import resolve_documents_root, source_files
    from pipeline.io.publish import publish_file

    root, documents_dir = resolve_documents_root(input_path)
    files, strays = source_files(documents_dir)
    report = FilterReport(recipe)
    for rel in strays:
        report.count("files_outside_layout")
        report.errors.append(f"{rel}: skipped: not snapshot=<s>/language=<l>/bucket=<b>/<shard>.parquet")
    if files:
        recipe.check(column_kinds(_with_partition_columns(pq.read_schema(files[0].path))))
    check_sibling_datasets(root, recipe)
    flags = sorted(name for name in recipe.columns if is_dedup_flag(name))
    out_docs = Path(output) / "documents"
    for source in files:
        partition = f"{source.snapshot}/{source.language}/{source.bucket}"
        writer = None
        try:
            schema = pq.read_schema(source.path)
            recipe.check(column_kinds(_with_partition_columns(schema)))
            from_path = {k: v for k, v in partition_values(str(source.path)).items() if k not in schema.names}
            needed = sorted((recipe.columns - set(flags) - set(from_path)) | {"id"})
            sibling = _sibling_flags(root, source.rel_path, flags, report)
            destination = out_docs / source.rel_path
            # written locally, then published atomically (pipeline.io.publish)
            temporary = Path(output) / "_work" / f"{os.getpid()}-{destination.name}"
            with pq.ParquetFile(source.path) as reader:
                for batch in reader.iter_batches(batch_size=2000):
                    rows = batch.select(needed).to_pylist()
                    mask = []
                    for row in rows:
                        row.update(from_path)
                        for name in flags:
                            table = sibling[name]
                            row[name] = None if table is None else table.get(row["id"])
                        mask.append(report.add(rule_outcomes(recipe.rules, row), partition))
                    kept = batch.filter(pa.array(mask, type=pa.bool_()))
                    if kept.num_rows:
                        if writer is None:
                            temporary.parent.mkdir(parents=True, exist_ok=True)
                            writer = pq.ParquetWriter(temporary, schema, compression="zstd")
                        writer.write_batch(kept)
            report.files_read += 1
            if writer is not None:
                writer.close()
                publish_file(str(temporary), str(destination))
                temporary.unlink()
                report.files_written += 1
        except (OSError, ValueError, KeyError, TypeError) as exc:  # corrupt file, odd column types
            if isinstance(exc, RecipeError):
                raise
            if writer is not None:  # a file that broke midway publishes nothing
                writer.close()
                temporary.unlink(missing_ok=True)
            report.count("unreadable_files")
            report.errors.append(f"{source.rel_path}: skipped: {type(exc).__name__}: {exc}")
    return report
