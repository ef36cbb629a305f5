"""Our Parquet output in a layout HuggingFace ``datasets`` loads with every column, one file at a time.

The run's documents dataset is a plain hive dataset: ``snapshot``, ``language`` and ``bucket`` live only in
the directory names (pipeline/dataset/schema.py, PARTITION_COLUMNS). DuckDB, Polars, Spark and pyarrow
restore them from the paths; ``datasets.load_dataset("parquet", ...)`` does not (they are missing from its
features, and ``ds.filter(lambda r: r["language"] == "en")`` fails with a KeyError). And RPv2's MinHash
columns are named ``signature_sim0.7`` ..., which Spark SQL and other engines that read a dot as a struct
field accessor take for a nested path. So ``rpv2 export --format hf`` writes, per documents file::

    <out>/data/<snapshot>/<language>/<bucket>/<shard:04d>.parquet

the same rows in the same order and row groups, with the partition values as real string columns (last,
in the order DuckDB and Polars append them when they read the hive dataset) and each ``signature_sim<t>``
column under its undotted name ``signature_sim<t with "_" for ".">`` (``signature_sim0_7``); with
``signature_names="both"`` RPv2's dotted column is kept too (the bands, incompressible hashes, are then
stored twice). The directory names hold no ``key=value`` segments, so no reader sees a
partition column twice. ``<out>/README.md`` is a dataset card whose ``configs`` name the whole dataset
(``default``) and each ``<language>_<bucket>``, so ``load_dataset(out, "en_head")`` loads one of them.

:func:`export_hf_file` exports one file (read a row group at a time through Beam FileSystems, written to a
local temporary file, published whole) and returns its :class:`HFExportStats`; the Beam pipeline over
every file is pipeline/transforms/export.py. An output file's bytes depend on its source file alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dedup.minhash import signature_threshold
from pipeline.dataset.layout import ShardFile
from pipeline.dataset.schema import PARTITION_COLUMNS
from pipeline.export.stats import FileStats
from pipeline.filter.recipe import fuzzy_threshold

DATA_DIR = "data"
CARD_FILE = "README.md"
SIGNATURE_NAMES = ("undotted", "both")  # the HF files' MinHash columns: undotted only, or both spellings
DEFAULT_CONFIG = "default"
FLAG_SOURCE = "flag:"  # hf_columns' source of a dedup flag column (joined by id, not read from the file)


def hf_rel_path(shard: ShardFile) -> str:
    """``data/2023-06/en/head/0003.parquet``: where a documents file goes in the HF layout."""
    return f"{DATA_DIR}/{shard.snapshot}/{shard.language}/{shard.bucket}/{shard.shard:04d}.parquet"


def config_name(language: str, bucket: str) -> str:
    """The dataset card's config of one (language, bucket): ``en_head``."""
    return f"{language}_{bucket}"


def undotted(name: str) -> str:
    """A column name without dots (``signature_sim0.7`` -> ``signature_sim0_7``), for engines that read a
    dot as a nested-field accessor."""
    return name.replace(".", "_")


def hf_columns(
    names: Sequence[str], signature_names: str = "undotted", flags: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """(output column, source column) for a documents file's columns ``names``: every column as it is, a
    ``signature_sim<t>`` column under its undotted name (and, with ``signature_names="both"``, also
    under its own), the dedup ``flags`` under their undotted names (source ``flag:<name>``: joined by id
    from the run's sibling datasets), then the partition columns that are not stored in the file (source
    ``""``: their value comes from the path)."""
    if signature_names not in SIGNATURE_NAMES:
        raise ValueError(f"signature names {signature_names!r}: expected one of {', '.join(SIGNATURE_NAMES)}")
    columns: list[tuple[str, str]] = []
    for name in names:
        if signature_threshold(name) is None or "." not in name:
            columns.append((name, name))
            continue
        if signature_names == "both":
            columns.append((name, name))
        columns.append((undotted(name), name))
    columns += [(undotted(flag), FLAG_SOURCE + flag) for flag in flags]
    taken = {out for out, _ in columns}
    columns += [(name, "") for name in PARTITION_COLUMNS if name not in names and name not in taken]
    return columns


def hf_table(
    table: Any, columns: Sequence[tuple[str, str]], values: Mapping[str, str],
    flags: Mapping[str, Mapping[str, bool | None] | None] | None = None,
) -> Any:
    """A pyarrow Table of a documents file (or one of its row groups) as the HF file holds it: ``columns``
    as :func:`hf_columns` gives them, the partition columns filled with ``values`` (from the path), each
    dedup flag column from ``flags`` (flag -> id -> value; None, or an id it lacks: null)."""
    import pyarrow as pa

    arrays, names = [], []
    ids: list[str] | None = None
    for out, source in columns:
        if source.startswith(FLAG_SOURCE):
            by_id = (flags or {}).get(source[len(FLAG_SOURCE):])
            if by_id is None or "id" not in table.column_names:
                arrays.append(pa.nulls(table.num_rows, type=pa.bool_()))
            else:
                ids = ids if ids is not None else table.column("id").to_pylist()
                arrays.append(pa.array([by_id.get(doc_id) for doc_id in ids], type=pa.bool_()))
        elif source:
            arrays.append(table.column(source))
        else:
            arrays.append(pa.array([values[out]] * table.num_rows, type=pa.string()))
        names.append(out)
    return pa.Table.from_arrays(arrays, names=names)


@dataclass
class HFExportStats(FileStats):
    """What an HF export wrote (files, documents, documents per ``<language>_<bucket>`` config) and what it
    could not: of one file, or summed over files (:func:`sum_hf_stats`)."""

    configs: Counter = field(default_factory=Counter)  # config name -> documents
    signatures: list[str] = field(default_factory=list)  # RPv2's signature_sim<t> columns met, sorted
    flags: list[str] = field(default_factory=list)  # the dedup flags joined (recipe names), sorted

    def absorb(self, other: HFExportStats) -> HFExportStats:  # type: ignore[override]
        """Add the stats of ``other`` (other files); returns self."""
        super().absorb(other)
        self.configs.update(other.configs)
        self.signatures = sorted(set(self.signatures) | set(other.signatures))
        self.flags = sorted(set(self.flags) | set(other.flags))
        return self

    def counters(self) -> dict[str, int]:
        """The stats as Beam counter values (namespace ``rpv2.export``), summed over files."""
        return {"files": self.files, "documents": self.documents, **self.counts}

    def as_dict(self) -> dict[str, Any]:
        """``_export_report.json``'s content (sorted: the same bytes for any order files were reported in)."""
        return {"format": "hf", "files": self.files, "documents": self.documents,
                "configs": dict(sorted(self.configs.items())), "signatures": self.signatures, "flags": self.flags,
                "counts": dict(sorted(self.counts.items())),
                "errors": sorted(self.errors)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HFExportStats:
        return cls(files=data["files"], documents=data["documents"], configs=Counter(data["configs"]),
                   signatures=list(data["signatures"]), flags=list(data.get("flags", [])),
                   counts=Counter(data["counts"]),
                   errors=list(data["errors"]))


def sum_hf_stats(stats: Iterable[HFExportStats]) -> HFExportStats:
    """The stats of several files as one (commutative and associative, as a Beam combiner needs)."""
    return HFExportStats.total(stats)


def export_hf_file(
    path: str, output: str, signature_names: str = "undotted", *, root: str = "", flags: Sequence[str] = ()
) -> HFExportStats:
    """Export one documents file to ``<output>/data/<snapshot>/<language>/<bucket>/<shard>.parquet``: read a
    row group at a time, written to a local temporary file, then published whole (pipeline.io.publish).
    Each dedup flag in ``flags`` (computed for the run at ``root``: pipeline.filter.apply.computed_flags)
    becomes a bool column, joined by id from the file's sibling in that flag's dataset; a sibling file
    that is absent leaves the column null and is counted (``files_without_<flag>``).

    A file outside the layout or unreadable is skipped: counted by reason (``files_outside_layout``,
    ``unreadable_files``) and listed in ``errors``."""
    return HFExportStats.of_file(
        path, "rpv2-export-hf-",
        lambda shard, work_dir: _export_hf_file(path, shard, output, signature_names, work_dir, root, flags))


def _export_hf_file(
    path: str, shard: ShardFile, output: str, signature_names: str, work_dir: str, root: str, flags: Sequence[str]
) -> HFExportStats:
    import os

    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    from pipeline.filter.apply import flag_values
    from pipeline.io.publish import PARQUET_COMPRESSION, publish_file

    values = {"snapshot": shard.snapshot, "language": shard.language, "bucket": shard.bucket}
    by_flag = {name: flag_values(root, shard, name) for name in flags}
    local = os.path.join(work_dir, "data.parquet")
    rows = 0
    with FileSystems.open(path, compression_type="uncompressed") as handle:
        parquet = pq.ParquetFile(handle, pre_buffer=False)
        try:
            columns = hf_columns(parquet.schema_arrow.names, signature_names, flags)
            schema = hf_table(parquet.schema_arrow.empty_table(), columns, values, by_flag).schema
            with pq.ParquetWriter(local, schema, compression=PARQUET_COMPRESSION) as writer:
                for index in range(parquet.num_row_groups):  # the source's row groups: bounded memory
                    group = hf_table(parquet.read_row_group(index, use_threads=False), columns, values, by_flag)
                    writer.write_table(group, row_group_size=max(group.num_rows, 1))
                    rows += group.num_rows
        finally:
            parquet.close()
    publish_file(local, f"{output.rstrip('/')}/{hf_rel_path(shard)}")
    stats = HFExportStats(files=1, documents=rows, flags=sorted(flags))
    for name, table in by_flag.items():
        if table is None:
            stats.counts[f"files_without_{name}"] += 1
    stats.signatures = sorted(source for out, source in columns
                              if source and out != source and not source.startswith(FLAG_SOURCE))
    stats.configs[config_name(shard.language, shard.bucket)] += rows
    return stats


_FLAG_MEANINGS = {  # by whether the flag is a fuzzy one
    False: "`rpv2 dedup exact`: true for a document whose text was seen before, in this or an earlier snapshot",
    True: "`rpv2 dedup fuzzy`: true for a member of a near-duplicate cluster that is not its representative",
}


def dataset_card(stats: HFExportStats, signature_names: str = "undotted") -> str:
    """``README.md`` of the HF layout: YAML ``configs`` (``default``: every file; one per
    ``<language>_<bucket>``) that ``datasets.load_dataset(DIR, NAME)`` reads, and what the columns are."""
    import yaml

    configs: list[dict[str, Any]] = [{
        "config_name": DEFAULT_CONFIG, "default": True,
        "data_files": [{"split": "train", "path": f"{DATA_DIR}/*/*/*/*.parquet"}],
    }]
    for name in sorted(stats.configs):
        language, _, bucket = name.rpartition("_")
        configs.append({"config_name": name,
                        "data_files": [{"split": "train", "path": f"{DATA_DIR}/*/{language}/{bucket}/*.parquet"}]})
    front = yaml.safe_dump({"configs": configs}, sort_keys=False, allow_unicode=True)
    table = "\n".join(f"| {name} | {count} |" for name, count in sorted(stats.configs.items()))
    aliases = ", ".join(f"`{undotted(n)}` (RPv2's `{n}`)" for n in stats.signatures) or "none"
    if stats.signatures and signature_names == "both":
        aliases += "; RPv2's dotted columns are kept as well"
    flags = "; ".join(f"`{undotted(n)}` ({_FLAG_MEANINGS[fuzzy_threshold(n) is not None]})" for n in stats.flags)
    return (
        f"---\n{front}---\n\n"
        "# rpv2 documents (HuggingFace datasets layout)\n\n"
        f"Written by `rpv2 export --format hf`: {stats.documents} documents in {stats.files} Parquet files, "
        f"`{DATA_DIR}/<snapshot>/<language>/<bucket>/<shard>.parquet`, one per file of the run's "
        "`documents/` dataset, rows in the same order.\n\n"
        "Columns: those of `rpv2 run`'s output, the dedup flags the run computed, then `snapshot`, `language` "
        "and `bucket` as real columns. "
        f"MinHash bands: {aliases}.\n\n"
        + (f"Dedup flags, joined by `id` (null where the run has no flag file for a documents file; a recipe "
           f"reads them under their dotted names): {flags}.\n\n" if flags else "")
        + "```python\n"
        "from datasets import load_dataset\n"
        "ds = load_dataset(\"DIR\", split=\"train\")              # every document (config `default`)\n"
        "en_head = load_dataset(\"DIR\", \"en_head\", split=\"train\")\n"
        "ds = load_dataset(\"parquet\", data_dir=\"DIR/data\", split=\"train\")\n"
        "```\n\n"
        "| config | documents |\n|---|---:|\n"
        f"{table}\n"
    )
