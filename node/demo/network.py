"""The demo's three nodes: created with ``init_node``, peered through the same
fingerprint-checked path as ``kpnet peer add``, each run as its own ``kpnet serve``
process on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..bootstrap import init_node
from ..config import load_settings
from ..readiness import NodeNotReady, ServeProcess
from ..runtime import open_node, utc_now
from ..schemas.agreements import SharingAgreement
from ..services.actors import Actor
from ..services.endpoint_policy import LOOPBACK_PEERS, EndpointPolicy
from ..services.peers import PeerRegistry
from ..services.tokens import TokenService
from .records import LICENSEES, NODES, SUBJECTS

SETUP = Actor("demo-setup", "admin")
# Quicker redelivery than a real deployment needs, so a restarted node catches up in
# seconds while the demo watches.
DEMO_ENV = {
    "KPNET_DELIVERY_POLL_SECONDS": "0.5",
    "KPNET_DELIVERY_BACKOFF_BASE_SECONDS": "0.5",
    "KPNET_DELIVERY_BACKOFF_CAP_SECONDS": "2",
}


class DemoError(Exception):
    """The demo could not set up or run its nodes."""


@dataclass
class DemoNode:
    node_id: str
    data_dir: Path
    port: int
    tokens: dict[str, str] = field(default_factory=dict)
    serving: ServeProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, role: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            timeout=30.0,
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
        )

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    @property
    def log(self) -> Path:
        return self.data_dir / "serve.log"

    def spawn(self) -> None:
        log = open(self.log, "ab")  # noqa: SIM115 - the child keeps it
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "node",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
            ],
            env={**os.environ, **DEMO_ENV},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.serving = ServeProcess(process, self.url, self.log)

    def wait_ready(self) -> None:
        """Return once the node is ready; else a ``DemoError`` with its last log lines
        (the demo's temporary directory, log included, is removed when it ends)."""
        assert self.serving is not None
        try:
            self.serving.wait_ready()
        except NodeNotReady as exc:
            raise DemoError(f"node {self.node_id} did not start: {exc}") from None

    def stop(self) -> None:
        process = self.serving.process if self.serving is not None else None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.serving = None


def free_ports(count: int, first: int) -> list[int]:
    """``first``, ``first + 1``, … if they are all free, else any free ports."""
    wanted = list(range(first, first + count))
    if all(_free(port) for port in wanted):
        return wanted
    ports = []
    for _ in range(count):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
    return ports


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def create_nodes(base: Path, first_port: int) -> list[DemoNode]:
    """Create the three nodes, each with an officer and an analyst token, and peer
    every pair: each admits the other's card only with its fingerprint."""
    nodes = []
    for (node_id, name), port in zip(
        NODES.items(), free_ports(len(NODES), first_port), strict=True
    ):
        settings = init_node(
            base / node_id,
            node_id=node_id,
            name=name,
            url=f"http://127.0.0.1:{port}",
            now=utc_now(),
            # The demo's nodes reach each other over http on loopback.
            options=LOOPBACK_PEERS,
        )
        node = DemoNode(node_id, settings.data_dir, port)
        runtime = open_node(settings, migrate=False)
        try:
            with runtime.sessions() as session:
                tokens = TokenService(session, SETUP, runtime.now())
                for role in ("officer", "analyst"):
                    node.tokens[role] = tokens.create(name=f"demo-{role}", role=role)[1]
                session.commit()
        finally:
            runtime.close()
        nodes.append(node)
    for node in nodes:
        for other in nodes:
            if other is not node:
                _admit(node, other)
    return nodes


def _admit(node: DemoNode, other: DemoNode) -> None:
    """What ``kpnet peer add CARD --fingerprint F`` does, with the card file ``other``
    handed over and the fingerprint its focal point read aloud."""
    other_settings = load_settings(other.data_dir)
    card = other_settings.card_path.read_bytes()
    other_runtime = open_node(other_settings, migrate=False)
    fingerprint = other_runtime.identity.fingerprint
    other_runtime.close()
    # CF answers CM's KYC queries from its subjects of interest too (hits only).
    agreement = (
        SharingAgreement(kyc_record_kinds=["licensee", "subject"])
        if (node.node_id, other.node_id) == ("CF", "CM")
        else None
    )
    runtime = open_node(load_settings(node.data_dir), migrate=False)
    try:
        with runtime.sessions() as session:
            PeerRegistry(
                session,
                SETUP,
                runtime.now(),
                own_node_id=node.node_id,
                endpoints=EndpointPolicy.from_settings(runtime.settings),
            ).add(card, fingerprint=fingerprint, agreement=agreement)
            session.commit()
    finally:
        runtime.close()


def seed(node: DemoNode) -> int:
    """Load the node's invented records through its API; returns how many."""
    count = 0
    with node.client("analyst") as api:
        for kind, records in (("licensees", LICENSEES), ("subjects", SUBJECTS)):
            for body in records[node.node_id]:
                response = api.post(f"/api/v1/{kind}", json=body)
                if response.status_code != 201:
                    raise DemoError(f"seeding {node.node_id} {kind}: {response.text}")
                count += 1
    return count
