"""Compose demo: admit every node as a peer of every other node.

For each node this job has two independent channels, as two focal points would:

- the node's signed card, fetched over the network from ``GET /federation/v1/card``
  (anyone could have tampered with it on the way);
- the node's fingerprint, printed by ``kpnet fingerprint`` from the node's own key
  files (the job mounts each node's data volume).

``kpnet peer add`` admits a card only if it matches the fingerprint, exactly as when the
fingerprint was read aloud. In real life the second channel is the focal points meeting
face to face and reading the fingerprint digit group by digit group
(docs/key-ceremony.md); a shared volume stands in for that meeting here, and only here.

Configuration (environment):

    NODES="CM CF CD"
    NODE_CM="<base URL> <data dir> <database URL>"   one line per node

Peers already admitted are left alone, so the job can run again. Exits 1 on any failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Node:
    node_id: str
    url: str
    data_dir: str
    database_url: str

    def kpnet(self, *args: str) -> str:
        """Run a ``kpnet`` command on this node; return its standard output."""
        env = {**os.environ, "KPNET_DATABASE_URL": self.database_url}
        result = subprocess.run(
            ["kpnet", *args, "--data-dir", self.data_dir],  # noqa: S607
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            sys.exit(f"kpnet {args[0]} on {self.node_id} failed: {result.stderr.strip()}")
        return result.stdout


def nodes_from_environment() -> list[Node]:
    nodes = []
    for node_id in os.environ.get("NODES", "").split():
        try:
            url, data_dir, database_url = os.environ[f"NODE_{node_id}"].split()
        except (KeyError, ValueError):
            sys.exit(f"set NODE_{node_id}='<base URL> <data dir> <database URL>'")
        nodes.append(Node(node_id, url.rstrip("/"), data_dir, database_url))
    if len(nodes) < 2:
        sys.exit("set NODES to at least two node ids, e.g. NODES='CM CF CD'")
    return nodes


def fetch_card(node: Node, into: Path) -> Path:
    path = into / f"{node.node_id}.card.json"
    with urllib.request.urlopen(f"{node.url}/federation/v1/card", timeout=10) as response:  # noqa: S310
        path.write_bytes(response.read())
    return path


def admitted_peers(node: Node) -> set[str]:
    """Node ids in ``kpnet peer list`` (one peer a line, its id first)."""
    return {line.split("\t", 1)[0] for line in node.kpnet("peer", "list").splitlines() if line}


def main() -> None:
    nodes = nodes_from_environment()
    with tempfile.TemporaryDirectory() as work:
        cards = {n.node_id: fetch_card(n, Path(work)) for n in nodes}
        fingerprints = {n.node_id: n.kpnet("fingerprint").strip() for n in nodes}
        print("Fingerprints, from each node's own key files:")
        for node_id, fingerprint in fingerprints.items():
            print(f"  {node_id}  {fingerprint}")
        for node in nodes:
            already = admitted_peers(node)
            for other in nodes:
                if other is node:
                    continue
                if other.node_id in already:
                    print(f"{node.node_id}: {other.node_id} is already a peer")
                    continue
                # Refused (exit 1) unless the card fetched over the network matches the
                # fingerprint taken from the other node's own keys.
                out = node.kpnet(
                    "peer",
                    "add",
                    str(cards[other.node_id]),
                    "--fingerprint",
                    fingerprints[other.node_id],
                )
                print(f"{node.node_id}: {out.strip()}")


if __name__ == "__main__":
    main()
