"""CCNet's perplexity buckets: head / middle / tail by per-language percentile cutoffs.

Reproduces facebookresearch/cc_net ``perplexity.PerplexityBucket``: with the language's 30th and 60th
percentile perplexities (p30, p60), a document is ``head`` if pp < p30, ``middle`` if pp < p60, else
``tail``; a language without cutoffs, or a document without a perplexity (cc_net's -1), is ``all``.

Cutoffs live in ``configs/perplexity_cutoffs.yaml`` (one source of truth); cc_net's own
``cutoff.csv`` (rows = percentiles 0..100, columns = languages) is read too.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import numpy as np

from pipeline.config import CONFIG_DIR

if TYPE_CHECKING:
    from pipeline.io.remote import RetryPolicy

Cutoffs = dict[str, tuple[float, float]]

HEAD, MIDDLE, TAIL, ALL = "head", "middle", "tail", "all"
HEAD_PERCENTILE = 30
TAIL_PERCENTILE = 60

# p30/p60 of the published CCNet models (cc_net/data/cutoff.csv, rows 30 and 60).
DEFAULT_CUTOFFS: Cutoffs = {
    "en": (340.0, 520.0),
    "de": (370.0, 590.0),
    "fr": (180.0, 330.0),
    "es": (180.0, 290.0),
    "it": (220.0, 360.0),
}

DEFAULT_CUTOFFS_PATH = CONFIG_DIR / "perplexity_cutoffs.yaml"


def perplexity_bucket(pp: float | None, lang: str | None, cutoffs: Mapping[str, tuple[float, float]]) -> str:
    """cc_net's ``PerplexityBucket.get_bucket``: "head", "middle", "tail", or "all" (no cutoffs/pp)."""
    if pp is None or lang not in cutoffs or pp < 0 or math.isnan(pp):
        return ALL
    p_head, p_tail = cutoffs[lang]
    if pp < p_head:
        return HEAD
    if pp < p_tail:
        return MIDDLE
    return TAIL


def read_cutoff_csv(
    path: str | os.PathLike[str], head: int = HEAD_PERCENTILE, tail: int = TAIL_PERCENTILE
) -> Cutoffs:
    """cc_net's cutoff.csv: first column the percentile, one column per language."""
    with open(path, newline="", encoding="utf-8") as f:
        return parse_cutoff_csv(f.read(), str(path), head, tail)


def parse_cutoff_csv(
    text: str, source: str, head: int = HEAD_PERCENTILE, tail: int = TAIL_PERCENTILE
) -> Cutoffs:
    """The text of a cc_net cutoff.csv (``source`` names it in errors)."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        raise ValueError(f"{source}: empty cutoffs file")
    header, body = rows[0], {row[0].strip(): row for row in rows[1:] if row}
    if str(head) not in body or str(tail) not in body:
        raise ValueError(f"{source}: no rows for percentiles {head} and {tail}")
    return {
        lang: (float(body[str(head)][i]), float(body[str(tail)][i]))
        for i, lang in enumerate(header)
        if i > 0 and lang.strip()
    }


def _parse_yaml_cutoffs(data: object, source: str) -> Cutoffs:
    table = data.get("cutoffs", data) if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise ValueError(f"{source}: expected a mapping `cutoffs: {{lang: {{p30: .., p60: ..}}}}`")
    out: Cutoffs = {}
    for lang, value in table.items():
        if isinstance(value, dict):
            head, tail = value.get("p30", value.get("head")), value.get("p60", value.get("tail"))
        elif isinstance(value, (list, tuple)) and len(value) == 2:
            head, tail = value
        else:
            raise ValueError(f"{source}: bad cutoffs for {lang!r}: {value!r}")
        if head is None or tail is None or float(head) > float(tail):
            raise ValueError(f"{source}: cutoffs for {lang!r} need p30 <= p60, got {value!r}")
        out[str(lang)] = (float(head), float(tail))
    return out


def load_cutoffs(path: str | os.PathLike[str] | None = None, retry: RetryPolicy | None = None) -> Cutoffs:
    """Per-language (p30, p60) from a YAML file (default configs/perplexity_cutoffs.yaml) or a cc_net CSV
    (``.csv``), given as a local path or any URI (``file://``, ``http(s)://``, ``s3://``, ``gs://``, read
    with :mod:`pipeline.io.remote`'s retries, ``retry`` a RetryPolicy): the launcher reads it, the
    workers get the values.

    Without a path and without the config file (e.g. a wheel install) the published CCNet defaults
    are returned.
    """
    from pipeline.io.uris import is_remote, local_path

    if path is None:
        if not DEFAULT_CUTOFFS_PATH.is_file():
            return dict(DEFAULT_CUTOFFS)
        path = DEFAULT_CUTOFFS_PATH
    source = os.fspath(path)
    if is_remote(source):
        from pipeline.io.remote import read_bytes

        text = read_bytes(source, retry=retry).decode("utf-8")
        name = urlparse(source).path
    else:
        name = local_path(source)
        text = Path(name).read_text(encoding="utf-8")
    if name.lower().endswith(".csv"):
        return parse_cutoff_csv(text, source)
    import yaml

    return _parse_yaml_cutoffs(yaml.safe_load(text) or {}, source)


def compute_cutoffs(
    perplexities: Iterable[float], head: int = HEAD_PERCENTILE, tail: int = TAIL_PERCENTILE
) -> tuple[float, float]:
    """(p30, p60) of a sample's perplexities (numpy's linear percentile, rounded to 1 decimal).

    Documents without a perplexity (negative or NaN) are left out. Used by ``rpv2 models calibrate``
    for self-built LMs, whose perplexity scale differs from the published models'.
    """
    values = np.asarray([p for p in perplexities if p is not None and p >= 0], dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise ValueError("no perplexities to compute cutoffs from")
    p_head, p_tail = np.percentile(values, [head, tail])
    return round(float(p_head), 1), round(float(p_tail), 1)


def write_cutoffs(path: str | os.PathLike[str], updates: Mapping[str, tuple[float, float]]) -> Cutoffs:
    """Write ``updates`` into a cutoffs YAML, keeping the other languages already there.

    Written to a temporary name then renamed, so a reader never sees half a file.
    """
    import yaml

    path = Path(path)
    current = load_cutoffs(path) if path.is_file() else {}
    current.update({lang: (float(h), float(t)) for lang, (h, t) in updates.items()})
    doc = {
        "cutoffs": {
            lang: {"p30": _number(h), "p60": _number(t)} for lang, (h, t) in sorted(current.items())
        }
    }
    header = (
        "# Perplexity cutoffs per language: head if pp < p30, middle if pp < p60, else tail (CCNet).\n"
        "# Written by `rpv2 models calibrate`; the defaults are those of the published CCNet models.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(header + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)
    return current


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)
