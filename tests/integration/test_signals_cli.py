"""`rpv2 signals` end to end on the ground truth's CCNet documents files, against RPv2's own outputs.

Each of the 13 public input files (public/documents/<snap>/<shard>/<lang>_<bucket>.json.gz) goes
through the command in a subprocess started with PYTHONHASHSEED=7, not RPv2's 42: the rpv2 DSIR hash
mode emulates RPv2's seed-42 ``hash()`` (signals/cpython_hash.py), so the values must not depend on
the process's own seed. The signals file must equal RPv2's native ``*.signals.json.gz`` record by record (id, id_int,
metadata exactly; rule-based and ccnet values exactly; classifier and importance scores within 1e-6),
and the ``--minhash-output`` parquet must equal RPv2's native ``*.minhash.parquet``.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
from conftest import REPO_ROOT, shared_path

from signals.registry import CLASSIFIER_SIGNALS, IMPORTANCE_SIGNALS, SIGNAL_NAMES

GT = shared_path("groundtruth", "rpv2")
LISTING = (GT / "public" / "listings.txt").read_text().split()
MODEL_SIGNALS = set(CLASSIFIER_SIGNALS) | set(IMPORTANCE_SIGNALS)


def _run(*args: str, hash_seed: str = "7") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "signals", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def _read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _assert_record_equal(got: dict, want: dict) -> None:
    assert (got["id"], got["id_int"]) == (want["id"], want["id_int"])
    assert got["metadata"] == want["metadata"]
    assert tuple(got["quality_signals"]) == tuple(want["quality_signals"]) == SIGNAL_NAMES
    for name in SIGNAL_NAMES:
        g, w = got["quality_signals"][name], want["quality_signals"][name]
        assert [x[:2] for x in g] == [x[:2] for x in w], (got["id"], name)
        for (_, _, gv), (_, _, wv) in zip(g, w, strict=True):
            if name in MODEL_SIGNALS and gv is not None and wv is not None:
                assert abs(gv - wv) <= 1e-6, (got["id"], name, gv, wv)
            else:
                assert gv == wv and type(gv) is type(wv), (got["id"], name, gv, wv)


def test_cli_reproduces_rpv2_native_outputs(tmp_path, capsys):
    documents_root = GT / "public" / "documents"
    compared = 0
    for rel in LISTING:
        stem = rel[: -len(".json.gz")]
        out = tmp_path / f"{stem}.signals.json.gz"
        minhash = tmp_path / f"{stem}.minhash.parquet"
        result = _run(
            str(documents_root / rel), "--artifacts", str(GT / "artifacts"), "--output", str(out),
            "--minhash-output", str(minhash),
        )
        assert result.returncode == 0, result.stderr[-3000:]
        got = _read_jsonl_gz(out)
        want = _read_jsonl_gz(GT / "public" / "native" / f"{stem}.signals.json.gz")
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            _assert_record_equal(g, w)
        compared += len(got)
        ours = pq.read_table(minhash)
        theirs = pq.read_table(GT / "public" / "native" / f"{stem}.minhash.parquet")
        assert ours.schema.equals(theirs.schema)
        assert ours.equals(theirs), stem
    with capsys.disabled():
        print(f"\nrpv2 signals CLI: {compared} documents in {len(LISTING)} files equal RPv2's native output")
    assert compared == 262


def test_ids_from_documents_root_or_prefix(tmp_path):
    src = GT / "public" / "documents" / "2023-06" / "0001" / "en_head.json.gz"
    plain = tmp_path / "copy.jsonl"
    with gzip.open(src, "rt", encoding="utf-8") as f:
        plain.write_text(f.read(), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = _run(str(plain), "--artifacts", str(GT / "artifacts"), "--output", str(out), "--no-models",
                  "--id-prefix", "2023-06/0001/en_head.json.gz")
    assert result.returncode == 0, result.stderr[-3000:]
    got = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    want = _read_jsonl_gz(GT / "public" / "native" / "2023-06" / "0001" / "en_head.signals.json.gz")
    assert [g["id"] for g in got] == [w["id"] for w in want]
    assert [g["id_int"] for g in got] == [w["id_int"] for w in want]
    assert got[0]["metadata"]["snapshot_id"] == "2023-06"
    assert all(g["quality_signals"]["rps_doc_ml_palm_score"][0][2] is None for g in got)


def test_bad_lines_are_counted_and_rows_keep_their_ids(tmp_path):
    good = json.loads(gzip.open(GT / "public" / "documents" / "2023-06" / "0000" / "de_head.json.gz", "rt").readline())
    lines = [json.dumps(good), "{not json", json.dumps({"url": "x"}), json.dumps(dict(good, raw_content="\ud800 ok"))]
    src = tmp_path / "2023-06" / "0007" / "de_head.jsonl"
    src.parent.mkdir(parents=True)
    src.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    out = tmp_path / "out.jsonl.gz"
    result = _run(str(src), "--artifacts", str(GT / "artifacts"), "--output", str(out), "--no-models")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bad_json_lines: 1" in result.stdout and "records_without_text: 1" in result.stdout
    got = _read_jsonl_gz(out)
    assert [g["id"] for g in got] == ["2023-06/0007/de_head.jsonl/0", "2023-06/0007/de_head.jsonl/3"]


def test_truncated_gzip_input_keeps_what_was_read(tmp_path):
    data = (GT / "public" / "documents" / "2023-06" / "0000" / "en_head.json.gz").read_bytes()
    src = tmp_path / "2023-06" / "0000" / "en_head.json.gz"
    src.parent.mkdir(parents=True)
    src.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.jsonl"
    result = _run(str(src), "--artifacts", str(GT / "artifacts"), "--output", str(out), "--no-models")
    assert result.returncode == 1
    assert "unreadable_input_tail: 1" in result.stdout
    assert "stopped reading" in result.stderr
    got = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert 0 < len(got) < 38
