"""`rpv2 export --format rpv2|hf` on Beam: every documents file of a run in RPv2's release layout, or in
the HuggingFace ``datasets`` layout (pipeline/export/hf.py), one file per unit of work.

Data flow (pipeline/export/rpv2.py holds the mapping and the records; these transforms only move data)::

    documents file paths ─► Reshuffle (files spread over workers)
        ─► ExportFile (ExportEachFile over export_file): read in batches ─► documents/…json.gz, quality_signals/…signals.json.gz,
           minhash/…minhash.parquet and, where duplicates_exact/ holds the same file,
           duplicates/…duplicates.parquet, each published whole
           ─► that file's ExportStats, as Beam counters
        ─► CombineGlobally (the stats summed) ─► <out>/_export_report.json

    --format hf: the same, with ExportHFFile (ExportEachFile over export_hf_file: one <out>/data/<snapshot>/<language>/<bucket>/<shard>.parquet
    per file, partition columns stored, undotted MinHash column names), and the summed stats also give
    <out>/README.md, the dataset card whose configs datasets.load_dataset reads

Each source file maps to its own output files, whose bytes depend on that file alone, so any runner and
worker count writes the same files. Counters (namespace ``rpv2.export``): ``files``, ``documents``,
``minhash_files``, ``duplicates_files`` (rpv2 only) and the counts by reason; they equal the report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.export.hf import HFExportStats, export_hf_file, sum_hf_stats
from pipeline.export.rpv2 import ExportStats, export_file, sum_stats
from pipeline.progress import BEAM_NAMESPACE as PROGRESS_NAMESPACE
from pipeline.transforms.filter import count_report

NAMESPACE = "rpv2.export"
REPORT_FILE = "_export_report.json"


class ExportEachFile(beam.DoFn):
    """documents file path -> its files in one export format published (``export(path)``, e.g.
    :func:`pipeline.export.rpv2.export_file` with its run and output bound), and that file's stats (also
    counted, and one unit of the command's progress)."""

    def __init__(self, export: Callable[[str], ExportStats | HFExportStats]):
        self.export = export

    def process(self, path: str):
        stats = self.export(path)
        count_report(stats, NAMESPACE)
        Metrics.counter(PROGRESS_NAMESPACE, "files_done").inc()  # units done, as the command's progress
        yield stats


def report_uri(output: str) -> str:
    return f"{output.rstrip('/')}/{REPORT_FILE}"


def write_export_report(stats: ExportStats | HFExportStats, output: str) -> ExportStats | HFExportStats:
    """``<output>/_export_report.json``, atomically through Beam FileSystems."""
    from pipeline.io.publish import publish_bytes

    text = json.dumps(stats.as_dict(), indent=1) + "\n"
    publish_bytes(text.encode("utf-8"), report_uri(output))
    return stats


def read_export_report(output: str, stats_type: type = ExportStats) -> ExportStats | HFExportStats:
    """The stats a finished pipeline wrote (the driver cannot see PCollection contents)."""
    from pipeline.io.publish import read_bytes

    return stats_type.from_dict(json.loads(read_bytes(report_uri(output))))


class ExportRPv2(beam.PTransform):
    """Documents file paths of the run at ``root`` -> RPv2's release layout under ``output`` and
    ``<output>/_export_report.json``; returns the one-element PCollection of the summed stats."""

    def __init__(self, root: str, output: str):
        super().__init__()
        self.root = root
        self.output = output

    def expand(self, paths):
        return (
            paths
            | "SpreadFiles" >> beam.Reshuffle()
            | "ExportFile" >> beam.ParDo(ExportEachFile(partial(export_file, root=self.root, output=self.output)))
            | "SumStats" >> beam.CombineGlobally(sum_stats)
            | "WriteExportReport" >> beam.Map(write_export_report, self.output)
        )


def write_hf_report_and_card(stats: HFExportStats, output: str, signature_names: str) -> HFExportStats:
    """``<output>/_export_report.json`` and the dataset card ``<output>/README.md``, each atomically."""
    from pipeline.export.hf import CARD_FILE, dataset_card
    from pipeline.io.publish import publish_bytes

    write_export_report(stats, output)
    publish_bytes(dataset_card(stats, signature_names).encode("utf-8"), f"{output.rstrip('/')}/{CARD_FILE}")
    return stats


class ExportHF(beam.PTransform):
    """Documents file paths -> the HuggingFace ``datasets`` layout under ``output`` (pipeline/export/hf.py),
    ``<output>/_export_report.json`` and ``<output>/README.md``; returns the one-element PCollection of the
    summed stats."""

    def __init__(self, output: str, signature_names: str = "undotted", *, root: str = "", flags: Sequence[str] = ()):
        super().__init__()
        self.output = output
        self.signature_names = signature_names
        self.root = root  # the run whose dedup ``flags`` (pipeline.filter.apply.computed_flags) are joined
        self.flags = tuple(flags)

    def expand(self, paths):
        return (
            paths
            | "SpreadFiles" >> beam.Reshuffle()
            | "ExportHFFile" >> beam.ParDo(ExportEachFile(
                partial(export_hf_file, output=self.output, signature_names=self.signature_names, root=self.root,
                        flags=self.flags)))
            | "SumStats" >> beam.CombineGlobally(sum_hf_stats)
            | "WriteReportAndCard" >> beam.Map(write_hf_report_and_card, self.output, self.signature_names)
        )


def _run_export_pipeline(input_uri: str | os.PathLike, output_uri: str | os.PathLike, beam_args: Sequence[str],
                         export: Callable[[str, str], beam.PTransform]) -> tuple[str, Any]:
    """The pipeline of every export format: ``export(root, output)`` applied to the documents files of
    the run at ``input_uri``. Returns (the output URI, the finished pipeline's result).

    Before any work, raises FileNotFoundError (no documents dataset) and OutputInsideInputError (the
    output is the input run or inside it)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.dataset.layout import locate_documents
    from pipeline.io.publish import remove_stale_temporaries
    from pipeline.io.uris import local_path, refuse_output_inside_input
    from pipeline.transforms.runner import new_pipeline, run_and_wait

    input_uri, output_uri = local_path(str(input_uri)), local_path(str(output_uri))
    root, files = locate_documents(input_uri)
    refuse_output_inside_input(root, output_uri)
    remove_stale_temporaries(str(output_uri))  # what a killed run left mid-publish
    pipeline = new_pipeline(PipelineOptions(list(beam_args)))
    _ = pipeline | "DocumentFiles" >> beam.Create(files) | "Export" >> export(root, output_uri)
    return output_uri, run_and_wait(pipeline)


def run_export(
    input_uri: str | os.PathLike, output_uri: str | os.PathLike, beam_args: Sequence[str] = ()
) -> tuple[ExportStats, dict[str, int]]:
    """``rpv2 export --format rpv2``: export the run (or documents dir) at ``input_uri`` under
    ``output_uri`` (any Beam filesystem URI; ``file://`` too). Returns the stats as written and the
    pipeline's ``rpv2.export`` counters. Raises before any work as :func:`_run_export_pipeline`."""
    from pipeline.transforms.summary import namespace_counters

    output, result = _run_export_pipeline(input_uri, output_uri, beam_args, ExportRPv2)
    return read_export_report(output), namespace_counters(result, NAMESPACE)


def run_export_hf(
    input_uri: str | os.PathLike, output_uri: str | os.PathLike, beam_args: Sequence[str] = (),
    *, signature_names: str = "undotted",
) -> tuple[HFExportStats, dict[str, int]]:
    """``rpv2 export --format hf``: the run (or documents dir) at ``input_uri`` in the HuggingFace
    ``datasets`` layout under ``output_uri`` (pipeline/export/hf.py). Returns the stats as written and the
    pipeline's ``rpv2.export`` counters. Raises ValueError for an unknown ``signature_names``, and before
    any work as :func:`_run_export_pipeline`."""
    from pipeline.export.hf import SIGNATURE_NAMES
    from pipeline.transforms.summary import namespace_counters

    if signature_names not in SIGNATURE_NAMES:
        raise ValueError(f"signature names {signature_names!r}: expected one of {', '.join(SIGNATURE_NAMES)}")
    from pipeline.filter.apply import computed_flags

    # the dedup flags the run has, found once here: every file gets the same columns (datasets needs one
    # schema across files), null where a file's flag file is missing
    output, result = _run_export_pipeline(
        input_uri, output_uri, beam_args,
        lambda root, out: ExportHF(out, signature_names, root=root, flags=computed_flags(root)),
    )
    return read_export_report(output, HFExportStats), namespace_counters(result, NAMESPACE)
