"""`rpv2 export --format rpv2` on Beam: every documents file of a run in RPv2's release layout, one file
per unit of work.

Data flow (pipeline/export/rpv2.py holds the mapping and the records; these transforms only move data)::

    documents file paths ─► Reshuffle (files spread over workers)
        ─► ExportFile: read in batches ─► documents/…json.gz, quality_signals/…signals.json.gz,
           minhash/…minhash.parquet and, where duplicates_exact/ holds the same file,
           duplicates/…duplicates.parquet, each published whole
           ─► that file's ExportStats, as Beam counters
        ─► CombineGlobally (the stats summed) ─► <out>/_export_report.json

Each source file maps to its own output files, whose bytes depend on that file alone, so any runner and
worker count writes the same files. Counters (namespace ``rpv2.export``): ``files``, ``documents``,
``minhash_files``, ``duplicates_files`` and the counts by reason; they equal the report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import apache_beam as beam

from pipeline.export.rpv2 import ExportStats, export_file, sum_stats
from pipeline.transforms.filter import count_report

NAMESPACE = "rpv2.export"
REPORT_FILE = "_export_report.json"


class ExportFile(beam.DoFn):
    """documents file path -> its RPv2 files published, and its ExportStats (also counted)."""

    def __init__(self, root: str, output: str):
        self.root = root
        self.output = output

    def process(self, path: str):
        stats = export_file(path, self.root, self.output)
        count_report(stats, NAMESPACE)
        yield stats


def report_uri(output: str) -> str:
    return f"{output.rstrip('/')}/{REPORT_FILE}"


def write_export_report(stats: ExportStats, output: str) -> ExportStats:
    """``<output>/_export_report.json``, atomically through Beam FileSystems."""
    from pipeline.io.publish import publish_bytes

    text = json.dumps(stats.as_dict(), indent=1) + "\n"
    publish_bytes(text.encode("utf-8"), report_uri(output))
    return stats


def read_export_report(output: str) -> ExportStats:
    """The stats a finished pipeline wrote (the driver cannot see PCollection contents)."""
    from pipeline.io.publish import read_bytes

    return ExportStats.from_dict(json.loads(read_bytes(report_uri(output))))


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
            | "ExportFile" >> beam.ParDo(ExportFile(self.root, self.output))
            | "SumStats" >> beam.CombineGlobally(sum_stats)
            | "WriteExportReport" >> beam.Map(write_export_report, self.output)
        )


def run_export(
    input_uri: str | os.PathLike, output_uri: str | os.PathLike, beam_args: Sequence[str] = ()
) -> tuple[ExportStats, dict[str, int]]:
    """``rpv2 export --format rpv2``: export the run (or documents dir) at ``input_uri`` under
    ``output_uri`` (any Beam filesystem URI; ``file://`` too). Returns the stats as written and the
    pipeline's ``rpv2.export`` counters.

    Before any work, raises FileNotFoundError (no documents dataset) and OutputInsideInputError (the
    output is the input run or inside it)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.dataset.layout import locate_documents
    from pipeline.io.publish import remove_stale_temporaries
    from pipeline.io.uris import local_path, refuse_output_inside_input
    from pipeline.transforms.runner import new_pipeline, run_and_wait
    from pipeline.transforms.summary import namespace_counters

    input_uri, output_uri = local_path(str(input_uri)), local_path(str(output_uri))
    root, files = locate_documents(input_uri)
    refuse_output_inside_input(root, output_uri)
    remove_stale_temporaries(str(output_uri))  # what a killed run left mid-publish
    pipeline = new_pipeline(PipelineOptions(list(beam_args)))
    _ = pipeline | "DocumentFiles" >> beam.Create(files) | "Export" >> ExportRPv2(root, output_uri)
    result = run_and_wait(pipeline)
    return read_export_report(output_uri), namespace_counters(result, NAMESPACE)
