"""`rpv2 report OUT [--recipe FILE] --output report.html`: one self-contained HTML page about a run.

    rpv2 report rpv2-output --recipe configs/recipes/gopher.yaml --output report.html

For choosing thresholds before filtering: documents read, kept and dropped by reason, documents and
characters per snapshot, language and bucket, the per-stage table, duplicate rates (when dedup ran),
histograms of the key signals per language and bucket, and with ``--recipe`` its funnel (per rule: dropped
first, failing alone) and what it keeps per bucket. Charts are inline SVG; the page fetches nothing.
Reads column-projected pyarrow scans (pipeline/report/scan.py), no Beam.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands import command_error

HELP = "write one self-contained HTML page (inline SVG charts) about a run's output, optionally a recipe's funnel"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="output dir of `rpv2 run` (local path, or a URI pyarrow reads)")
    parser.add_argument("--recipe", help="filter recipe YAML to show the funnel of (e.g. configs/recipes/gopher.yaml)")
    parser.add_argument("--output", required=True, help="the HTML file to write (e.g. report.html)")


def main(args: argparse.Namespace) -> int:
    from pyarrow.lib import ArrowException

    from pipeline.filter.grammar import RecipeError
    from pipeline.filter.recipe import load_recipe
    from pipeline.report.html import render
    from pipeline.report.scan import ReportError, scan_run

    output = Path(args.output)
    if output.is_dir():
        return command_error("report", f"--output {args.output} is a directory; give the HTML file to write")
    if not output.parent.resolve().is_dir():
        return command_error("report", f"--output {args.output}: directory {output.parent} does not exist")
    try:
        recipe = load_recipe(args.recipe) if args.recipe else None
        scan = scan_run(args.out, recipe)
    except (RecipeError, ReportError) as exc:
        return command_error("report", str(exc))
    except OSError as exc:  # unreadable OUT (permissions, a URI no filesystem answers at)
        return command_error("report", f"{args.out}: {exc}".replace("\n", " "))
    except ArrowException as exc:  # a corrupt Parquet file met during the scan: after work started, exit 1
        command_error("report", f"{args.out}: {exc}".replace("\n", " "))
        return 1
    page = render(scan)
    partial = output.with_name(f".{output.name}.partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(output)  # a reader never sees half a page
    plots = page.count('<svg class="plot"')
    print(f"report: {output} ({len(page.encode('utf-8')) / 1024:.0f} KiB, {plots} charts, {scan.files} files read)")
    return 0
