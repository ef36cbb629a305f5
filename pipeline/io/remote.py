"""Streaming reads of CommonCrawl files that survive a busy server.

CommonCrawl's HTTPS and S3 endpoints answer ``503 SlowDown`` under load, and long downloads meet
connection resets and bodies cut short. A crawl-scale run reads tens of thousands of files, so one
failure must neither kill the job nor silently shorten a file. :class:`ResumableStream` opens any
URL through smart_open (https, s3, local path, ``file://``) and, on a retryable failure:

- waits with exponential backoff and jitter (:class:`RetryPolicy`);
- resumes from the byte offset already consumed: for HTTP a ``Range: bytes=<offset>-`` request
  (smart_open's seek), so a body cut at 90 % does not restart from zero;
- verifies the length: an end of stream before the ``Content-Length`` of the first response counts
  as a truncated body and is resumed, never taken as the end of the file.

404 / missing files are not retried (:class:`RemoteNotFound`); a file that still fails raises
:class:`RemoteReadError`, which the readers record as a failure of that file so the shard goes on.
"""

from __future__ import annotations

import http.client
import io
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from pipeline.config import DEFAULT_CONFIG, ConfigError, default_settings

logger = logging.getLogger(__name__)


def _retry_default(key: str) -> Any:
    """``retry.<key>`` of configs/default.yaml, the one home of the retry numbers."""
    retry = default_settings().get("retry")
    if not isinstance(retry, Mapping) or key not in retry:
        raise ConfigError(f"{DEFAULT_CONFIG}: retry.{key} is missing")
    return retry[key]


def _checked(key: str, value: Any, kind: type, ok: Callable[[float], bool], rule: str) -> Any:
    """``value`` as ``kind`` when it is a finite number satisfying ``ok``; else a ConfigError naming
    ``retry.<key>``, so nonsense fails when the run is configured, not as a hang or a busy loop mid-run."""
    error = ConfigError(f"retry.{key}: must be {rule}, got {value!r}")
    if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
        raise error
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise error from None
    if not math.isfinite(number) or not ok(number):
        raise error
    return number


# setting -> (type, accepted values, the rule as the error message states it)
_RULES: dict[str, tuple[type, Callable[[float], bool], str]] = {
    "max_attempts": (int, lambda v: v >= 1, "an integer >= 1"),
    "base_delay": (float, lambda v: v >= 0, "a number of seconds >= 0"),
    "max_delay": (float, lambda v: v >= 0, "a number of seconds >= 0"),
    "jitter": (float, lambda v: 0 <= v <= 1, "a fraction within [0, 1]"),
    "timeout": (float, lambda v: v > 0, "a number of seconds > 0"),
}


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: attempt k (0-based) waits ``min(max_delay, base_delay * 2**k)``, reduced by
    up to ``jitter`` (a fraction) at random so that many workers hitting a 503 do not retry in step.

    ``max_attempts`` counts consecutive failures without progress: a stream that keeps making
    progress between resets is not given up on. ``timeout``: seconds per request.

    The only retry-settings type: the run config's ``retry:`` is one, and its defaults are
    configs/default.yaml's ``retry:``. Values are checked (and "3" / 1 become 3 / 1.0) on construction.
    """

    max_attempts: int = _retry_default("max_attempts")
    base_delay: float = _retry_default("base_delay")
    max_delay: float = _retry_default("max_delay")
    jitter: float = _retry_default("jitter")
    timeout: float = _retry_default("timeout")
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def __post_init__(self) -> None:
        for key, (kind, ok, rule) in _RULES.items():
            object.__setattr__(self, key, _checked(key, getattr(self, key), kind, ok, rule))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RetryPolicy:
        """A policy from a config's ``retry:`` mapping; keys not given keep configs/default.yaml's values."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"retry: a mapping of {', '.join(RETRY_KEYS)}, got {values!r}")
        unknown = sorted(set(values) - set(RETRY_KEYS))
        if unknown:
            raise ConfigError(f"retry: unknown keys {', '.join(map(str, unknown))} (known: {', '.join(RETRY_KEYS)})")
        return cls(**values)

    def settings(self) -> dict[str, Any]:
        """The configurable values, as a run config's ``retry:`` mapping (``sleep`` is not one)."""
        return {key: getattr(self, key) for key in RETRY_KEYS}

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        base = min(self.max_delay, self.base_delay * (2**attempt))
        r = (rng or random).random()
        return max(0.0, base * (1.0 - self.jitter * r))


RETRY_KEYS: tuple[str, ...] = tuple(f.name for f in fields(RetryPolicy) if f.compare)
DEFAULT_RETRY = RetryPolicy()
_READ_SIZE = 32 << 10


class RemoteReadError(OSError):
    """A file could not be read after retries (or hit an error that retrying cannot fix)."""

    reason = "file_failed"

    def __init__(self, url: str, message: str, offset: int = 0, attempts: int = 0):
        super().__init__(f"{url}: {message} (at byte {offset}, after {attempts} attempt(s))")
        self.url = url
        self.offset = offset
        self.attempts = attempts
        self.detail = message


class RemoteNotFound(RemoteReadError):
    """404 / 410 / missing local file: not retried."""

    reason = "file_not_found"


class TruncatedBody(OSError):
    """The stream ended before the length the server announced."""


def _http_status(exc: BaseException) -> int | None:
    resp = getattr(exc, "response", None)
    status = getattr(resp, "status_code", None)
    if status is None and isinstance(resp, dict):  # botocore ClientError
        meta = resp.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode")
    return status


def classify(exc: BaseException) -> str:
    """``"not_found"``, ``"retry"`` or ``"fatal"`` for an exception raised while opening or reading."""
    if isinstance(exc, FileNotFoundError):
        return "not_found"
    code = None
    resp = getattr(exc, "response", None)
    if isinstance(resp, dict):
        code = resp.get("Error", {}).get("Code")
    if code in ("NoSuchKey", "NoSuchBucket", "404"):
        return "not_found"
    status = _http_status(exc)
    if status is not None:
        if status in (404, 410):
            return "not_found"
        if status >= 500 or status in (408, 429):
            return "retry"
        return "fatal"
    if code in ("SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling"):
        return "retry"
    if isinstance(exc, (TruncatedBody, http.client.HTTPException, ConnectionError, TimeoutError)):
        return "retry"
    try:
        import requests
        import urllib3

        if isinstance(
            exc,
            (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                urllib3.exceptions.HTTPError,
            ),
        ):
            return "retry"
    except ImportError:  # pragma: no cover - both ship with smart_open[http]
        pass
    if isinstance(exc, (IsADirectoryError, PermissionError, NotADirectoryError)):
        return "fatal"
    if isinstance(exc, OSError):  # smart_open's range-reader errors, socket errors
        return "retry"
    return "fatal"


def _open_raw(url: str, timeout: float, offset: int = 0):
    """Open ``url`` for binary reading from byte ``offset``, without decompression (the readers
    handle gzip). Returns ``(fileobj, total_length or None)``.

    HTTP(S) resumes with one ``Range: bytes=<offset>-`` request (rather than smart_open's open-then-
    seek, which would first start a full GET); a server that ignores the range answers 200 and
    :class:`ResumableStream` then skips the bytes it already has.
    """
    import smart_open

    from pipeline.io.uris import is_remote, local_path

    if not is_remote(url):
        path = local_path(url)
        f = open(path, "rb")  # noqa: SIM115 - closed by ResumableStream
        f.seek(offset)
        return f, os.path.getsize(path)
    if url.startswith(("http://", "https://")):
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        # A small buffer bounds what a broken connection can take with it: the resume offset is
        # at most one buffer behind the bytes that arrived.
        params = {"timeout": timeout, "headers": headers, "buffer_size": _READ_SIZE}
        f = smart_open.open(url, "rb", compression="disable", transport_params=params)
        resp = getattr(f, "response", None)
        status = getattr(resp, "status_code", None)
        n = getattr(f, "content_length", None)
        length = n if isinstance(n, int) and n >= 0 else None
        if offset and status == 206:
            return f, (offset + length if length is not None else None)
        if offset:
            _skip(f, offset)  # 200: the server ignored the range
        return f, length
    f = smart_open.open(url, "rb", compression="disable")
    if offset:
        f.seek(offset)
    return f, None


def _skip(f, n: int) -> None:
    while n > 0:
        chunk = f.read(min(n, 1 << 20))
        if not chunk:
            raise TruncatedBody(f"stream ended while skipping to byte {n}")
        n -= len(chunk)


class ResumableStream(io.RawIOBase):
    """A read-only byte stream over ``url`` that retries and resumes (see the module docstring)."""

    def __init__(
        self,
        url: str,
        retry: RetryPolicy | None = None,
        on_retry: Callable[[], None] | None = None,
        opener: Callable[[str, float, int], tuple] = _open_raw,
    ):
        super().__init__()
        self.url = url
        self.retry = retry or DEFAULT_RETRY
        self._on_retry = on_retry
        self._opener = opener
        self._f = None
        self._pos = 0
        self._expected: int | None = None
        self._fails = 0  # consecutive failures without progress
        self.attempts = 0
        self.retries = 0
        self._rng = random.Random()

    # -- io.RawIOBase -----------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    @property
    def content_length(self) -> int | None:
        return self._expected

    def readinto(self, b) -> int:
        while True:
            try:
                if self._f is None:
                    if self._expected is not None and self._pos >= self._expected:
                        return 0  # everything arrived before the connection broke
                    self._open_at(self._pos)
                n = self._f.readinto(memoryview(b)[:_READ_SIZE])
                if not n:
                    if self._expected is not None and self._pos < self._expected:
                        raise TruncatedBody(f"stream ended at byte {self._pos} of {self._expected}")
                    return 0
                self._pos += n
                self._fails = 0
                return n
            except RemoteReadError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below, re-raised as RemoteReadError
                self._handle_failure(exc)

    def close(self) -> None:
        self._close_inner()
        super().close()

    # -- internals --------------------------------------------------------------------------------
    def _close_inner(self) -> None:
        f, self._f = self._f, None
        if f is not None:
            try:
                f.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped anyway
                pass

    def _open_at(self, offset: int) -> None:
        self.attempts += 1
        f, total = self._opener(self.url, self.retry.timeout, offset)
        if self._expected is None:
            self._expected = total
        elif total is not None and total != self._expected:
            f.close()
            raise RemoteReadError(self.url, f"length changed from {self._expected} to {total}", offset)
        self._f = f

    def _handle_failure(self, exc: BaseException) -> None:
        self._close_inner()
        kind = classify(exc)
        if kind == "not_found":
            raise RemoteNotFound(self.url, f"not found ({exc})", self._pos, self.attempts) from exc
        if kind == "fatal":
            raise RemoteReadError(self.url, f"{type(exc).__name__}: {exc}", self._pos, self.attempts) from exc
        self._fails += 1
        if self._fails >= self.retry.max_attempts:
            raise RemoteReadError(
                self.url,
                f"giving up after {self._fails} failed attempts: {type(exc).__name__}: {exc}",
                self._pos,
                self.attempts,
            ) from exc
        delay = self.retry.delay(self._fails - 1, self._rng)
        logger.warning(
            "%s: %s at byte %d, retry %d/%d in %.2fs",
            self.url,
            f"{type(exc).__name__}: {exc}",
            self._pos,
            self._fails,
            self.retry.max_attempts - 1,
            delay,
        )
        self.retries += 1
        if self._on_retry is not None:
            self._on_retry()
        self.retry.sleep(delay)


def open_stream(
    url: str, retry: RetryPolicy | None = None, on_retry: Callable[[], None] | None = None
) -> ResumableStream:
    """Open ``url`` as a resumable byte stream; the first request happens on the first read."""
    return ResumableStream(url, retry=retry, on_retry=on_retry)


def read_bytes(url: str, retry: RetryPolicy | None = None) -> bytes:
    """The whole content of ``url`` (for small files: listings, models' checksums)."""
    with open_stream(url, retry=retry) as s:
        chunks = []
        while True:
            chunk = s.read(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
