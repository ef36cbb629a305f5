"""The report page: one HTML file with its style and charts inline and nothing to fetch.

Sections: the run (documents read, kept, dropped by reason, kept per language and bucket, from
``_run_summary.json``), what the Parquet holds (documents and characters per snapshot, language and
bucket), the stage table (worker-seconds, documents, docs/s), duplicate rates, histograms of the key
signals per language with one line per bucket, and a recipe's funnel. Every number the run summary states
is shown with a ``data-key`` attribute naming where it comes from, so the page can be checked against the
summary. A Content-Security-Policy forbids any fetch; a tiny inline script records script errors and what
was drawn into ``#render-check`` (read by tests/integration/test_report_browser.py).

The page is a pure function of the scan: the same output dir gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from pipeline.ccnet.buckets import ALL, HEAD, MIDDLE, TAIL
from pipeline.report.scan import SUMMARY_FILE, Group, RunScan
from pipeline.report.svg import Series, bar_chart, color_of, format_number, histogram_chart

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:24px auto;
  max-width:1340px;color:#222;background:#f6f7f9;padding:0 16px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid #ccd}
h3{font-size:14px;margin:18px 0 6px} .muted{color:#667;font-size:12px}
section{background:#fff;border:1px solid #dde;border-radius:6px;padding:8px 16px 16px;margin-bottom:16px}
table{border-collapse:collapse;font-size:12px;margin:6px 0} td,th{padding:3px 8px;border-bottom:1px solid #eee}
th{text-align:left;background:#f0f2f5} td.n{text-align:right;font-variant-numeric:tabular-nums}
.row{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
.nc{width:248px;height:178px;border:1px dashed #bbb;display:flex;align-items:center;justify-content:center;
  color:#888;font-size:12px;text-align:center;background:#fafafa}
.warn{color:#a33;font-weight:bold} code{font-size:12px}
svg.plot{display:block;margin:4px 0}
"""
# records script errors and what was drawn; tests read it from the DOM (no script runs before it)
SELF_CHECK = """
(function(){var errors=[];
window.addEventListener('error',function(e){errors.push(String(e.message||e.type))},true);
window.addEventListener('load',function(){var plots=document.querySelectorAll('svg.plot'),empty=0;
for(var i=0;i<plots.length;i++){var b=plots[i].getBBox();if(!(b.width>0&&b.height>0)){empty++;}}
var out=document.getElementById('render-check');
out.textContent=JSON.stringify({errors:errors,plots:plots.length,empty_plots:empty});});})();
"""


def _cell(value: Any, key: str | None = None) -> str:
    """A table cell: numbers right-aligned and formatted; ``key`` names the summary fact it shows."""
    attr = f' data-key="{escape(key)}"' if key else ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="n"{attr}>{format_number(value)}</td>'
    return f"<td{attr}>{escape(str(value))}</td>"


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], keys: Iterable[Sequence[str | None]] | None = None,
           table_id: str = "") -> str:
    """A table; ``keys`` gives each cell's ``data-key`` (None: no key), row by row."""
    rows = list(rows)
    keys = list(keys) if keys is not None else [[None] * len(r) for r in rows]
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v, k) for v, k in zip(row, key_row, strict=True)) + "</tr>"
                   for row, key_row in zip(rows, keys, strict=True))
    ident = f' id="{escape(table_id)}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _percent(part: int, whole: int) -> str:
    """``part`` as a percentage of ``whole``; a dash when there is no whole."""
    return f"{100 * part / whole:.2f} %" if whole else "–"


def _buckets(groups: Iterable[Group]) -> list[str]:
    """The buckets of ``groups`` in CCNet's order (head, middle, tail, all), any other after them."""
    order = {bucket: i for i, bucket in enumerate((HEAD, MIDDLE, TAIL, ALL))}
    return sorted({g[2] for g in groups}, key=lambda b: (order.get(b, 9), b))


# ------------------------------------------------------------------------------------------ sections


def run_section(scan: RunScan) -> str:
    """Documents read, kept and dropped by reason; kept per language and bucket (the run summary)."""
    summary = scan.summary
    if summary is None:
        return (f'<section id="run"><h2>Run</h2><p class="muted">no {SUMMARY_FILE} in this directory '
                "(e.g. the output of <code>rpv2 filter</code>): the sections below come from the Parquet.</p>"
                "</section>")
    docs = summary.get("documents", {})
    reasons = dict(sorted(docs.get("dropped_by_reason", {}).items(), key=lambda kv: (-kv[1], kv[0])))
    parts = ['<section id="run"><h2>Run</h2>']
    run = summary.get("run", {})
    facts = [("snapshot", run.get("snapshot")), ("shards", summary.get("shards")),
             ("files in the shards", summary.get("files", {}).get("in_shards")),
             ("files failed", summary.get("files", {}).get("failed")),
             ("wall time (s)", summary.get("throughput", {}).get("wall_seconds")),
             ("accounting", summary.get("accounting"))]
    parts.append(_table(["run", ""], [(k, v if v is not None else "–") for k, v in facts]))
    rows = [("documents read", docs.get("read", 0)), ("documents kept", docs.get("kept", 0)),
            ("documents dropped", docs.get("dropped", 0))]
    rows += [(f"  dropped: {reason}", n) for reason, n in reasons.items()]
    keys = [[None, "documents.read"], [None, "documents.kept"], [None, "documents.dropped"]]
    keys += [[None, f"dropped.{reason}"] for reason in reasons]
    parts.append('<div class="row"><div>')
    parts.append(_table(["documents", "count"], rows, keys, table_id="documents"))
    parts.append("</div><div>")
    if reasons:
        parts.append(bar_chart("documents dropped, by reason", list(reasons),
                               [Series("dropped", list(reasons.values()), "#c0392b")], plot_id="dropped_by_reason"))
    parts.append("</div></div>")
    kept = summary.get("kept_by_language_bucket", {})
    buckets = _buckets((("", lang, b) for lang, per in kept.items() for b in per))
    languages = sorted(kept)
    rows, keys = [], []
    for lang in languages:
        per = kept[lang]
        rows.append([lang, *(per.get(b, 0) for b in buckets), sum(per.values())])
        keys.append([None, *(f"kept.{lang}.{b}" for b in buckets), f"kept.{lang}"])
    parts.append("<h3>Kept per language and bucket</h3>")
    parts.append(_table(["language", *buckets, "kept"], rows, keys, table_id="kept_by_language"))
    parts.append(_events(summary))
    parts.append("</section>")
    return "".join(parts)


def _events(summary: dict[str, Any]) -> str:
    """The summary's event counts and listed failures, folded (nothing when there are none)."""
    events = summary.get("events", {})
    failures = summary.get("failures", {})
    if not events and not failures.get("count"):
        return ""
    rows = sorted(events.items())
    listed = "".join(f"<li><code>{escape(str(f))}</code></li>" for f in failures.get("listed", [])[:50])
    return (f"<details><summary>events ({len(rows)}) and failures ({failures.get('count', 0)})</summary>"
            f"{_table(['event', 'count'], rows)}<ul>{listed}</ul></details>")


def parquet_section(scan: RunScan) -> str:
    """Documents and characters per snapshot, language and bucket, as the Parquet holds them."""
    parts = ['<section id="parquet"><h2>Documents and characters in the Parquet</h2>',
             f'<p class="muted">{scan.files} files under documents/; characters are the <code>length</code> '
             "column (characters of <code>raw_content</code>).</p>"]
    if not scan.documents:
        return "".join(parts) + "<p>no documents files.</p></section>"
    if scan.summary is not None:
        in_parquet, in_summary = sum(scan.documents.values()), scan.summary.get("documents", {}).get("kept")
        if in_summary is not None and in_parquet != in_summary:
            parts.append(f'<p class="warn">the Parquet holds {in_parquet:,} documents, the run summary says '
                         f"{in_summary:,} kept (files added or removed since the run?)</p>")
    rows = [[s, lang, b, scan.documents[(s, lang, b)], scan.characters.get((s, lang, b), 0)]
            for s, lang, b in scan.groups]
    keys = [[None, None, None, f"parquet.documents.{s}.{lang}.{b}", f"parquet.characters.{s}.{lang}.{b}"]
            for s, lang, b in scan.groups]
    parts.append('<div class="row"><div>')
    parts.append(_table(["snapshot", "language", "bucket", "documents", "characters"], rows, keys,
                        table_id="parquet_counts"))
    parts.append("</div><div>")
    languages, buckets = scan.languages, _buckets(scan.groups)
    for what, counts in (("documents", scan.documents), ("characters", scan.characters)):
        series = [Series(b, [sum(v for g, v in counts.items() if g[1] == lang and g[2] == b) for lang in languages],
                         color_of(b, i)) for i, b in enumerate(buckets)]
        parts.append(bar_chart(f"{what} per language and bucket", languages, series, plot_id=f"{what}_per_language",
                               stacked=True))
    parts.append("</div></div></section>")
    return "".join(parts)


def stages_section(scan: RunScan) -> str:
    """Per-stage worker-seconds, documents in and docs/s: where the time went."""
    stages = (scan.summary or {}).get("stages") or {}
    if not stages:
        return ""
    names = list(stages)
    rows = [[n, stages[n].get("seconds", 0.0), stages[n].get("documents", 0), stages[n].get("docs_per_second", 0.0),
             f"{100 * stages[n].get('share', 0.0):.1f} %"] for n in names]
    parts = ['<section id="stages"><h2>Stages</h2><div class="row"><div>',
             _table(["stage", "worker-seconds", "documents in", "docs/s", "share of time"], rows, table_id="stages"),
             "</div><div>",
             bar_chart("worker-seconds per stage", names, [Series("seconds", [r[1] for r in rows], "#3366aa")],
                       plot_id="stage_seconds", unit=" s"),
             bar_chart("throughput per stage (docs/s)", names, [Series("docs/s", [r[3] for r in rows], "#2e8b57")],
                       plot_id="stage_throughput"),
             "</div></div>"]
    throughput = (scan.summary or {}).get("throughput") or {}
    if throughput:
        parts.append(_table(["throughput", ""], sorted(throughput.items())))
    parts.append("</section>")
    return "".join(parts)


def dedup_section(scan: RunScan) -> str:
    """Exact and fuzzy duplicate rates per snapshot, language and bucket."""
    parts = ['<section id="dedup"><h2>Duplicates</h2>']
    if not scan.dedup:
        parts.append('<p class="muted">dedup did not run: no is_duplicate_exact/ and no clusters_sim*/documents/ '
                     "here (<code>rpv2 run --exact-dedup-state DIR --fuzzy-dedup 0.8</code> or "
                     "<code>rpv2 dedup</code>).</p></section>")
        return "".join(parts)
    parts.append('<p class="muted">exact: documents flagged <code>is_duplicate_exact</code> (a copy of a document '
                 "seen before); fuzzy: members of a near-duplicate cluster that are not its representative.</p>")
    groups = sorted({g for rate in scan.dedup for g in rate.documents})
    rows, keys = [], []
    for g in groups:
        row: list[Any] = list(g)
        key_row: list[str | None] = [None, None, None]
        for rate in scan.dedup:
            n, d = rate.documents.get(g, 0), rate.duplicates.get(g, 0)
            row += [d, _percent(d, n)]
            key_row += [f"dedup.{rate.name}.{'.'.join(g)}", None]
        rows.append(row)
        keys.append(key_row)
    total: list[Any] = ["all", "", ""]
    for rate in scan.dedup:
        n, d = sum(rate.documents.values()), sum(rate.duplicates.values())
        total += [d, _percent(d, n)]
    rows.append(total)
    keys.append([None] * len(total))
    headers = ["snapshot", "language", "bucket"]
    for rate in scan.dedup:
        headers += [f"{rate.name} duplicates", "rate"]
    parts.append('<div class="row"><div>')
    parts.append(_table(headers, rows, keys, table_id="dedup"))
    parts.append("</div><div>")
    languages = sorted({g[1] for g in groups})
    series = []
    for i, rate in enumerate(scan.dedup):
        values = []
        for lang in languages:
            n = sum(v for g, v in rate.documents.items() if g[1] == lang)
            d = sum(v for g, v in rate.duplicates.items() if g[1] == lang)
            values.append(100 * d / n if n else 0.0)
        series.append(Series(rate.name, values, color_of(rate.name, i)))
    parts.append(bar_chart("duplicate rate per language (%)", languages, series, plot_id="dedup_rates", unit=" %"))
    parts.append("</div></div></section>")
    return "".join(parts)


def signals_section(scan: RunScan) -> str:
    """One row per key signal, one histogram per language, one line per bucket; a language where the
    signal is null everywhere (or absent) is shown as not computed."""
    parts = ['<section id="signals"><h2>Quality signals</h2><p class="muted">share of each bucket\'s documents per '
             "bin, one line per bucket (the legend gives its documents with a value); values beyond the axis are counted in the end bins. "
             "Not computed: the column is absent or null for every document (e.g. a signal that needs an "
             "artifact the run did not have).</p>"]
    buckets = _buckets(scan.groups)
    for signal in scan.signals:
        per_group = scan.histograms.get(signal.column, {})
        parts.append(f'<h3>{escape(signal.label)} <code class="muted">{escape(signal.column)}</code></h3><div class="row">')
        for lang in scan.languages:
            hists = [(b, h) for b in buckets for g, h in per_group.items() if g[1] == lang and g[2] == b]
            if not hists:
                parts.append(f'<div class="nc" data-not-computed="{escape(signal.column)}.{escape(lang)}">'
                             f"{escape(lang)}<br>not computed</div>")
                continue
            merged: dict[str, Any] = {}
            for bucket, hist in hists:  # several snapshots: summed per bucket (edges are shared)
                merged[bucket] = hist.counts if bucket not in merged else merged[bucket] + hist.counts
            edges = hists[0][1].edges
            series = [Series(b, list(c), color_of(b, i)) for i, (b, c) in enumerate(merged.items())]
            parts.append(histogram_chart(f"{lang}", edges, series, log=signal.log,
                                         plot_id=f"hist.{signal.column}.{lang}"))
        parts.append("</div>")
    parts.append("</section>")
    return "".join(parts)


def recipe_section(scan: RunScan) -> str:
    """The recipe's funnel (per rule: dropped as the first failing rule, failing alone, null) and what it
    keeps per language and bucket."""
    recipe, funnel = scan.recipe, scan.funnel
    if recipe is None or funnel is None:
        return ""
    parts = [f'<section id="recipe"><h2>Recipe {escape(recipe.name)}</h2>',
             f'<p class="muted">{escape(recipe.description)} ({escape(recipe.source)}). A rule whose value is null '
             "does not drop the document. read = kept + Σ dropped (first).</p>"]
    if recipe.resample is not None:  # the draw needs every file's candidates first: `rpv2 filter` does it, the report does not
        parts.append('<p class="warn">This recipe also resamples the documents its rules keep. The report shows '
                     "the rules only: <em>kept</em> below is before the draw; <code>rpv2 filter</code> makes the draw "
                     "and reports its drops.</p>")
    rows = [[rule.name, rule.expr, funnel.rules[rule.name].dropped_first, funnel.rules[rule.name].dropped_alone,
             funnel.rules[rule.name].null] for rule in recipe.rules]
    keys = [[None, None, f"recipe.dropped_first.{r[0]}", f"recipe.dropped_alone.{r[0]}", f"recipe.null.{r[0]}"]
            for r in rows]
    rows += [["kept", "", funnel.kept, "", ""], ["read", "", funnel.read, "", ""]]
    keys += [[None, None, "recipe.kept", None, None], [None, None, "recipe.read", None, None]]
    parts.append(_table(["rule", "keeps documents where", "dropped (first)", "fails (alone)", "null (kept)"],
                        rows, keys, table_id="recipe_rules"))
    names = [rule.name for rule in recipe.rules]
    parts.append('<div class="row">')
    parts.append(bar_chart("funnel: documents dropped per rule", names, [
        Series("dropped first", [funnel.rules[n].dropped_first for n in names], "#c0392b"),
        Series("fails alone", [funnel.rules[n].dropped_alone for n in names], "#e8a090")],
        plot_id="recipe_funnel"))
    groups = sorted(funnel.by_group)
    labels = [f"{lang} / {b}" + (f" ({s})" if len({g[0] for g in groups}) > 1 else "") for s, lang, b in groups]
    kept = [funnel.by_group[g]["kept"] for g in groups]
    dropped = [funnel.by_group[g]["read"] - funnel.by_group[g]["kept"] for g in groups]
    parts.append(bar_chart("kept and dropped per language / bucket", labels,
                           [Series("kept", kept, "#2e7d32"), Series("dropped", dropped, "#bbbbbb")],
                           plot_id="recipe_kept", stacked=True))
    parts.append("</div>")
    rows = [[*g, funnel.by_group[g]["read"], funnel.by_group[g]["kept"],
             _percent(funnel.by_group[g]["kept"], funnel.by_group[g]["read"])] for g in groups]
    keys = [[None, None, None, None, f"recipe.kept.{'.'.join(g)}", None] for g in groups]
    parts.append(_table(["snapshot", "language", "bucket", "read", "kept", "kept %"], rows, keys,
                        table_id="recipe_by_group"))
    parts.append("</section>")
    return "".join(parts)


def render(scan: RunScan) -> str:
    """The whole page."""
    title = f"rpv2 report: {scan.root}"
    body = "".join(section(scan) for section in (run_section, parquet_section, stages_section, dedup_section,
                                                  signals_section, recipe_section))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{escape(title)}</title><style>{STYLE}</style><script>{SELF_CHECK}</script></head><body>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="muted">written by <code>rpv2 report</code>; every number comes from {SUMMARY_FILE} or '
        "from the Parquet under this directory.</p>"
        f'{body}<pre id="render-check" hidden></pre></body></html>\n'
    )
