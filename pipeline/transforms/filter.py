"""`rpv2 filter` on Beam: a recipe applied to every documents file of a run, one file per unit of work.

Data flow (pipeline/filter/apply.py holds the logic; these transforms only move data)::

    documents file paths ─► Reshuffle (files spread over workers)
        ─► FilterFile: read in batches, dedup flags joined from the same file of the sibling datasets
           (is_duplicate_exact/, clusters_sim<t>/documents/), rule outcomes per document, kept rows
           published to <out>/documents/<same path> ─► that file's FilterReport, as Beam counters
        ─► CombineGlobally (the reports summed) ─► <out>/_filter_report.json

A recipe that resamples (pipeline/filter/resample.py) first draws, then writes::

    files ─► [fraction: ResampleCount (documents weighed per file) ─► summed ─► k = round(fraction * n)]
          ─► ResampleCandidates (k side input): per file, its top-k (Gumbel key, id) candidates
          ─► CombineGlobally(MergeTopK): one bounded top-k of the whole dataset ─► its smallest = the cutoff
          ─► FilterFile (cutoff side input): kept = rules pass and (key, id) >= cutoff

A document's key is a hash of (seed, id) plus its weight, the same on every worker, and (key, id) pairs
are totally ordered, so the merged top k, hence the files, do not depend on how files were spread.

No step holds more than one file's batch and its flags (and the resample's k candidates); the files are
independent, and the report's bytes do not depend on the order in which they were summed, so any runner
and worker count writes the same files. Counters (namespace ``rpv2.filter``): ``documents_read``,
``documents_kept``, per rule ``dropped_<rule>`` / ``fails_<rule>`` / ``null_<rule>`` (the resample's two
drop reasons as rules: ``dropped_resample_null_weight``, ``dropped_resample_not_selected``), files and
skips by reason; they equal the report.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.filter.apply import FilterReport, filter_file, resample_scan, sum_reports
from pipeline.filter.recipe import Recipe
from pipeline.filter.resample import Candidate, merge_top_k, threshold
from pipeline.progress import BEAM_NAMESPACE as PROGRESS_NAMESPACE

NAMESPACE = "rpv2.filter"
REPORT_FILE = "_filter_report.json"


def count_report(report: Any, namespace: str) -> None:
    """Report a file's report (FilterReport, ExportStats) as Beam counters of ``namespace``."""
    for name, value in sorted(report.counters().items()):
        Metrics.counter(namespace, name).inc(value)


class FilterFile(beam.DoFn):
    """documents file path -> its kept rows published, and its FilterReport (also counted)."""

    def __init__(self, root: str, output: str, recipe: Recipe):
        self.root = root
        self.output = output
        self.recipe = recipe

    def process(self, path: str, cutoff: Candidate | None = None):
        report = filter_file(path, self.root, self.output, self.recipe, cutoff)
        count_report(report, NAMESPACE)
        Metrics.counter(PROGRESS_NAMESPACE, "files_done").inc()  # units done, as the command's progress
        yield report


class MergeTopK(beam.CombineFn):
    """(k, a file's top-k candidates) elements -> the cutoff of the dataset's top k (None: nothing drawn).

    The accumulator is (k, top-k so far): bounded by k whatever the number of files, and merging is the
    top k of a union, associative and commutative, so the cutoff is the same for any grouping."""

    def create_accumulator(self) -> tuple[int, list[Candidate]]:
        return 0, []

    def add_input(self, accumulator, element):
        return self.merge_accumulators([accumulator, element])

    def merge_accumulators(self, accumulators):
        accumulators = list(accumulators)
        k = max(k for k, _ in accumulators)
        return k, merge_top_k((top for _, top in accumulators), k)

    def extract_output(self, accumulator) -> Candidate | None:
        return threshold(accumulator[1])


def weighed_count(path: str, root: str, recipe: Recipe) -> int:
    """How many documents of a file the rules keep and the resample weight can weigh."""
    return resample_scan(path, root, recipe, None)[0]


def file_candidates(path: str, root: str, recipe: Recipe, k: int) -> tuple[int, list[Candidate]]:
    """(k, the file's top-k candidates): a MergeTopK element."""
    return k, resample_scan(path, root, recipe, k)[1]


class DrawCutoff(beam.PTransform):
    """Documents file paths -> the one-element PCollection of the resample's cutoff candidate."""

    def __init__(self, root: str, recipe: Recipe):
        super().__init__()
        self.root = root
        self.recipe = recipe

    def expand(self, paths):
        resample = self.recipe.resample
        if resample.fraction is None:
            k = paths.pipeline | "K" >> beam.Create([resample.target(0)])
        else:  # k depends on how many documents the rules keep and the weight weighs: count them first
            k = (
                paths
                | "ResampleCount" >> beam.Map(weighed_count, self.root, self.recipe)
                | "SumWeighed" >> beam.CombineGlobally(sum)
                | "K" >> beam.Map(resample.target)
            )
        return (
            paths
            | "ResampleCandidates" >> beam.Map(file_candidates, self.root, self.recipe, beam.pvalue.AsSingleton(k))
            | "MergeTopK" >> beam.CombineGlobally(MergeTopK())
        )


def report_uri(output: str) -> str:
    return f"{output.rstrip('/')}/{REPORT_FILE}"


def write_filter_report(report: FilterReport, output: str) -> FilterReport:
    """``<output>/_filter_report.json``, atomically through Beam FileSystems."""
    from pipeline.io.publish import publish_bytes

    text = json.dumps(report.as_dict(), indent=1, sort_keys=False) + "\n"
    publish_bytes(text.encode("utf-8"), report_uri(output))
    return report


def read_filter_report(output: str, recipe: Recipe) -> FilterReport:
    """The report a finished pipeline wrote (the driver cannot see PCollection contents)."""
    from pipeline.io.publish import read_bytes

    return FilterReport.from_dict(recipe, json.loads(read_bytes(report_uri(output))))


class FilterDocuments(beam.PTransform):
    """Documents file paths of the run at ``root`` -> the kept documents under ``<output>/documents/``
    and ``<output>/_filter_report.json``; returns the one-element PCollection of the summed report."""

    def __init__(self, root: str, output: str, recipe: Recipe):
        super().__init__()
        self.root = root
        self.output = output
        self.recipe = recipe

    def expand(self, paths):
        paths = paths | "SpreadFiles" >> beam.Reshuffle()
        side: dict[str, Any] = {}
        if self.recipe.resample is not None:
            side["cutoff"] = beam.pvalue.AsSingleton(paths | "Draw" >> DrawCutoff(self.root, self.recipe))
        return (
            paths
            | "FilterFile" >> beam.ParDo(FilterFile(self.root, self.output, self.recipe), **side)
            | "SumReports" >> beam.CombineGlobally(functools.partial(sum_reports, self.recipe))
            | "WriteFilterReport" >> beam.Map(write_filter_report, self.output)
        )


def run_filter(
    input_uri: str | os.PathLike, output_uri: str | os.PathLike, recipe: Recipe, beam_args: Sequence[str] = ()
) -> tuple[FilterReport, dict[str, int]]:
    """``rpv2 filter``: apply ``recipe`` to the run (or documents dir) at ``input_uri``, writing under
    ``output_uri`` (any Beam filesystem URI; ``file://`` too). Returns the report as written and the
    pipeline's ``rpv2.filter`` counters.

    Before any work, raises FileNotFoundError (no documents dataset), OutputInsideInputError (the output
    is the input run or inside it) and RecipeError (the recipe does not fit the columns, or reads a dedup
    flag nobody computed)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.dataset.layout import locate_documents
    from pipeline.filter.apply import check_recipe
    from pipeline.io.publish import remove_stale_temporaries
    from pipeline.io.uris import local_path, refuse_output_inside_input
    from pipeline.transforms.runner import new_pipeline, run_and_wait
    from pipeline.transforms.summary import namespace_counters

    input_uri, output_uri = local_path(str(input_uri)), local_path(str(output_uri))
    root, files = locate_documents(input_uri)
    refuse_output_inside_input(root, output_uri)
    remove_stale_temporaries(str(output_uri))  # what a killed run left mid-publish
    check_recipe(root, files[0], recipe)
    pipeline = new_pipeline(PipelineOptions(list(beam_args)))
    paths = pipeline | "DocumentFiles" >> beam.Create(files)
    _ = paths | "Filter" >> FilterDocuments(root, output_uri, recipe)
    result = run_and_wait(pipeline)
    return read_filter_report(output_uri, recipe), namespace_counters(result, NAMESPACE)
