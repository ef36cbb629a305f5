"""The SDK-worker command of a DirectRunner run whose workers are forked from a warm process.

Beam's FnApiRunner starts each SDK worker of ``--direct_running_mode=multi_processing`` by running a
shell command with the worker's environment (control and logging endpoints, pipeline options, worker
id). When a fork server is running (pipeline/transforms/worker_pool.py) that command is this script,
run as ``python -I -S worker_client.py SOCKET``: standard library only, no site-packages, so it starts
in milliseconds. It hands its stdin, stdout and stderr and its environment to the fork server over
the Unix socket ``SOCKET``, waits, and exits with the forked worker's exit status.

When the server cannot fork a worker (it is gone, or a warm-up left threads running in it, which makes
forking unsafe) it answers ``X`` or not at all, and this script becomes Beam's own worker, ``python -m
apache_beam.runners.worker.sdk_worker_main``, in the same environment: slower to start, never wrong.
"""

import json
import os
import socket
import struct
import sys

FALLBACK = b"X"  # the server's answer when it will not fork this worker
FORKED = b"F"  # the server's answer when it has forked the worker; then, when it has exited:
EXITED = b"E"  # followed by the worker's exit status, a signed 32-bit big-endian int


def _receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def main(argv: list) -> int:
    """Ask the fork server at ``argv[1]`` for a worker in this environment; its exit status."""
    answer = exited = b""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(argv[1])
            # this process's stdin, stdout and stderr (Beam's worker's), for the forked worker
            socket.send_fds(sock, [b"S"], [0, 1, 2])
            payload = json.dumps(dict(os.environ)).encode("utf-8")
            sock.sendall(struct.pack(">I", len(payload)) + payload)
            answer = _receive(sock, 1)
            if answer == FORKED:
                exited = _receive(sock, 5)
    except OSError:
        pass
    if answer == FORKED:
        if len(exited) == 5 and exited[:1] == EXITED:
            return struct.unpack(">i", exited[1:])[0]
        print("rpv2 worker: the fork server went away while its worker ran", file=sys.stderr)
        return 1
    # no worker was forked for this request (refused, or no server): be Beam's own worker (Beam's
    # command for --direct_running_mode=multi_processing), with the site-packages this script went without
    os.execv(sys.executable, [sys.executable, "-m", "apache_beam.runners.worker.sdk_worker_main"])
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
