"""`rpv2 signals`: RedPajama-V2 quality signals (and MinHash) for CCNet-format documents.

Reads CCNet's document format (JSON lines, optionally gzip: url, raw_content, source_domain, language,
length, nlines, original_length, original_nlines, language_score, perplexity, bucket, cc_segment, ...)
and writes RPv2's signals record format, one JSON object per input document, as RPv2's worker does
(app/src/core/worker.py): ``{"id", "id_int", "metadata": {cc_segment, cc_net_source, url,
source_domain, language, snapshot_id}, "quality_signals": {name: [[start, end, score], ...]}}``.

Document ids are RPv2's: ``<uri_id>/<row>``, where ``row`` is the 0-based line of the record in the
input file and ``uri_id`` is the input path from its snapshot (``YYYY-MM``) onward, found with RPv2's
regex; ``--documents-root`` (path relative to a root) or ``--id-prefix`` (given) override it.

``--minhash-output`` writes RPv2's minhash parquet (shard_id, id, id_int, signature_sim1.0 .. 0.7)
with :class:`dedup.minhash.RPv2MinHash`.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import logging
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

from pipeline.export.rpv2_records import dumps_signals_record as _dumps
from pipeline.export.rpv2_records import signals_record

HELP = "RedPajama-V2 quality signals (+ MinHash) for CCNet-format JSON-lines documents"

log = logging.getLogger("rpv2.signals")

# RPv2 Worker: snapsh_re / uri_id_re
_SNAPSHOT_RE = re.compile(r"\b\d{4}-\d{2}\b")
_URI_ID_RE = re.compile(r"\b\d{4}-\d{2}\b/.*")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="CCNet-format documents: .jsonl or .jsonl.gz / .json.gz (local path or URI)")
    parser.add_argument("--artifacts", required=True, help="RPv2-layout artifacts directory")
    parser.add_argument("--output", required=True, help="signals output: .jsonl or .jsonl.gz / .json.gz")
    parser.add_argument("--minhash-output", default=None, help="also write RPv2's minhash parquet here")
    ids = parser.add_mutually_exclusive_group()
    ids.add_argument(
        "--id-prefix", default=None,
        help="the uri_id of the input (ids are <uri_id>/<row>), e.g. 2023-06/0000/en_head.json.gz",
    )
    ids.add_argument(
        "--documents-root", default=None,
        help="uri_id = the input path relative to this directory (as RPv2's listings)",
    )
    parser.add_argument("--snapshot-id", default=None, help="metadata snapshot_id (default: from the uri_id)")
    parser.add_argument(
        "--hash-mode", default="auto", choices=("auto", "stable", "rpv2"),
        help="DSIR feature hash (auto: from the artifacts; rpv2: RPv2's seed-42 hash(), emulated)",
    )
    parser.add_argument("--no-models", action="store_true", help="skip the classifier and DSIR signals (null)")
    parser.add_argument("--max-docs", type=int, default=-1, help="stop after this many documents")


def derive_uri_id(input_path: str, id_prefix: str | None = None, documents_root: str | None = None) -> str:
    """RPv2's ``uri_id`` of an input file (the part of the document id before the row)."""
    if id_prefix:
        return id_prefix.strip("/")
    if documents_root:
        return Path(os.path.relpath(input_path, documents_root)).as_posix()
    match = _URI_ID_RE.search(Path(input_path).as_posix())
    if match:
        return match.group(0)
    return Path(input_path).name


def snapshot_of(uri_id: str) -> str | None:
    match = _SNAPSHOT_RE.search(uri_id)
    return match.group(0) if match else None


def _open_text(path: str, mode: str) -> IO[str]:
    if "://" in path and not path.startswith("file://"):
        import smart_open

        return smart_open.open(path, mode, encoding="utf-8")
    local = path[len("file://"):] if path.startswith("file://") else path
    if local.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(local, mode[0] + "b"), encoding="utf-8", errors="surrogateescape")
    return open(local, mode, encoding="utf-8", errors="surrogateescape")


def main(args: argparse.Namespace) -> int:
    from signals.registry import QualitySignals

    uri_id = derive_uri_id(args.input, args.id_prefix, args.documents_root)
    snapshot_id = args.snapshot_id or snapshot_of(uri_id)
    computer = QualitySignals(args.artifacts, hash_mode=args.hash_mode, with_models=not args.no_models)
    minhasher = None
    if args.minhash_output:
        from dedup.minhash import RPv2MinHash

        minhasher = RPv2MinHash()

    counts: Counter[str] = Counter()
    minhash_rows: list[dict[str, Any]] = []
    num_chars = 0
    started = time.perf_counter()
    out_path = args.output
    tmp_path = None
    if "://" not in out_path:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        tmp_path = str(Path(out_path).with_name(f".{Path(out_path).name}.tmp-{os.getpid()}"))
        if out_path.endswith(".gz") and not tmp_path.endswith(".gz"):
            tmp_path += ".gz"
    with _open_text(args.input, "r") as src, _open_text(tmp_path or out_path, "w") as dst:
        row = -1
        while True:
            try:
                line = src.readline()
            except (OSError, EOFError, UnicodeDecodeError) as exc:  # corrupt gzip / truncated file
                counts["unreadable_input_tail"] += 1
                log.error("%s: stopped reading after row %d: %s: %s", args.input, row, type(exc).__name__, exc)
                break
            if not line:
                break
            row += 1
            if 0 < args.max_docs <= counts["documents_written"]:
                break
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                counts["bad_json_lines"] += 1
                log.error("%s/%d: skipped: %s", uri_id, row, exc)
                continue
            if not isinstance(record.get("raw_content"), str):
                counts["records_without_text"] += 1
                log.error("%s/%d: skipped: raw_content missing or not a string", uri_id, row)
                continue
            doc = computer.document(record)  # the views shared by the signals and the MinHash
            num_chars += doc.num_chars
            out = signals_record(record, computer.compute_document(doc, record), uri_id, row, snapshot_id)
            dst.write(_dumps(out))
            dst.write("\n")
            counts["documents_written"] += 1
            if minhasher is not None:
                bands = minhasher.banded_signatures(doc.normalized_words)
                minhash_rows.append({"shard_id": uri_id, "id": out["id"], "id_int": out["id_int"], **bands})
    if tmp_path:
        os.replace(tmp_path, out_path)
    if minhasher is not None:
        from dedup.minhash import write_rpv2_minhash_parquet

        write_rpv2_minhash_parquet(args.minhash_output, minhash_rows)
    elapsed = max(time.perf_counter() - started, 1e-9)
    written = counts["documents_written"]
    print(f"rpv2 signals: {written} documents from {args.input} (uri_id {uri_id}) -> {out_path}")
    for key in ("bad_json_lines", "records_without_text", "unreadable_input_tail"):
        if counts[key]:
            print(f"  {key}: {counts[key]}")
    for key, value in sorted(computer.missing_artifacts.items()):
        print(f"  missing artifact {key}: {value} documents (signal null)")
    if args.minhash_output:
        print(f"  minhash: {len(minhash_rows)} rows -> {args.minhash_output}")
    print(f"  {written / elapsed:.0f} docs/s, {num_chars / elapsed / 1e6:.2f} M chars/s")
    return 0 if not counts["unreadable_input_tail"] else 1
