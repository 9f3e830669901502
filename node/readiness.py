"""Starting a ``kpnet serve`` process, waiting for it to be ready, and saying why it
is not.

The demo, the benchmarks and the tests start nodes as processes whose output goes to a
log file (``start_serve``). They wait on readiness (``/healthz`` answering 200), never
for a fixed time; a node that exits or does not become ready is reported with its exit
status and the last lines of its own log, which say why.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

# Generous: a readiness wait returns as soon as the node is ready, and nodes started
# together on a busy two-core machine take long to start.
READY_SECONDS = 180.0
LOG_LINES = 30


class NodeNotReady(RuntimeError):
    """A node process exited, or did not become ready in time; the message has its
    last log lines."""


def last_lines(log: Path, count: int = LOG_LINES) -> str:
    """The last ``count`` lines of ``log`` (or a note that it is missing or empty)."""
    try:
        with log.open(encoding="utf-8", errors="replace") as lines:
            tail = deque(lines, maxlen=count)
    except OSError:
        return f"(no log at {log})"
    return "".join(tail).rstrip() or f"({log} is empty)"


@dataclass
class ServeProcess:
    """A started node process, the URL it serves and the file its output goes to."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def wait_ready(self, timeout: float = READY_SECONDS, interval: float = 0.1) -> None:
        """Return once ``/healthz`` answers 200 (asked every ``interval`` seconds); raise
        ``NodeNotReady`` if the process exits first or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.process.poll()
            if status is not None:
                raise self._not_ready(f"exited with status {status}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise self._not_ready(f"was not ready within {timeout:.0f} s")
            time.sleep(interval)

    def stop(self, timeout: float = 30.0) -> None:
        """Terminate the process and wait for it (killed if it outlives ``timeout``)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _not_ready(self, what: str) -> NodeNotReady:
        return NodeNotReady(
            f"the node at {self.url} {what}; the last lines of {self.log}:\n" + last_lines(self.log)
        )


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on just now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kpnet_command() -> str:
    """The ``kpnet`` script installed beside this Python."""
    return str(Path(sys.executable).parent / "kpnet")


def start_serve(
    data_dir: Path,
    port: int,
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
) -> ServeProcess:
    """Start ``kpnet serve`` for the node in ``data_dir`` on loopback ``port``, its
    output appended to ``log`` and ``env`` added to this process's environment. It
    returns at once: ``wait_ready`` waits for the node."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [kpnet_command(), "serve", "--data-dir", str(data_dir), "--port", str(port)],
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return ServeProcess(process, f"http://127.0.0.1:{port}", log)
