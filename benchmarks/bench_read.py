"""Reading benchmark: WET parsing throughput of rpv2's reader vs warcio and fastwarc.

Builds a gzip WET file with pipeline.sample.mirror (one gzip member per record, as CommonCrawl) from
real English Wikipedia text (realdata/corpora/wikitext-2_*.txt) with page sizes like CC's WET
(median ~3 KB), then reads it single-threaded with:

- ``rpv2``: pipeline.sources.wet.iter_wet_documents (records + CCNet document dicts + accounting);
- ``warcio``: warcio.ArchiveIterator, reading every conversion block (records only);
- ``fastwarc``: fastwarc 2's ArchiveIterator on the path (gzip auto-detected), reading every block;
- ``*+docs``: the same plus CCNet document building, so the comparison is like for like.

A last row measures the WARC input mode (HTML extraction with resiliparse) on the real
CC-MAIN-2020-34 WARC excerpt, repeated; its MB/s counts uncompressed WARC bytes.

Prints docs/s and MB/s (uncompressed WET MB) per core (from the process's CPU time, so other load
on a shared machine does not skew it) and wall-clock docs/s. Usage::

    python benchmarks/bench_read.py [--docs 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.sample.mirror import write_wet_file  # noqa: E402
from pipeline.sources.read_report import ReadReport  # noqa: E402
from pipeline.sources.wet import ccnet_lines, iter_wet_documents, make_document  # noqa: E402

SHARED = Path(os.environ.get("RPV2_SHARED", ROOT.parent / "shared"))


def corpus_lines() -> list[str]:
    lines: list[str] = []
    for name in ("wikitext-2_test.txt", "wikitext-2_valid.txt"):
        path = SHARED / "realdata" / "corpora" / name
        lines += [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return lines


def make_docs(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    lines = corpus_lines()
    docs = []
    for i in range(n):
        target = int(rng.lognormvariate(8.0, 0.8))  # median ~3 KB like CC WET pages
        body, size = [], 0
        while size < target:
            line = lines[rng.randrange(len(lines))]
            body.append(line)
            size += len(line) + 1
        docs.append(
            {
                "url": f"https://site{i % 997}.example.org/page/{i}",
                "title": f"Page {i}",
                "raw_content": "\n".join(body),
                "language": "eng",
            }
        )
    return docs


def _docs_from_block(url: str, date: str, digest: str, length: int, block: bytes) -> dict:
    lines = ccnet_lines(block.decode("utf-8", "replace"))
    return make_document(
        url=url,
        date_download=date,
        digest=digest,
        title=lines[0] if lines else "",
        body_lines=lines[1:],
        cc_segment="x",
        original_length=length,
    )


def read_rpv2(path: str) -> int:
    return sum(1 for _ in iter_wet_documents(path, min_len=0, report=ReadReport()))


def read_warcio(path: str, docs: bool) -> int:
    from warcio.archiveiterator import ArchiveIterator

    n = 0
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type != "conversion":
                continue
            block = rec.content_stream().read()
            if docs:
                h = rec.rec_headers
                _docs_from_block(
                    h.get_header("WARC-Target-URI"),
                    h.get_header("WARC-Date"),
                    h.get_header("WARC-Block-Digest"),
                    int(h.get_header("Content-Length")),
                    block,
                )
            n += 1
    return n


def read_fastwarc(path: str, docs: bool) -> int:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    n = 0
    for rec in ArchiveIterator(
        path, record_types=WarcRecordType.conversion, parse_http=False, fsspec_args=False
    ):
        block = rec.reader.read()
        if docs:
            h = rec.headers
            _docs_from_block(
                h.get("WARC-Target-URI"),
                h.get("WARC-Date"),
                h.get("WARC-Block-Digest"),
                rec.content_length,
                block,
            )
        n += 1
    return n


def bench(n_docs: int = 20000, repeat: int = 3) -> list[dict]:
    docs = make_docs(n_docs)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(write_wet_file(Path(tmp) / "bench.warc.wet.gz", docs))
        import gzip

        with gzip.open(path, "rb") as fh:
            mb = len(fh.read()) / 1e6
        readers = {
            "rpv2 (records+docs+accounting)": lambda: read_rpv2(path),
            "warcio (records)": lambda: read_warcio(path, False),
            "warcio+docs": lambda: read_warcio(path, True),
            "fastwarc (records)": lambda: read_fastwarc(path, False),
            "fastwarc+docs": lambda: read_fastwarc(path, True),
        }
        rows = []
        for name, fn in readers.items():
            best_wall = best_cpu = float("inf")
            for _ in range(repeat):
                w0, c0 = time.perf_counter(), time.process_time()
                n = fn()
                best_wall = min(best_wall, time.perf_counter() - w0)
                best_cpu = min(best_cpu, time.process_time() - c0)
            assert n == n_docs, (name, n)
            rows.append(
                {
                    "step": f"read WET: {name}",
                    "docs_per_s": n_docs / best_cpu,  # per core: CPU seconds of this process
                    "mb_per_s": mb / best_cpu,
                    "wall_docs_per_s": n_docs / best_wall,
                    "seconds": best_wall,
                }
            )
    return rows


def bench_warc(copies: int = 30, repeat: int = 3) -> dict:
    """WARC mode: HTML responses of the real CC-MAIN-2020-34 excerpt (16 pages) extracted with resiliparse."""
    from pipeline.sources.warc import iter_warc_documents

    sample = (SHARED / "realdata" / "warc" / "resiliparse_CC-MAIN-2020-34_warcfile.warc.gz").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.warc.gz"
        path.write_bytes(sample * copies)  # concatenated gzip files are one multi-member gzip file
        import gzip

        mb = len(gzip.decompress(path.read_bytes())) / 1e6
        best = float("inf")
        for _ in range(repeat):
            c0 = time.process_time()
            n = sum(1 for _ in iter_warc_documents(str(path), min_len=0, report=ReadReport()))
            best = min(best, time.process_time() - c0)
    return {
        "step": "read WARC + resiliparse html2text",
        "docs_per_s": n / best,
        "mb_per_s": mb / best,
        "wall_docs_per_s": float("nan"),
        "seconds": best,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    rows = bench(args.docs, args.repeat) + [bench_warc(repeat=args.repeat)]
    print(f"{'step':<44} {'docs/s/core':>12} {'MB/s/core':>10} {'docs/s wall':>12}")
    for r in rows:
        print(
            f"{r['step']:<44} {r['docs_per_s']:>12,.0f} {r['mb_per_s']:>10.1f} {r['wall_docs_per_s']:>12,.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
