"""SDK workers of Beam's DirectRunner forked from a warm process (``--direct_running_mode=multi_processing``).

Why: Beam's FnApiRunner starts every SDK worker as ``python -m apache_beam.runners.worker.sdk_worker_main``,
a fresh interpreter that imports Beam, rpv2 and the model libraries (about 1.3 CPU s), loads the models
(LID, LMs, signal artifacts) before its first bundle, and tears all of that down at its end, while the
launcher waits. On the two cores of a laptop this serial start-up and teardown is what kept two workers
of ``rpv2 run`` at 1.4x one on 16,000 documents.

The fork server: a process started as early as a command knows it will run multi-process on the
DirectRunner (:func:`start_for`), before the launcher has imported Beam itself, so both import at once
on different cores. It imports Beam's worker and the modules it is told to, runs the warm-up steps the
launcher sends it (:func:`warm`: ``rpv2 run`` sends "build a ShardProcessor with these settings and load
its models", while it builds the pipeline), and then serves: each SDK worker Beam asks for is a fork of
it, with Beam's modules imported and the models loaded, running Beam's own worker main in the
environment Beam gave it. When the worker is done it exits at once (``os._exit``: nothing of it is
needed after its last bundle, its outputs are published by then).

The server is started with ``python -m`` (not a fork of the launcher), so it is single-threaded by
construction, and forking it is safe: nothing in it has started a thread or a gRPC channel. If a warm-up
leaves a thread running, it stops forking and every worker falls back to Beam's own command (the client
script, pipeline/transforms/worker_client.py, does that). The launcher owns the listening Unix socket and
hands it to the server, so a worker that asks before the server is ready waits in the socket's backlog.
The server exits when the launcher closes its stdin or dies (end of file on stdin), killing the workers
it still has.

Only the worker processes change: Beam's runner, its bundles, the data they exchange and so every output
byte are the same as with Beam's own workers (tested: identical Parquet files for in-process, Beam's
workers and forked workers).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import pickle
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import Any

from pipeline import console_logging

logger = logging.getLogger(__name__)

CLIENT_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker_client.py")
BEAM_WORKER_MODULE = "apache_beam.runners.worker.sdk_worker_main"
# the client's protocol (pipeline/transforms/worker_client.py): a length-prefixed JSON environment in,
# then FORKED and, when the worker has exited, EXITED + its exit status; or FALLBACK
FALLBACK, FORKED, EXITED = b"X", b"F", b"E"
_MAX_REQUEST = 1 << 24  # bytes of a worker's environment: far more than any environment holds

_server: ForkServer | None = None


# --------------------------------------------------------------------------------------------------
# The launcher's side
# --------------------------------------------------------------------------------------------------


def wants_forked_workers(beam_args: Sequence[str]) -> bool:
    """Whether Beam arguments ask for the DirectRunner with SDK worker processes: ``--runner`` unset or
    the DirectRunner, ``--direct_running_mode=multi_processing`` and ``--direct_num_workers`` other than 1.
    Read from the arguments as Beam parses them, without importing Beam (which is the point: the server
    imports it while the launcher does)."""
    values: dict[str, str] = {}
    args = list(beam_args)
    for index, arg in enumerate(args):
        if not arg.startswith("--"):
            continue
        name, sep, value = arg[2:].partition("=")
        if not sep:
            value = args[index + 1] if index + 1 < len(args) and not args[index + 1].startswith("--") else ""
        values[name] = value
    from pipeline.transforms.runner import DIRECT_RUNNER_NAMES  # stdlib imports only, as this module

    runner = values.get("runner", "").lower()
    if runner and runner not in DIRECT_RUNNER_NAMES:
        return False
    return values.get("direct_running_mode") == "multi_processing" and values.get("direct_num_workers", "1") != "1"


class ForkServer:
    """The launcher's handle on a running fork server: its process, its stdin (warm-ups), its socket."""

    def __init__(self, process: subprocess.Popen, directory: str, socket_path: str) -> None:
        self.process = process
        self.directory = directory
        self.socket_path = socket_path

    @classmethod
    def start(cls, imports: Sequence[str] = ()) -> ForkServer:
        """Start a server that imports Beam's worker and ``imports`` (module names) before it serves."""
        directory = tempfile.mkdtemp(prefix="rpv2-workers-")
        socket_path = os.path.join(directory, "fork.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(socket_path)
            listener.listen(128)
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(listener.fileno()), *imports],
                stdin=subprocess.PIPE, pass_fds=(listener.fileno(),),
            )
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        finally:
            listener.close()  # the server has its own copy
        return cls(process, directory, socket_path)

    def worker_command(self) -> str:
        """The shell command Beam runs for each SDK worker: the client script, asking this server."""
        import shlex

        return " ".join(shlex.quote(part) for part in (sys.executable, "-I", "-S", CLIENT_SCRIPT, self.socket_path))

    def alive(self) -> bool:
        return self.process.poll() is None

    def warm(self, step: Callable[[], Any]) -> None:
        """Have the server run ``step`` (picklable, e.g. a functools.partial of a module function)
        before it forks its next worker; what the step leaves in its modules, every worker inherits."""
        if not self.alive() or self.process.stdin is None:
            return
        # the step runs in the launcher's environment of now (RPV2_CACHE, TMPDIR, ... as a worker gets them)
        payload = pickle.dumps((dict(os.environ), step))
        try:
            self.process.stdin.write(struct.pack(">I", len(payload)) + payload)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            logger.debug("fork server gone: warm-up not sent")

    def close(self) -> None:
        """Stop the server (end of file on its stdin: it kills the workers it still has, then exits)."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_for(beam_args: Sequence[str], imports: Sequence[str] = ()) -> ForkServer | None:
    """The process's fork server, started now if ``beam_args`` ask for DirectRunner worker processes
    (:func:`wants_forked_workers`) and none runs; None otherwise. ``RPV2_FORK_WORKERS=0`` turns it off
    (Beam's own worker command then). Stopped by :func:`stop` (pipeline.cli does when the command ends)
    or at exit."""
    global _server
    if _server is not None and _server.alive():
        return _server
    if os.environ.get("RPV2_FORK_WORKERS", "1") == "0" or not wants_forked_workers(beam_args):
        return None
    if not hasattr(os, "fork") or not hasattr(socket, "AF_UNIX"):
        return None
    _server = ForkServer.start(imports)
    atexit.register(stop)
    return _server


def running() -> ForkServer | None:
    """The process's fork server, if one is running."""
    return _server if _server is not None and _server.alive() else None


def warm(step: Callable[[], Any]) -> None:
    """:meth:`ForkServer.warm` on the process's fork server; nothing without one."""
    server = running()
    if server is not None:
        server.warm(step)


def stop() -> None:
    """Stop the process's fork server, if any."""
    global _server
    server, _server = _server, None
    if server is not None:
        server.close()


# --------------------------------------------------------------------------------------------------
# The server's side
# --------------------------------------------------------------------------------------------------


class _Frames:
    """Length-prefixed frames read from a non-blocking file descriptor as they arrive."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.closed = False

    def read(self) -> list[bytes]:
        """The frames complete now: everything the pipe holds is read (a warm-up the launcher sent before
        a worker asked for its fork is complete by then), the rest of a frame waits for its bytes."""
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                self.closed = True
                break
            self.buffer += chunk
        frames = []
        while len(self.buffer) >= 4:
            (size,) = struct.unpack(">I", self.buffer[:4])
            if len(self.buffer) < 4 + size:
                break
            frames.append(self.buffer[4:4 + size])
            self.buffer = self.buffer[4 + size:]
        return frames


def _read_request(conn: socket.socket) -> tuple[dict[str, str], list[int]] | None:
    """A client's environment (JSON) and its stdin, stdout and stderr; None if the request is malformed
    or the client went away."""
    import json

    conn.settimeout(30)
    fds: list[int] = []
    try:
        _, fds, _, _ = socket.recv_fds(conn, 1, 3)
        if len(fds) != 3:
            raise ValueError("a request without the client's stdin, stdout and stderr")
        header = conn.recv(4, socket.MSG_WAITALL)
        if len(header) != 4:
            return None
        (size,) = struct.unpack(">I", header)
        if size > _MAX_REQUEST:
            return None
        payload = conn.recv(size, socket.MSG_WAITALL)
        environment = json.loads(payload) if len(payload) == size else None
        if not isinstance(environment, dict):
            raise ValueError("not an environment")
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        return None
    return environment, fds


def _set_environment(environment: dict[str, str]) -> None:
    """This process's environment becomes ``environment`` (the launcher's, or Beam's for a worker)."""
    os.environ.clear()
    os.environ.update(environment)
    tempfile.tempdir = None  # TMPDIR comes with the environment


def _run_worker(environment: dict[str, str]) -> int:
    """In a forked child: Beam's SDK worker main in ``environment``, as a fresh worker process runs it;
    its exit status."""
    _set_environment(environment)
    # logging is the command's console policy, set up by the server at its start (serve) and inherited;
    # Beam's worker main then adds its handler to the launcher's logging service, as in a fresh worker
    worker_main = importlib.import_module(BEAM_WORKER_MODULE)
    try:
        worker_main.main([])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # a worker that fails says why on its stderr, as Beam's own worker does
        import traceback

        traceback.print_exc()
        return 1
    return 0


def _status(wait_status: int) -> int:
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


def serve(listener: socket.socket, imports: Sequence[str]) -> int:
    """The server's loop: warm-ups from stdin, workers forked for the clients on ``listener``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the launcher's to handle; its exit ends us
    console_logging.configure(console_logging.verbose_from_environment())  # before Beam's import warns
    importlib.import_module(BEAM_WORKER_MODULE)
    for name in imports:
        importlib.import_module(name)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select below
    os.set_blocking(0, False)
    control = _Frames(0)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(0, selectors.EVENT_READ, "control")
    selector.register(wake_read, selectors.EVENT_READ, "wake")
    workers: dict[int, socket.socket] = {}
    forkable = True
    order = {"control": 0, "wake": 1, "accept": 2}  # warm-ups sent before a worker asked come first
    while not control.closed:
        for key, _ in sorted(selector.select(), key=lambda event: order.get(event[0].data, 3)):
            if key.data == "control":
                for frame in control.read():
                    try:
                        environment, step = pickle.loads(frame)
                        _set_environment(environment)
                        step()
                    except Exception:  # a worker then loads what it needs itself, and fails there if it must
                        logger.warning("fork server: warm-up failed; workers load their own state", exc_info=True)
                    if threading.active_count() > 1:
                        logger.warning("fork server: a warm-up left threads running; workers are started by Beam")
                        forkable = False
            elif key.data == "wake":
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 1 << 12)
            elif key.data == "accept":
                conn, _ = listener.accept()
                request = _read_request(conn)
                if request is None or not forkable:
                    for fd in request[1] if request else ():
                        os.close(fd)
                    with contextlib.suppress(OSError):
                        conn.sendall(FALLBACK)
                    conn.close()
                    continue
                environment, stdio = request
                pid = os.fork()
                if pid == 0:  # the worker
                    code = 1
                    try:
                        selector.close()  # our copy of the epoll fd only: the server's registrations stay
                        for fd in (wake_read, wake_write):
                            os.close(fd)
                        for other in (listener, conn, *workers.values()):
                            other.close()
                        for target, fd in enumerate(stdio):  # the client's stdio, as Beam gave its worker
                            os.dup2(fd, target)
                            os.close(fd)
                        signal.set_wakeup_fd(-1)
                        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                        signal.signal(signal.SIGINT, signal.default_int_handler)
                        code = _run_worker(environment)
                    finally:
                        with contextlib.suppress(Exception):
                            sys.stdout.flush()
                            sys.stderr.flush()
                        os._exit(code)
                for fd in stdio:
                    os.close(fd)
                conn.setblocking(True)
                with contextlib.suppress(OSError):
                    conn.sendall(FORKED)
                workers[pid] = conn
                selector.register(conn, selectors.EVENT_READ, pid)
            else:  # a client's socket is readable: it went away (Beam killed it), so its worker goes too
                with contextlib.suppress(ProcessLookupError):
                    os.kill(key.data, signal.SIGKILL)
                selector.unregister(key.fileobj)
        while workers:  # reap the workers that exited and tell their clients
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = workers.pop(pid, None)
            if conn is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(conn)
            with contextlib.suppress(OSError):
                conn.sendall(EXITED + struct.pack(">i", _status(wait_status)))
            conn.close()
    for pid in workers:  # the launcher is gone: so are its workers
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in workers:  # reaped, so that their CPU time counts in the command's (wait4, time, a scheduler's)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    return 0


def _main(argv: Sequence[str]) -> int:
    listener = socket.socket(fileno=int(argv[0]))
    return serve(listener, argv[1:])


if __name__ == "__main__":
    # the launcher waits for this exit (ForkServer.close): no teardown of the modules the workers needed
    exit_code = _main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
