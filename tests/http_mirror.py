"""A local HTTP server for a CommonCrawl-layout mirror, with fault injection (test helper).

CommonCrawl's endpoints answer 503 "SlowDown" under load, reset connections and cut bodies short;
the readers must retry, resume with Range requests and never take a short body for a whole file.
This server reproduces those faults per path on 127.0.0.1 (random port) so tests exercise the real
HTTP stack (requests/urllib3 through smart_open) without the network.

Usage::

    with HTTPMirror(root) as mirror:
        mirror.inject("crawl-data/.../x.warc.wet.gz", "503", times=2)
        mirror.inject("crawl-data/.../y.warc.wet.gz", "truncate", at=0.5)
        url = mirror.base_url          # "http://127.0.0.1:PORT/"
        ...
        mirror.requests                # [{"path", "range", "status", "sent"}, ...]

Faults (each consumed by one request, ``times`` requests in a row):
``"503"`` SlowDown with an S3-style XML body; ``"500"``; ``"404"``; ``"reset"`` (headers with the
full Content-Length, part of the body, then a TCP RST); ``"truncate"`` (the same, then a clean
close). ``at`` is where the body is cut: a byte count (int) or a fraction of the body (float).
Range requests (``bytes=N-`` and ``bytes=N-M``) are answered with 206 and Content-Range.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

FAULT_KINDS = ("503", "500", "404", "reset", "truncate")


@dataclass
class Fault:
    kind: str
    at: int | float = 0.5


class _Handler(BaseHTTPRequestHandler):
    server: _MirrorServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - silence the default stderr log
        pass

    def _record(self, status: int, rng: str | None, sent: int) -> None:
        with self.server.lock:
            self.server.log.append({"path": self.path, "range": rng, "status": status, "sent": sent})

    def _simple(self, status: int, body: bytes, rng: str | None, content_type: str = "text/plain") -> None:
        self._record(status, rng, len(body))  # before answering: the client may act on it at once
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        rel = self.path.split("?", 1)[0].lstrip("/")
        rng = self.headers.get("Range")
        fault = self.server.take_fault(rel)
        if fault is not None and fault.kind in ("503", "500"):
            body = (
                b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
                b"<Message>Please reduce your request rate.</Message></Error>"
            )
            self._simple(int(fault.kind), body, rng, "application/xml")
            return
        path = (self.server.root / rel).resolve()
        if (
            (fault is not None and fault.kind == "404")
            or self.server.root not in path.parents
            or not path.is_file()
        ):
            self._simple(404, b"Not Found", rng)
            return
        data = path.read_bytes()
        total = len(data)
        start, end = 0, total
        status = 200
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if not m or int(m.group(1)) >= total:
                self._record(416, rng, 0)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{total}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = int(m.group(1))
            end = min(total, int(m.group(2)) + 1) if m.group(2) else total
            status = 206
        body = data[start:end]
        cut = None
        if fault is not None and fault.kind in ("reset", "truncate"):
            cut = fault.at if isinstance(fault.at, int) else int(len(body) * fault.at)
            cut = max(0, min(cut, len(body) - 1))
        self._record(status, rng, len(body) if cut is None else cut)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{total}")
        self.end_headers()
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            if fault.kind == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:  # the socket was reset on purpose
            pass


class _MirrorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root.resolve()
        self.lock = threading.Lock()
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.log: list[dict] = []

    def take_fault(self, rel: str) -> Fault | None:
        with self.lock:
            q = self.faults.get(rel)
            return q.popleft() if q else None

    def handle_error(self, request, client_address) -> None:  # noqa: ARG002 - quiet on injected resets
        pass


class HTTPMirror:
    """Serve ``root`` over HTTP on 127.0.0.1 with per-path fault injection (context manager)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._server: _MirrorServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> HTTPMirror:
        self._server = _MirrorServer(self.root)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HTTPMirror:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def url(self, relpath: str) -> str:
        return self.base_url + relpath.lstrip("/")

    def inject(self, relpath: str, kind: str, times: int = 1, at: int | float = 0.5) -> None:
        """Make the next ``times`` requests for ``relpath`` fail with ``kind`` (see FAULT_KINDS)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}: expected one of {FAULT_KINDS}")
        assert self._server is not None, "server not started"
        with self._server.lock:
            for _ in range(times):
                self._server.faults[relpath.lstrip("/")].append(Fault(kind, at))

    def pending_faults(self, relpath: str | None = None) -> int:
        assert self._server is not None
        with self._server.lock:
            if relpath is not None:
                return len(self._server.faults.get(relpath.lstrip("/"), ()))
            return sum(len(q) for q in self._server.faults.values())

    @property
    def requests(self) -> list[dict]:
        assert self._server is not None
        with self._server.lock:
            return list(self._server.log)


@pytest.fixture
def http_mirror(tmp_path):
    """An :class:`HTTPMirror` serving ``tmp_path / "mirror"`` (created empty) for one test."""
    root = tmp_path / "mirror"
    root.mkdir(exist_ok=True)
    with HTTPMirror(root) as mirror:
        yield mirror
