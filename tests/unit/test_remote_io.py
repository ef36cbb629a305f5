"""Retries, backoff and Range resume of pipeline.io.remote against a real local HTTP server."""

from __future__ import annotations

import random

import pytest
import requests
from http_mirror import HTTPMirror

from pipeline.io.remote import (
    RemoteNotFound,
    RemoteReadError,
    RetryPolicy,
    classify,
    open_stream,
    read_bytes,
)


class RecordingSleep:
    def __init__(self):
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def policy(max_attempts: int = 5) -> tuple[RetryPolicy, RecordingSleep]:
    sleep = RecordingSleep()
    return RetryPolicy(
        max_attempts=max_attempts, base_delay=0.001, max_delay=0.004, jitter=0.5, sleep=sleep
    ), sleep


@pytest.fixture
def served(tmp_path):
    data = random.Random(1).randbytes(300_000)
    (tmp_path / "blob.bin").write_bytes(data)
    with HTTPMirror(tmp_path) as m:
        yield m, data


def test_backoff_is_exponential_capped_and_jittered_down():
    p = RetryPolicy(base_delay=1.0, max_delay=10.0, jitter=0.5)
    rng = random.Random(0)
    for attempt, base in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (9, 10.0)]:
        d = p.delay(attempt, rng)
        assert base * 0.5 <= d <= base
    assert RetryPolicy(jitter=0.0, base_delay=0.5).delay(2) == 2.0


def test_a_nonsense_policy_cannot_be_built():
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match=r"^retry\.jitter: "):
        RetryPolicy(jitter=1.5)  # a negative delay
    with pytest.raises(ConfigError, match=r"^retry\.max_attempts: "):
        RetryPolicy(max_attempts=0)  # would give up before the first request
    with pytest.raises(ConfigError, match=r"^retry\.timeout: "):
        RetryPolicy(timeout=-1)


def test_classification_of_failures():
    def http_error(status):
        resp = requests.Response()
        resp.status_code = status
        return requests.HTTPError(f"{status}", response=resp)

    assert classify(http_error(404)) == "not_found"
    assert classify(http_error(503)) == "retry"
    assert classify(http_error(500)) == "retry"
    assert classify(http_error(429)) == "retry"
    assert classify(http_error(403)) == "fatal"
    assert classify(FileNotFoundError("x")) == "not_found"
    assert classify(ConnectionResetError()) == "retry"
    assert classify(ValueError("bug")) == "fatal"


def test_slowdown_is_retried_with_backoff(served):
    m, data = served
    m.inject("blob.bin", "503", times=3)
    retry, sleep = policy()
    assert read_bytes(m.url("blob.bin"), retry=retry) == data
    assert [r["status"] for r in m.requests] == [503, 503, 503, 200]
    assert len(sleep.delays) == 3
    assert sleep.delays[2] > sleep.delays[0] * 0.5  # grows (up to jitter)


@pytest.mark.parametrize("fault", ["truncate", "reset"])
def test_body_cut_mid_stream_resumes_with_a_range_request(served, fault):
    m, data = served
    m.inject("blob.bin", fault, at=0.6)
    retry, sleep = policy()
    with open_stream(m.url("blob.bin"), retry=retry) as s:
        got = s.read()
        assert s.retries == 1
        assert s.content_length == len(data)
    assert got == data
    first, second = m.requests
    assert first["range"] is None and first["sent"] == int(len(data) * 0.6)
    assert second["status"] == 206
    start = int(second["range"].split("=")[1].rstrip("-"))
    assert 0 < start <= first["sent"]  # resumed from the consumed offset, not from zero
    assert second["sent"] == len(data) - start


def test_repeated_cuts_keep_making_progress(served):
    m, data = served
    for at in (0.2, 0.3, 0.3, 0.5):
        m.inject("blob.bin", "truncate", at=at)
    retry, _ = policy(max_attempts=3)  # 4 cuts > 3 attempts, but each one makes progress
    assert read_bytes(m.url("blob.bin"), retry=retry) == data
    assert len(m.requests) == 5


def test_not_found_is_not_retried(served):
    m, _ = served
    retry, sleep = policy()
    with pytest.raises(RemoteNotFound) as info:
        read_bytes(m.url("missing.bin"), retry=retry)
    assert info.value.reason == "file_not_found"
    assert len(m.requests) == 1 and sleep.delays == []


def test_persistent_failure_gives_up_with_a_clear_error(served):
    m, _ = served
    m.inject("blob.bin", "503", times=10)
    retry, sleep = policy(max_attempts=3)
    with pytest.raises(RemoteReadError, match="giving up after 3 failed attempts") as info:
        read_bytes(m.url("blob.bin"), retry=retry)
    assert info.value.reason == "file_failed"
    assert len(m.requests) == 3 and len(sleep.delays) == 2


def test_local_path_and_file_url(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"hello")
    assert read_bytes(str(tmp_path / "a.bin")) == b"hello"
    assert read_bytes(f"file://{tmp_path}/a.bin") == b"hello"
    with pytest.raises(RemoteNotFound):
        read_bytes(str(tmp_path / "nope.bin"))
