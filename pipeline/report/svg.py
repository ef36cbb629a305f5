"""The report's charts as inline SVG text: horizontal bar charts (plain, grouped or stacked) and
histograms drawn as step lines, one line per series.

Pure string building: no plotting library, no script, no font or image to fetch, so the page stays one
self-contained file that any browser draws the same way. Every chart is an ``<svg class="plot">`` with a
``<title>``; every text is escaped. Numbers are placed with plain linear (or log10) scales.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

from pipeline.ccnet.buckets import ALL, HEAD, MIDDLE, TAIL

FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif"
PALETTE = ("#3366aa", "#e08a2c", "#c0392b", "#2e8b57", "#7d5ba6", "#8c6d31", "#d15ca3", "#5f7f8f")
BUCKET_COLORS = {HEAD: "#2e7d32", MIDDLE: "#e0a000", TAIL: "#c0392b", ALL: "#607d8b"}


@dataclass(frozen=True)
class Series:
    """One named, coloured row of values: a bar per category, or a histogram's counts per bin."""

    name: str
    values: Sequence[float]
    color: str


def color_of(name: str, index: int) -> str:
    """A bucket's own colour (the same in every chart), else the palette's."""
    return BUCKET_COLORS.get(name, PALETTE[index % len(PALETTE)])


def format_number(value: float) -> str:
    """Integers and values from 100 on with thousands separators, rounded; smaller ones with 3 significant
    digits."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 100:  # 3 significant digits would print 999.6 as 1e+03
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _text(x: float, y: float, content: str, *, anchor: str = "start", size: int = 11, weight: str = "normal",
          fill: str = "#222") -> str:
    """One escaped SVG text element."""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" font-weight="{weight}" '
            f'fill="{fill}">{escape(content)}</text>')


def _open(width: int, height: int, title: str, plot_id: str) -> str:
    """A chart's opening: the ``<svg class="plot">`` (``data-plot`` names it for the tests), its title
    element and its drawn title on a white background."""
    return (f'<svg class="plot" data-plot="{escape(plot_id)}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" style="{FONT}"><title>{escape(title)}</title>'
            f'<rect width="{width}" height="{height}" fill="#fff"/>'
            + _text(8, 16, title, size=13, weight="bold"))


def _legend(series: Sequence[Series], x: float, y: float, labels: Sequence[str] | None = None,
            size: int = 11) -> str:
    """A row of colour swatches with the series' names (or ``labels``) from (x, y)."""
    parts = []
    for i, s in enumerate(series):
        label = labels[i] if labels else s.name
        parts.append(f'<rect x="{x:.1f}" y="{y - size + 2:.1f}" width="{size - 1}" height="{size - 1}" '
                     f'fill="{s.color}"/>' + _text(x + size + 3, y, label, size=size))
        x += size + 12 + 0.58 * size * len(label)
    return "".join(parts)


def bar_chart(title: str, categories: Sequence[str], series: Sequence[Series], *, plot_id: str,
              stacked: bool = False, width: int = 660, unit: str = "") -> str:
    """Horizontal bars, one row per category: one bar per series side by side, or stacked into one bar
    (then the row's total is written at its end)."""
    label_width = min(260, 16 + 6.6 * max((len(c) for c in categories), default=4))
    rows_per_category = 1 if stacked or len(series) == 1 else len(series)
    bar, gap = 14, 8
    top = 30 + (18 if len(series) > 1 else 0)
    height = int(top + len(categories) * (rows_per_category * bar + gap) + 12)
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    largest = max(totals if stacked else [v for s in series for v in s.values], default=0) or 1
    plot_width = width - label_width - 90
    parts = [_open(width, height, title, plot_id)]
    if len(series) > 1:
        parts.append(_legend(series, label_width, 38))
    y = top
    for i, category in enumerate(categories):
        parts.append(_text(label_width - 6, y + bar * rows_per_category / 2 + 4, category, anchor="end"))
        x = label_width
        for j, s in enumerate(series):
            value = s.values[i]
            w = plot_width * value / largest
            row_y = y if stacked or rows_per_category == 1 else y + j * bar
            bar_x = x if stacked else label_width
            parts.append(f'<rect x="{bar_x:.1f}" y="{row_y:.1f}" width="{max(w, 0):.1f}" height="{bar - 2}" '
                         f'fill="{s.color}"><title>{escape(f"{category} {s.name}: {format_number(value)}{unit}")}'
                         f'</title></rect>')
            if stacked:
                x += w
            else:
                parts.append(_text(bar_x + w + 4, row_y + bar - 4, format_number(value) + unit, size=10))
        if stacked:
            parts.append(_text(x + 4, y + bar - 4, format_number(totals[i]) + unit, size=10))
        y += rows_per_category * bar + gap
    parts.append("</svg>")
    return "".join(parts)


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    """A few round tick values in [lo, hi]: 1, 2, 5 x 10^k on a log axis (powers of ten alone when those
    are too many), else at most five steps of 1, 2, 2.5 or 5 x 10^k."""
    if log:
        ticks = [m * 10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                 for m in (1, 2, 5)]
        inside = [t for t in ticks if lo <= t <= hi]
        if len(inside) > 7:
            inside = [t for t in inside if math.isclose(10 ** round(math.log10(t)), t)]
        return inside or [lo, hi]
    span = hi - lo
    step = 10 ** math.floor(math.log10(span / 4)) if span > 0 else 1
    for m in (1, 2, 2.5, 5, 10):
        if span / (m * step) <= 5:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def histogram_chart(title: str, edges: np.ndarray, series: Sequence[Series], *, plot_id: str, log: bool = False,
                    width: int = 250, height: int = 180) -> str:
    """Step lines of each series' share of its documents per bin (series of different sizes compare)."""
    left, right, top, bottom = 34, 10, 42, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    lo, hi = float(edges[0]), float(edges[-1])

    def x_of(value: float) -> float:
        if log:
            return left + plot_w * (math.log10(value) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        return left + plot_w * (value - lo) / (hi - lo)

    shares = [np.asarray(s.values, dtype=float) / max(float(np.sum(s.values)), 1.0) for s in series]
    top_share = max((float(s.max()) for s in shares if s.size), default=1.0) or 1.0

    def y_of(share: float) -> float:
        return top + plot_h * (1 - share / top_share)

    parts = [_open(width, height, title, plot_id)]
    labels = [f"{s.name} {int(np.sum(s.values))}" for s in series]
    parts.append(_legend(series, left, 31, labels, size=9))
    axis = "#888"
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="{axis}"/>')
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="{axis}"/>')
    for tick in _ticks(lo, hi, log):
        x = x_of(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 4}" stroke="{axis}"/>')
        parts.append(_text(x, top + plot_h + 15, format_number(tick), anchor="middle", size=9, fill="#555"))
    parts.append(_text(left - 4, top + 8, f"{top_share:.0%}", anchor="end", size=9, fill="#555"))
    parts.append(_text(left - 4, top + plot_h, "0", anchor="end", size=9, fill="#555"))
    for s, share in zip(series, shares, strict=True):
        points = [f"{x_of(lo):.1f},{y_of(0):.1f}"]
        for i, value in enumerate(share):
            y = y_of(float(value))
            points.append(f"{x_of(float(edges[i])):.1f},{y:.1f}")
            points.append(f"{x_of(float(edges[i + 1])):.1f},{y:.1f}")
        points.append(f"{x_of(hi):.1f},{y_of(0):.1f}")
        parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{s.color}" stroke-width="1.6" '
                     f'stroke-opacity="0.9"><title>{escape(s.name)}</title></polyline>')
    parts.append("</svg>")
    return "".join(parts)
