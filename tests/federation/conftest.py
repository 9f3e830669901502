"""Real nodes for federation tests: each a `kpnet serve` process on its own loopback
port with its own database, admitted to each other through the same card + fingerprint
path an operator uses.

Delivery timings are shortened through environment variables so tests run quickly.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from node.config import load_settings
from node.runtime import open_node
from node.services.agreements import SharingAgreement
from node.services.peers import PeerRegistry
from node.services.records import Actor

# conftest modules are imported by pytest; reuse the shared helpers from tests/conftest.py.
from tests.conftest import create_node, issue_tokens  # noqa: F401  (re-exported)

KPNET = str(Path(sys.executable).parent / "kpnet")
FAST_DELIVERY = {
    "KPNET_DELIVERY_POLL_SECONDS": "0.2",
    "KPNET_DELIVERY_BACKOFF_BASE_SECONDS": "0.2",
    "KPNET_DELIVERY_BACKOFF_CAP_SECONDS": "1.5",
    "KPNET_DELIVERY_LEASE_SECONDS": "10",
}
ADMIN = Actor("test-setup", "admin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningNode:
    node_id: str
    data_dir: Path
    port: int
    tokens: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, port: int | None = None, extra_env: dict[str, str] | None = None,
              wait: bool = True) -> subprocess.Popen[bytes]:
        """Start a `kpnet serve` process (several may share one PostgreSQL database)."""
        env = {**os.environ, **FAST_DELIVERY, **(extra_env or {})}
        with open(self.data_dir / f"serve-{len(self.processes)}.log", "ab") as log:
            process = subprocess.Popen(
                [KPNET, "serve", "--data-dir", str(self.data_dir), "--port", str(port or self.port)],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        if wait:
            wait_healthy(f"http://127.0.0.1:{port or self.port}", process)
        return process

    def stop(self, sig: int = signal.SIGTERM) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(sig)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()

    def api(self, role: str = "analyst", timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout,
                            headers={"Authorization": f"Bearer {self.tokens[role]}"})

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.data_dir.glob("serve-*.log")))


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"node at {url} exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"node at {url} did not become healthy")


def admit(node: RunningNode, other: RunningNode, agreement: SharingAgreement | None = None) -> None:
    """``node`` admits ``other``: its card, checked against its fingerprint."""
    other_settings = load_settings(other.data_dir)
    card_bytes = other_settings.card_path.read_bytes()
    other_node = open_node(other_settings, migrate=False)
    fingerprint = other_node.identity.fingerprint
    other_node.close()
    runtime = open_node(load_settings(node.data_dir), migrate=False)
    try:
        with runtime.sessions() as session:
            PeerRegistry(session, ADMIN, runtime.now(), own_node_id=node.node_id).add(
                card_bytes, fingerprint=fingerprint, agreement=agreement)
            session.commit()
    finally:
        runtime.close()


def build_network(base: Path, node_ids: tuple[str, ...],
                  database_urls: dict[str, str] | None = None) -> list[RunningNode]:
    """Create nodes (not started) that have all admitted each other."""
    nodes = []
    for node_id in node_ids:
        port = free_port()
        settings = create_node(base / node_id, node_id, port=port,
                               database_url=(database_urls or {}).get(node_id))
        nodes.append(RunningNode(node_id, settings.data_dir, port, issue_tokens(settings)))
    for node in nodes:
        for other in nodes:
            if other is not node:
                admit(node, other)
    return nodes


@pytest.fixture
def network(tmp_path: Path) -> Iterator[list[RunningNode]]:
    """Three running nodes, CM, CF and CD, each peered with the other two (SQLite)."""
    nodes = build_network(tmp_path, ("CM", "CF", "CD"))
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns a truthy value; return it (or fail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
