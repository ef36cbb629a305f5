"""pipeline/dataset/schema.py's signal_columns (RPv2 spans -> output columns) against a plain
transcription of its contract, on the signals of real multilingual documents and on odd inputs."""

from __future__ import annotations

import random
import re

from conftest import shared_path

from pipeline.dataset.schema import line_spans, signal_columns
from signals.registry import DOC_LEVEL, LINE_LEVEL, QualitySignals


def reference_columns(quality_signals, raw_content, doc_signals, line_signals):
    """One value per doc-level signal (its first span's score), one list per line-level signal in
    line-span order (null where RPv2 gives no span), every value a float or None."""
    def as_float(value):
        return None if value is None else float(value)

    columns = {}
    for name in doc_signals:
        spans = quality_signals.get(name) or ()
        columns[name] = as_float(spans[0][2]) if spans else None
    if line_signals:
        spans = [m.span() for m in re.finditer(r"([^\n]*\n|[^\n]+$)", raw_content)]  # RPv2's lines
        columns["line_spans"] = [{"start": s, "end": e} for s, e in spans]
        for name in line_signals:
            by_span = {(g[0], g[1]): g[2] for g in quality_signals.get(name) or ()}
            columns[name] = [as_float(by_span.get(span)) for span in spans]
    return columns


def real_documents() -> list[tuple[str, str]]:
    rng = random.Random(5)
    docs = []
    for lang in ("en", "de", "fr", "ru", "zh"):
        path = shared_path("realdata", "groundtruth", "langid", "lingua_sentences", f"{lang}.txt")
        lines = path.read_text(encoding="utf-8").split("\n")
        for start in range(0, 400, 20):
            docs.append(("\n".join(lines[start : start + rng.randrange(1, 20)]), lang))
    return docs + [("", "en"), ("\n\n", "en"), ("one line", "en"), ("ends with newline\n", "de")]


def test_columns_match_the_contract_on_real_documents():
    signals = QualitySignals(None)  # no artifacts: the ML and DSIR signals are null
    for text, lang in real_documents():
        quality = signals.compute({"raw_content": text, "language": lang, "source_domain": "example.com"})
        got = signal_columns(quality, text, tuple(DOC_LEVEL), tuple(LINE_LEVEL))
        assert got == reference_columns(quality, text, tuple(DOC_LEVEL), tuple(LINE_LEVEL))
        assert all(type(v) in (float, type(None)) for v in (got[n] for n in DOC_LEVEL))


def test_odd_spans_nulls_and_ints_are_flattened_as_the_contract_says():
    text = "first line\nsecond\nthird"
    spans = line_spans(text)
    cases = {
        "aligned_ints": [(s, e, i) for i, (s, e) in enumerate(spans)],
        "aligned_with_null": [(s, e, None if i == 1 else 0.5) for i, (s, e) in enumerate(spans)],
        "lists_not_tuples": [[s, e, 1] for s, e in spans],
        "missing_span": [(s, e, 2.0) for s, e in spans[1:]],
        "shifted_span": [(s + 1, e, 2.0) for s, e in spans],
        "bulletpoint_no_lines": [(0, 0, None)],
        "absent": None,
    }
    quality = {name: value for name, value in cases.items() if value is not None}
    quality["doc_int"] = [(0, len(text), 3)]
    quality["doc_null"] = [(0, len(text), None)]
    quality["doc_empty"] = []
    doc_signals = ("doc_int", "doc_null", "doc_empty", "doc_absent")
    got = signal_columns(quality, text, doc_signals, tuple(cases))
    assert got == reference_columns(quality, text, doc_signals, tuple(cases))
    assert got["aligned_ints"] == [0.0, 1.0, 2.0] and type(got["doc_int"]) is float
    assert got["missing_span"] == [None, 2.0, 2.0] and got["absent"] == [None, None, None]
