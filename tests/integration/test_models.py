"""`rpv2 models download|build-lm|calibrate` (pipeline/ccnet/model_store.py, pipeline/commands/models.py).

Downloads are tested against a real HTTP server on 127.0.0.1 that serves files the test creates,
honours Range requests, and can drop a connection in the middle of a body.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import random
import socket
import statistics
import threading
from pathlib import Path

import pytest
import yaml
from conftest import shared_path

from pipeline.ccnet.buckets import DEFAULT_CUTOFFS_PATH, load_cutoffs, perplexity_bucket
from pipeline.ccnet.model_store import (
    ChecksumMismatch,
    DownloadError,
    download_file,
    download_models,
    planned_downloads,
    read_sidecar,
)
from pipeline.ccnet.perplexity import LanguageModels
from pipeline.cli import main as rpv2
from pipeline.config import read_yaml
from pipeline.io.remote import RetryPolicy


def attempts(n: int) -> RetryPolicy:
    """``n`` attempts per call, no waiting between them."""
    return RetryPolicy(max_attempts=n, base_delay=0.0)


class FileServer:
    """Serves ``files`` over HTTP/1.0 with Range support; ``drops[path]`` lists byte counts after
    which successive responses for that path are cut off (the socket is closed mid-body)."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.drops: dict[str, list[int]] = {}
        self.ignore_range: set[str] = set()
        self.errors: dict[str, list[int]] = {}  # status codes answered before the file is served
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.lstrip("/")
                range_header = self.headers.get("Range")
                server.requests.append((path, range_header))
                body = server.files.get(path)
                if server.errors.get(path):
                    self.send_error(server.errors[path].pop(0), "SlowDown")
                    return
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                if range_header and path not in server.ignore_range:
                    start = int(range_header.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                payload = body[start:]
                plan = server.drops.get(path)
                if plan:
                    cut = plan.pop(0)
                    self.wfile.write(payload[:cut])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)  # the peer sees a truncated body
                    return
                self.wfile.write(payload)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def payload(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.fixture()
def server():
    files = {
        "lid.176.bin": payload(50_000, 1),
        "xx.sp.model": payload(300_000, 2),
        "xx.arpa.bin": payload(2_000_000, 3),
        "yy.sp.model": payload(1000, 4),
        "yy.arpa.bin": payload(3000, 5),
    }
    with FileServer(files) as srv:
        yield srv


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_writes_the_file_and_records_its_sha256(server, tmp_path):
    body = server.files["xx.arpa.bin"]
    result = download_file(server.url + "xx.arpa.bin", tmp_path / "xx.arpa.bin", progress=True)
    assert result.status == "downloaded" and result.sha256 == sha256(body)
    assert (tmp_path / "xx.arpa.bin").read_bytes() == body
    assert read_sidecar(tmp_path / "xx.arpa.bin") == sha256(body)
    assert not (tmp_path / "xx.arpa.bin.part").exists()


def test_a_verified_file_is_not_downloaded_again(server, tmp_path):
    download_file(server.url + "xx.sp.model", tmp_path / "xx.sp.model", progress=False)
    seen = len(server.requests)
    again = download_file(server.url + "xx.sp.model", tmp_path / "xx.sp.model", progress=False)
    assert again.status == "cached" and len(server.requests) == seen


def test_dropped_connection_leaves_a_part_file_that_the_next_run_resumes(server, tmp_path):
    body = server.files["xx.arpa.bin"]
    server.drops["xx.arpa.bin"] = [700_000]
    dest = tmp_path / "xx.arpa.bin"
    with pytest.raises(DownloadError, match="resumes"):
        download_file(server.url + "xx.arpa.bin", dest, retry=attempts(1), progress=False)
    part = tmp_path / "xx.arpa.bin.part"
    assert not dest.exists() and part.stat().st_size == 700_000
    result = download_file(server.url + "xx.arpa.bin", dest, retry=attempts(1), progress=False)
    assert result.status == "resumed"
    assert server.requests[-1] == ("xx.arpa.bin", "bytes=700000-")
    assert dest.read_bytes() == body and not part.exists()


def test_retries_resume_within_one_call(server, tmp_path):
    body = server.files["xx.arpa.bin"]
    server.drops["xx.arpa.bin"] = [100_000, 250_000]  # two interruptions, then the rest
    result = download_file(
        server.url + "xx.arpa.bin", tmp_path / "f", expected_sha256=sha256(body), retry=attempts(4), progress=False
    )
    assert result.status == "resumed" and (tmp_path / "f").read_bytes() == body
    assert [r for _, r in server.requests] == [None, "bytes=100000-", "bytes=350000-"]


def test_server_errors_5xx_are_retried(server, tmp_path):
    server.errors["yy.sp.model"] = [503, 500]
    result = download_file(server.url + "yy.sp.model", tmp_path / "y", retry=attempts(3), progress=False)
    assert result.status == "downloaded" and (tmp_path / "y").read_bytes() == server.files["yy.sp.model"]
    assert len(server.requests) == 3


def test_a_server_that_ignores_range_restarts_the_file(server, tmp_path):
    body = server.files["xx.sp.model"]
    server.drops["xx.sp.model"] = [1234]
    server.ignore_range.add("xx.sp.model")
    download_file(server.url + "xx.sp.model", tmp_path / "m", retry=attempts(3), progress=False)
    assert (tmp_path / "m").read_bytes() == body


def test_wrong_checksum_is_rejected_and_nothing_is_kept(server, tmp_path):
    with pytest.raises(ChecksumMismatch):
        download_file(server.url + "yy.sp.model", tmp_path / "y", expected_sha256="0" * 64, progress=False)
    assert not (tmp_path / "y").exists() and not (tmp_path / "y.part").exists()


def test_a_corrupted_cached_file_is_detected_by_its_sidecar_and_fetched_again(server, tmp_path):
    dest = tmp_path / "yy.arpa.bin"
    download_file(server.url + "yy.arpa.bin", dest, progress=False)
    dest.write_bytes(b"corrupted")
    result = download_file(server.url + "yy.arpa.bin", dest, progress=False)
    assert result.status == "downloaded" and dest.read_bytes() == server.files["yy.arpa.bin"]


def test_published_lid_checksum_is_enforced(server, tmp_path):
    # the mirror's lid.176.bin is not the official file: configs/models.yaml's size/sha256 reject it
    plan = planned_downloads([], tmp_path, base_url=server.url)
    assert plan[0].sha256 == "7e69ec5451bc261cc7844e49e4792a85d7f09c06789ec800fc4a44aec362764e"
    results, failures = download_models([], tmp_path, base_url=server.url, progress=False)
    assert results == [] and len(failures) == 1 and "expected" in failures[0][1]
    assert not (tmp_path / "lid.176.bin").exists()


def test_a_missing_file_is_reported_and_the_others_still_download(server, tmp_path):
    results, failures = download_models(["yy", "zz"], tmp_path, base_url=server.url, include_lid=False, progress=False)
    assert sorted(r.path.name for r in results) == ["yy.arpa.bin", "yy.sp.model"]
    assert sorted(f.dest.name for f, _ in failures) == ["zz.arpa.bin", "zz.sp.model"]
    assert all("404" in message for _, message in failures)


def test_cli_downloads_into_the_cache_layout(server, tmp_path, capsys):
    code = rpv2(["models", "download", "--langs", "xx,yy", "--no-lid", "--base-url", server.url,
                 "--cache-dir", str(tmp_path), "--no-progress"])
    assert code == 0
    for name in ("xx.sp.model", "xx.arpa.bin", "yy.sp.model", "yy.arpa.bin"):
        assert (tmp_path / "lm" / name).read_bytes() == server.files[name]
    assert rpv2(["models", "download", "--langs", "xx", "--no-lid", "--base-url", server.url,
                 "--cache-dir", str(tmp_path), "--no-progress"]) == 0
    assert "cached" in capsys.readouterr().out


def test_cli_download_uses_rpv2_cache_env(server, tmp_path, monkeypatch):
    monkeypatch.setenv("RPV2_CACHE", str(tmp_path / "cache"))
    assert rpv2(["models", "download", "--langs", "yy", "--no-lid", "--base-url", server.url, "--no-progress"]) == 0
    assert (tmp_path / "cache" / "lm" / "yy.sp.model").is_file()


def test_cli_download_failure_exits_non_zero(server, tmp_path):
    assert rpv2(["models", "download", "--langs", "zz", "--no-lid", "--base-url", server.url,
                 "--cache-dir", str(tmp_path), "--no-progress", "--retries", "0"]) == 1


def test_cli_retries_count_the_attempts_after_the_first(server, tmp_path):
    server.errors["yy.sp.model"] = [503]
    assert rpv2(["models", "download", "--langs", "yy", "--no-lid", "--base-url", server.url,
                 "--cache-dir", str(tmp_path), "--no-progress", "--retries", "0"]) == 1
    assert [path for path, _ in server.requests].count("yy.sp.model") == 1


def test_cli_downloads_the_run_configs_languages_by_default(server, tmp_path):
    # the default list is configs/default.yaml's languages, the ones `rpv2 run` keeps
    languages = read_yaml(Path(__file__).resolve().parents[2] / "configs" / "default.yaml")["languages"]
    rpv2(["models", "download", "--no-lid", "--base-url", server.url, "--cache-dir", str(tmp_path), "--no-progress"])
    assert {path for path, _ in server.requests} == {f"{lang}.{ext}" for lang in languages for ext in ("sp.model", "arpa.bin")}


@pytest.mark.parametrize("langs", ["all", "EN", "en;de"])
def test_cli_download_needs_language_codes(tmp_path, langs, capsys):
    with pytest.raises(SystemExit) as exit_info:
        rpv2(["models", "download", "--langs", langs, "--no-lid", "--cache-dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "--langs" in capsys.readouterr().err


# --- build-lm and calibrate on real text ---------------------------------------------------------


def botchan_lines() -> list[str]:
    text = shared_path("realdata", "corpora", "botchan_en.txt").read_text(encoding="utf-8")
    return [line for line in text.split("\n") if line.strip()]


@pytest.fixture(scope="module")
def built_lm(tmp_path_factory) -> tuple[Path, list[str]]:
    """An English LM built by `rpv2 models build-lm` on 80% of Botchan; returns (dir, held-out lines)."""
    lines = botchan_lines()
    split = int(len(lines) * 0.8)
    work = tmp_path_factory.mktemp("lm")
    corpus = work / "train.txt"
    corpus.write_text("\n".join(lines[:split]) + "\n", encoding="utf-8")
    out = work / "models"
    assert rpv2(["models", "build-lm", "--lang", "en", "--corpus", str(corpus), "--out", str(out),
                 "--vocab-size", "2000"]) == 0
    return out, lines[split:]


def test_build_lm_writes_cc_net_layout(built_lm):
    out, _ = built_lm
    assert sorted(p.name for p in out.iterdir()) == ["SHA256SUMS", "en.arpa.bin", "en.sp.model"]
    assert LanguageModels(out).languages == ["en"]
    # the manifest workers check fetched copies against (sha256sum's format), computed here independently
    import hashlib

    listed = dict(line.split("  ")[::-1] for line in (out / "SHA256SUMS").read_text().splitlines())
    assert listed == {name: hashlib.sha256((out / name).read_bytes()).hexdigest()
                      for name in ("en.arpa.bin", "en.sp.model")}


def test_built_lm_prefers_held_out_text_to_shuffled_words_and_other_languages(built_lm):
    out, held_out = built_lm
    scorer = LanguageModels(out).get("en")
    rng = random.Random(0)
    docs = ["\n".join(held_out[i : i + 8]) for i in range(0, len(held_out) - 8, 8)]
    shuffled = []
    for d in docs:
        words = d.split()
        rng.shuffle(words)
        shuffled.append(" ".join(words))
    german = shared_path("realdata", "groundtruth", "langid", "lingua_sentences", "de.txt").read_text().split("\n")
    german_docs = ["\n".join(german[i : i + 8]) for i in range(0, 400, 8)]
    in_domain = [scorer.perplexity(d) for d in docs]
    out_of_order = [scorer.perplexity(d) for d in shuffled]
    assert 1 < statistics.median(in_domain) < statistics.median(out_of_order) / 1.5
    assert sum(a < b for a, b in zip(in_domain, out_of_order, strict=True)) >= 0.95 * len(docs)
    assert statistics.median(in_domain) < statistics.median(scorer.perplexity(d) for d in german_docs) / 2


def test_build_lm_without_text_fails_clearly(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    assert rpv2(["models", "build-lm", "--lang", "xx", "--corpus", str(empty), "--out", str(tmp_path / "o")]) == 1
    assert "no text" in capsys.readouterr().err


def test_calibrate_writes_p30_p60_that_split_the_sample(built_lm, tmp_path):
    out, held_out = built_lm
    sample = tmp_path / "sample.txt"
    sample.write_text("\n".join(held_out), encoding="utf-8")
    cutoffs_path = tmp_path / "cutoffs.yaml"
    cutoffs_path.write_text(DEFAULT_CUTOFFS_PATH.read_text())
    assert rpv2(["models", "calibrate", "--lang", "en", "--models", str(out), str(sample),
                 "--cutoffs", str(cutoffs_path)]) == 0
    cutoffs = load_cutoffs(cutoffs_path)
    assert cutoffs["de"] == (370.0, 590.0)  # other languages untouched
    p30, p60 = cutoffs["en"]
    assert 0 < p30 < p60
    scorer = LanguageModels(out).get("en")
    buckets = [perplexity_bucket(scorer.perplexity(line), "en", cutoffs) for line in held_out]
    assert abs(buckets.count("head") / len(buckets) - 0.3) < 0.03
    assert abs(buckets.count("tail") / len(buckets) - 0.4) < 0.03
    assert "en" in yaml.safe_load(cutoffs_path.read_text())["cutoffs"]


def test_calibrate_without_a_model_fails_clearly(tmp_path, capsys):
    sample = tmp_path / "s.txt"
    sample.write_text("hello\n")
    assert rpv2(["models", "calibrate", "--lang", "xx", "--models", str(tmp_path), str(sample),
                 "--cutoffs", str(tmp_path / "c.yaml")]) == 1
    assert "no model" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "c.yaml")


def test_build_lm_is_deterministic(tmp_path):
    from pipeline.ccnet.model_store import build_lm

    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(botchan_lines()[:1500]) + "\n", encoding="utf-8")
    first = build_lm("en", [corpus], tmp_path / "a", vocab_size=500)
    second = build_lm("en", [corpus], tmp_path / "b", vocab_size=500)
    assert first.sp_model.read_bytes() == second.sp_model.read_bytes()
    assert first.lm_binary.read_bytes() == second.lm_binary.read_bytes()
