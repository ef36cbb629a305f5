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
import hashlib
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


def _run(*args: str, hash_seed: str = "7", **env_vars: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed, **env_vars)
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


# -- users' own ids, several inputs, workers, configuration errors -----------------------------------

CCNET_RPV1 = shared_path("realdata", "groundtruth", "ccnet_rpv1")


def _rpv2_id_int(doc_id: str) -> int:
    """RPv2's worker formula, written out here (not imported): sha1(id)[:8], little-endian, unsigned."""
    return int.from_bytes(hashlib.sha1(doc_id.encode("utf-8")).digest()[:8], "little", signed=False)


def _ccnet_rpv1_records() -> list[dict]:
    """RedPajama-V1's CCNet documents ({id, text, metadata: CCNet's fields}) in CCNet's own flat layout
    (raw_content + the metadata fields), keeping their ids (URLs)."""
    records = []
    for path in sorted(CCNET_RPV1.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            doc = json.loads(line)
            records.append({**doc["metadata"], "raw_content": doc["text"], "id": doc["id"]})
    return records


def test_records_keep_their_own_ids_with_rpv2_id_int(tmp_path):
    rel = "2023-06/0000/en_head"
    native = _read_jsonl_gz(GT / "public" / "native" / f"{rel}.signals.json.gz")
    gt_docs = _read_jsonl_gz(GT / "public" / "documents" / f"{rel}.json.gz")
    with_ids = [dict(doc, id=f"my-custom-id-{row}") for row, doc in enumerate(gt_docs)]
    with_ids[3].pop("id")  # a record without an id gets RPv2's <uri_id>/<row>
    with_ids[5]["id"] = 5.0  # so does one whose id is not a string or an integer, counted
    rpv1 = _ccnet_rpv1_records()
    src = tmp_path / "mine" / "docs.jsonl"
    src.parent.mkdir()
    src.write_text("".join(json.dumps(r) + "\n" for r in with_ids + rpv1), encoding="utf-8")
    out, minhash = tmp_path / "out.jsonl.gz", tmp_path / "mh.parquet"
    result = _run(str(src), "--artifacts", str(GT / "artifacts"), "--output", str(out),
                  "--minhash-output", str(minhash))
    assert result.returncode == 0, result.stderr[-3000:]
    got = _read_jsonl_gz(out)
    assert len(got) == len(with_ids) + len(rpv1) == len(native) + 20
    want_ids = [r["id"] if isinstance(r.get("id"), str) else f"docs.jsonl/{row}"
                for row, r in enumerate(with_ids + rpv1)]
    assert [g["id"] for g in got] == want_ids
    assert [g["id_int"] for g in got] == [_rpv2_id_int(i) for i in want_ids]
    assert got[-1]["id"].startswith("http") and got[-1]["metadata"]["url"] == rpv1[-1]["url"]
    # the signals do not depend on the id: RPv2's own values for RPv2's documents
    for g, w in zip(got, native, strict=False):
        _assert_record_equal(dict(g, id=w["id"], id_int=w["id_int"], metadata=w["metadata"]), w)
    table = pq.read_table(minhash)
    assert table.column("id").to_pylist() == want_ids
    assert table.column("id_int").to_pylist() == [_rpv2_id_int(i) for i in want_ids]
    assert f"ids: {len(want_ids) - 2} the records' own, 2 generated" in result.stdout
    assert "ids_not_usable: 1" in result.stdout


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_directory_and_listing_inputs_write_rpv2_layout_same_bytes_for_any_workers(tmp_path):
    documents = GT / "public" / "documents"
    by_dir = _run(str(documents), "--artifacts", str(GT / "artifacts"), "--no-models", "--workers", "2",
                  "--output", str(tmp_path / "a" / "quality_signals"), "--minhash-output", str(tmp_path / "a" / "minhash"))
    assert by_dir.returncode == 0, by_dir.stderr[-3000:]
    by_listing = _run("--listing", str(GT / "public" / "listings.txt"), "--documents-root", str(documents),
                      "--artifacts", str(GT / "artifacts"), "--no-models", "--workers", "1",
                      "--output", str(tmp_path / "b" / "quality_signals"),
                      "--minhash-output", str(tmp_path / "b" / "minhash"))
    assert by_listing.returncode == 0, by_listing.stderr[-3000:]
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    stems = [rel[: -len(".json.gz")] for rel in LISTING]
    assert sorted(a) == sorted([f"quality_signals/{s}.signals.json.gz" for s in stems]
                               + [f"minhash/{s}.minhash.parquet" for s in stems])
    assert a == b  # byte-identical: 2 workers on the directory, 1 on the listing
    for stem in stems:
        got = _read_jsonl_gz(tmp_path / "a" / "quality_signals" / f"{stem}.signals.json.gz")
        want = _read_jsonl_gz(GT / "public" / "native" / f"{stem}.signals.json.gz")
        assert [(g["id"], g["id_int"], g["metadata"]) for g in got] == \
            [(w["id"], w["id_int"], w["metadata"]) for w in want]
    assert f"262 documents from {len(LISTING)} input files" in by_dir.stdout


def test_several_inputs_count_bad_lines_per_file(tmp_path):
    good = gzip.open(GT / "public" / "documents" / "2023-06" / "0000" / "it_head.json.gz", "rt").read()
    first = tmp_path / "in" / "a.jsonl"
    second = tmp_path / "in" / "sub" / "b.jsonl"
    second.parent.mkdir(parents=True)
    first.write_text(good, encoding="utf-8")
    second.write_text(good.splitlines()[0] + "\n{broken\n" + json.dumps({"url": "no text"}) + "\n", encoding="utf-8")
    result = _run(str(first), str(second), "--artifacts", str(GT / "artifacts"), "--no-models",
                  "--output", str(tmp_path / "out"), RPV2_PROGRESS="log")
    assert result.returncode == 0, result.stderr[-3000:]
    # progress in input bytes (stderr is not a terminal: plain lines), ending at both files' size
    size = first.stat().st_size + second.stat().st_size
    last = [line for line in result.stderr.splitlines() if line.startswith("rpv2 signals: progress: ")][-1]
    assert last.startswith(f"rpv2 signals: progress: {size / 1e3:.1f} kB/{size / 1e3:.1f} kB, ") and "done in" in last
    n = len(good.splitlines())
    assert f"{n + 1} documents from 2 input files" in result.stdout
    assert f"lines read: {n + 3}" in result.stdout
    assert f"{second}: bad_json_lines 1, records_without_text 1" in result.stdout
    assert str(first) + ":" not in result.stdout
    assert [g["id"] for g in (json.loads(x) for x in gzip.open(tmp_path / "out" / "b.signals.json.gz", "rt"))] \
        == ["b.jsonl/0"]


def test_bad_configuration_is_one_line_before_any_work(tmp_path):
    documents = GT / "public" / "documents"
    one = documents / "2023-06" / "0000" / "it_head.json.gz"
    two = documents / "2023-06" / "0000" / "it_middle.json.gz"
    a_file = tmp_path / "exists.txt"
    a_file.write_text("x")
    a_file.with_name("in.jsonl").write_text("{}\n")  # an input named as its own output
    art = ["--artifacts", str(GT / "artifacts")]
    cases = [
        ([str(one), str(two), *art, "--output", str(tmp_path / "o.jsonl.gz")], "names a file, but there are 2"),
        ([str(documents), *art, "--output", str(a_file)], "is a file"),
        ([str(tmp_path / "missing.jsonl"), *art, "--output", str(tmp_path / "o")], "input not found"),
        (["--listing", str(GT / "public" / "listings.txt"), *art, "--output", str(tmp_path / "o")],
         "--listing needs --documents-root"),
        ([str(one), str(two), *art, "--output", str(tmp_path / "o"), "--id-prefix", "x"], "--id-prefix"),
        ([str(one), str(two), *art, "--output", str(tmp_path / "o"), "--minhash-output", str(tmp_path / "m.parquet")],
         "--minhash-output"),
        ([str(one), *art, "--output", str(tmp_path / "o"), "--workers", "0"], "--workers"),
        ([str(one), "--artifacts", str(tmp_path / "no-artifacts"), "--output", str(tmp_path / "o")], "--artifacts"),
        ([str(a_file.with_name("in.jsonl")), *art, "--output", str(a_file.with_name("in.jsonl"))], "is an input"),
    ]
    for argv, expected in cases:
        result = _run(*argv)
        assert result.returncode == 2, (argv, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rpv2 signals: error: ") and expected in lines[0], argv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.txt", "in.jsonl"]  # nothing written
    assert (tmp_path / "in.jsonl").read_text() == "{}\n"
