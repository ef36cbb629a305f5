"""Run accounting: per-shard statistics, their combination, the identity check and the summary.

Every document the readers produce is either kept (written to exactly one output file) or dropped for
one named reason, as datatrove's ``stat_update("dropped_<reason>")`` and CCNet's per-stage counters do;
so ``read == kept + sum(dropped)`` holds exactly, per shard and for the run, and is asserted here.
Shards report a :class:`ShardStats`; the pipeline combines them (CombineGlobally, so it works on every
runner) into one, and writes ``<out>/_run_summary.json`` from it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SUMMARY_FILE = "_run_summary.json"
MAX_LISTED_FAILURES = 1000  # the summary lists this many failures; the count is always exact


class AccountingError(AssertionError):
    """``read != kept + sum(dropped)``: a document was lost (or counted twice) without a reason."""


@dataclass
class ShardStats:
    """What one shard (or, after merging, a whole run) read, kept and dropped.

    ``dropped`` maps a reason (``too_short``, ``low_language_score``, ``language_not_kept``, ...) to a
    document count; ``events`` counts things that are not documents (HTTP retries, failed files,
    documents kept without an LM); ``failures`` lists the files or records that could not be read, each
    ``{"file", "offset", "reason", "message"}``.
    """

    shards: int = 0
    files: int = 0
    files_failed: int = 0
    documents_read: int = 0
    documents_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    kept_by_language_bucket: dict[str, int] = field(default_factory=dict)  # "en/head" -> n
    events: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    failures_total: int = 0
    bytes_read: int = 0  # bytes of input files read (as transferred: gzip-compressed WET/WARC)
    text_bytes: int = 0  # UTF-8 bytes of the documents' text as read (title + content)
    processing_seconds: float = 0.0  # sum over shards of their processing time (worker-seconds)
    # per declared step (and read, write): worker-seconds spent in it, and documents that entered it
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_documents: dict[str, int] = field(default_factory=dict)
    # of those, the seconds spent inside model libraries (pipeline/ccnet/model_time.py): per stage, and
    # per model (fasttext_lid, sentencepiece, kenlm, classifiers, dsir); the rest is rpv2's own code
    stage_model_seconds: dict[str, float] = field(default_factory=dict)
    model_seconds: dict[str, float] = field(default_factory=dict)
    # final URIs of the files one shard published (for the steps chained after it); never merged
    outputs: list[str] = field(default_factory=list)

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n

    def count_event(self, name: str, n: int = 1) -> None:
        self.events[name] = self.events.get(name, 0) + n

    def time_stage(self, name: str, documents: int, seconds: float) -> None:
        self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + seconds
        self.stage_documents[name] = self.stage_documents.get(name, 0) + documents

    def time_model(self, stage: str, model: str, seconds: float) -> None:
        """``seconds`` of stage ``stage``'s time were spent inside ``model`` (already in its stage time)."""
        self.stage_model_seconds[stage] = self.stage_model_seconds.get(stage, 0.0) + seconds
        self.model_seconds[model] = self.model_seconds.get(model, 0.0) + seconds

    def keep(self, language: str, bucket: str) -> None:
        self.documents_kept += 1
        key = f"{language}/{bucket}"
        self.kept_by_language_bucket[key] = self.kept_by_language_bucket.get(key, 0) + 1

    def add_failure(self, failure: Mapping[str, Any]) -> None:
        self.failures_total += 1
        if len(self.failures) < MAX_LISTED_FAILURES:
            self.failures.append(dict(failure))

    @property
    def documents_dropped(self) -> int:
        return sum(self.dropped.values())

    def check_accounting(self) -> None:
        """Raise :class:`AccountingError` unless read == kept + sum(dropped) and the per-language
        counts add up to kept."""
        if self.documents_read != self.documents_kept + self.documents_dropped:
            raise AccountingError(
                f"documents read ({self.documents_read}) != kept ({self.documents_kept}) + dropped "
                f"({self.documents_dropped}: {dict(sorted(self.dropped.items()))})"
            )
        if sum(self.kept_by_language_bucket.values()) != self.documents_kept:
            raise AccountingError(
                f"kept per language/bucket ({sum(self.kept_by_language_bucket.values())}) != kept "
                f"({self.documents_kept})"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShardStats:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


def _add_counts(into: dict[str, int], other: Mapping[str, int]) -> None:
    for key, value in other.items():
        into[key] = into.get(key, 0) + value


def _add_seconds(into: dict[str, float], other: Mapping[str, float]) -> None:
    for key, value in other.items():
        into[key] = into.get(key, 0.0) + value


def merge_stats(parts: Iterable[ShardStats]) -> ShardStats:
    """Sum shard statistics. Deterministic whatever the order of ``parts`` (failures are sorted)."""
    total = ShardStats()
    failures: list[dict[str, Any]] = []
    for part in parts:
        total.shards += part.shards
        total.files += part.files
        total.files_failed += part.files_failed
        total.documents_read += part.documents_read
        total.documents_kept += part.documents_kept
        _add_counts(total.dropped, part.dropped)
        _add_counts(total.kept_by_language_bucket, part.kept_by_language_bucket)
        _add_counts(total.events, part.events)
        failures.extend(part.failures)
        total.failures_total += part.failures_total
        total.bytes_read += part.bytes_read
        total.text_bytes += part.text_bytes
        total.processing_seconds += part.processing_seconds
        _add_seconds(total.stage_seconds, part.stage_seconds)
        _add_counts(total.stage_documents, part.stage_documents)
        _add_seconds(total.stage_model_seconds, part.stage_model_seconds)
        _add_seconds(total.model_seconds, part.model_seconds)
    failures.sort(key=lambda f: (str(f.get("file")), int(f.get("offset") or 0), str(f.get("reason"))))
    total.failures = failures[:MAX_LISTED_FAILURES]
    return total


def build_summary(
    stats: ShardStats, *, wall_seconds: float, run_info: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The run summary: ``_run_summary.json``'s content. Checks the accounting identity first."""
    stats.check_accounting()
    by_language: dict[str, dict[str, int]] = {}
    for key, count in sorted(stats.kept_by_language_bucket.items()):
        language, bucket = key.split("/", 1)
        by_language.setdefault(language, {})[bucket] = count
    wall = max(wall_seconds, 1e-9)
    busy = max(stats.processing_seconds, 1e-9)
    return {
        "run": dict(run_info or {}),
        "shards": stats.shards,
        "files": {"in_shards": stats.files, "failed": stats.files_failed},
        "documents": {
            "read": stats.documents_read,
            "kept": stats.documents_kept,
            "dropped": stats.documents_dropped,
            "dropped_by_reason": dict(sorted(stats.dropped.items())),
        },
        "kept_by_language_bucket": by_language,
        "events": dict(sorted(stats.events.items())),
        "failures": {"count": stats.failures_total, "listed": stats.failures},
        "stages": stage_table(stats),
        "time_split": time_split(stats),
        "throughput": {
            "wall_seconds": round(wall_seconds, 3),
            "worker_seconds": round(stats.processing_seconds, 3),
            "docs_per_second": round(stats.documents_read / wall, 1),
            "mb_per_second": round(stats.bytes_read / 1e6 / wall, 3),
            "text_mb_per_second": round(stats.text_bytes / 1e6 / wall, 3),
            "docs_per_worker_second": round(stats.documents_read / busy, 1),
            "mb_read": round(stats.bytes_read / 1e6, 3),
            "text_mb_read": round(stats.text_bytes / 1e6, 3),
        },
        "accounting": "read == kept + sum(dropped): ok",
    }


def stage_table(stats: ShardStats) -> dict[str, dict[str, float]]:
    """Per stage, in the order the shards ran them: worker-seconds, documents in, documents per
    worker-second, and share of the stages' total time, so a user sees where the time goes."""
    from pipeline.shard.plan import KNOWN_STEPS

    order = {name: index for index, name in enumerate((*KNOWN_STEPS, "write"))}
    total = sum(stats.stage_seconds.values()) or 1e-9
    ordered = sorted(stats.stage_seconds.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))
    return {
        name: {
            "seconds": round(seconds, 3),
            "documents": stats.stage_documents.get(name, 0),
            "docs_per_second": round(stats.stage_documents.get(name, 0) / max(seconds, 1e-9), 1),
            "share": round(seconds / total, 3),
            "model_seconds": round(stats.stage_model_seconds.get(name, 0.0), 3),
        }
        for name, seconds in ordered
    }


def time_split(stats: ShardStats) -> dict[str, Any]:
    """The stages' worker-seconds split into the model libraries' calls (fastText LID, SentencePiece,
    KenLM, and inside the signals the fastText classifiers and DSIR; per model) and rpv2's own code (the
    rest: reading, line dedup, normalization, rule-based signals, MinHash, Parquet, the loop itself).
    The models' share is what no change to rpv2's code can remove; the own code's is what is left to
    win. Start-up and the runner's own overhead are outside the stages, so outside this split."""
    from pipeline.ccnet.model_time import MODELS

    total = sum(stats.stage_seconds.values())
    models = sum(stats.model_seconds.values())
    order = {name: index for index, name in enumerate(MODELS)}
    return {
        "stage_seconds": round(total, 3),
        "model_seconds": round(models, 3),
        "own_code_seconds": round(total - models, 3),
        "own_code_share": round((total - models) / total, 3) if total > 0 else 0.0,
        "by_model": {
            name: round(seconds, 3)
            for name, seconds in sorted(stats.model_seconds.items(), key=lambda i: (order.get(i[0], len(order)), i[0]))
        },
    }


def summary_json(summary: Mapping[str, Any]) -> str:
    return json.dumps(summary, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def format_table(summary: Mapping[str, Any]) -> str:
    """The human-readable table printed at the end of ``rpv2 run``."""
    docs = summary["documents"]
    thr = summary["throughput"]
    width = max([44, *(len(name) + 4 for name in summary["events"])])
    lines = ["", "rpv2 run summary", "=" * (width + 14)]

    def row(label: str, value: Any) -> None:
        lines.append(f"{label:<{width}}{value:>14}")

    row("shards", summary["shards"])
    row("files in the shards", summary["files"]["in_shards"])
    row("files failed", summary["files"]["failed"])
    row("documents read", docs["read"])
    row("documents kept", docs["kept"])
    row("documents dropped", docs["dropped"])
    for reason, count in docs["dropped_by_reason"].items():
        row(f"  dropped: {reason}", count)
    lines.append("-" * (width + 14))
    for language, buckets in summary["kept_by_language_bucket"].items():
        for bucket, count in buckets.items():
            row(f"  kept {language} / {bucket}", count)
    if summary["events"]:
        lines.append("-" * (width + 14))
        for name, count in summary["events"].items():
            row(f"  {name}", count)
    stages = summary.get("stages") or {}
    if stages:
        lines.append("-" * (width + 14))
        lines.append(f"{'stage (worker-seconds, documents in, docs/s)':<{width}}")
        for name, stage in stages.items():
            row(f"  {name}", f"{stage['seconds']:.2f}s {stage['documents']} {stage['docs_per_second']:.0f}/s")
    split = summary.get("time_split") or {}
    if split.get("stage_seconds"):
        lines.append("-" * (width + 14))
        lines.append(f"{'time split (worker-seconds in the stages)':<{width}}")
        own_share = split["own_code_share"]
        row("  models", f"{split['model_seconds']:.2f}s {1 - own_share:.0%}")
        for name, seconds in split["by_model"].items():
            row(f"    {name}", f"{seconds:.2f}s")
        row("  own code (rpv2)", f"{split['own_code_seconds']:.2f}s {own_share:.0%}")
    lines.append("-" * (width + 14))
    row("wall time (s)", f"{thr['wall_seconds']:.1f}")
    row("throughput (docs/s)", f"{thr['docs_per_second']:.1f}")
    row("throughput (MB/s of input files)", f"{thr['mb_per_second']:.3f}")
    row("throughput (MB/s of document text)", f"{thr['text_mb_per_second']:.3f}")
    row("docs per worker-second", f"{thr['docs_per_worker_second']:.1f}")
    lines.append("=" * (width + 14))
    lines.append(summary["accounting"])
    failures = summary["failures"]
    if failures["count"]:
        lines.append(f"failed files/records: {failures['count']}")
        for failure in failures["listed"][:20]:
            lines.append(
                f"  {failure.get('file')} @ {failure.get('offset')}: {failure.get('reason')}: "
                f"{failure.get('message')}"
            )
        if failures["count"] > 20:
            lines.append(f"  ... {failures['count'] - 20} more in {SUMMARY_FILE}")
    return "\n".join(lines)
