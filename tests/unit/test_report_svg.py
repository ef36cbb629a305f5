"""The report's SVG charts: well-formed, escaped, and drawn to scale."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from pipeline.report.svg import Series, _ticks, bar_chart, format_number, histogram_chart


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # inline SVG without a namespace: plain XML
    assert root.tag == "svg" and root.get("class") == "plot"
    return root


def test_bar_chart_bars_are_proportional_and_labels_escaped():
    categories = ["too_short", "<script>&\"x\"", "language_not_kept"]
    values = [22, 5, 11]
    root = _parse(bar_chart("dropped <by> reason", categories, [Series("n", values, "#c00")], plot_id="t"))
    assert root.find("title").text == "dropped <by> reason"
    bars = [r for r in root.iter("rect") if r.find("title") is not None]
    widths = [float(r.get("width")) for r in bars]
    assert len(bars) == len(values)
    for w, v in zip(widths, values, strict=True):
        assert math.isclose(w / max(widths), v / max(values), rel_tol=1e-2)
    assert any(t.text == "<script>&\"x\"" for t in root.iter("text"))


def test_stacked_bars_add_up_to_the_row_total():
    series = [Series("head", [8, 10], "#0a0"), Series("middle", [7, 10], "#aa0"), Series("tail", [11, 13], "#a00")]
    root = _parse(bar_chart("docs", ["de", "en"], series, plot_id="t", stacked=True))
    bars = [r for r in root.iter("rect") if r.find("title") is not None]
    assert len(bars) == 6
    per_row: dict[str, float] = {}
    for r in bars:
        per_row[r.get("y")] = per_row.get(r.get("y"), 0.0) + float(r.get("width"))
    totals = sorted(per_row.values())
    assert math.isclose(totals[0] / totals[1], 26 / 33, rel_tol=1e-2)
    assert {t.text for t in root.iter("text")} >= {"26", "33"}


@pytest.mark.parametrize("log", [False, True])
def test_histogram_steps_follow_the_shares(log):
    edges = np.logspace(1, 3, 5) if log else np.linspace(0, 1, 5)
    series = [Series("head", [1, 3, 0, 0], "#0a0"), Series("tail", [0, 0, 2, 2], "#a00")]
    root = _parse(histogram_chart("words", edges, series, plot_id="h", log=log))
    lines = list(root.iter("polyline"))
    assert len(lines) == 2
    points = [[tuple(map(float, p.split(","))) for p in line.get("points").split()] for line in lines]
    assert all(len(p) == 2 * 4 + 2 for p in points)
    # the highest step (head's 75 %) is the top of the plot; tail's 50 % steps lie 2/3 as high above the axis
    base = points[0][0][1]
    head_top = min(y for _, y in points[0])
    tail_top = min(y for _, y in points[1])
    assert math.isclose((base - tail_top) / (base - head_top), 0.5 / 0.75, rel_tol=1e-2)
    xs = [x for x, _ in points[0]]
    assert xs == sorted(xs)


def test_ticks_lie_in_range_and_are_round():
    assert _ticks(0, 1, False) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert _ticks(0, 250, False) == [0, 50, 100, 150, 200, 250]
    log = _ticks(37.0, 4200.0, True)
    assert all(37 <= t <= 4200 for t in log) and 100 in log and 1000 in log


def test_format_number():
    assert format_number(1234567) == "1,234,567"
    assert format_number(0.12345) == "0.123"
    assert format_number(float("nan")) == "–"
    assert format_number(999.6) == "1,000" and format_number(98.76) == "98.8"
