"""The deployment kit's scripts, run for real: the compose node entrypoint (init once,
then serve), the compose peering job (cards fetched over HTTP, fingerprints from the
nodes' own key files), the image's and compose's health checks, and the Kubernetes
init script that builds a node's data directory from a ConfigMap and a Secret.

The nodes run as `kpnet serve` processes on loopback ports with SQLite databases.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from node.config import load_settings
from node.db import make_engine
from node.db.models import Peer
from node.keystore import KeyFileError, load_identity
from node.readiness import ServeProcess
from node.runtime import open_node
from tests.conftest import create_node, free_port
from tests.deploy.conftest import (
    DEPLOY,
    KUBE,
    dockerfile_healthcheck,
    kube_object,
    script_env,
)

pytestmark = pytest.mark.slow  # several node processes


def peer_policy() -> dict[str, str]:
    """The endpoint policy compose gives nodes and the peering job (plain http allowed),
    for nodes on loopback here instead of on the compose network's range."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    return {**compose["x-peer-policy"], "KPNET_PEER_ALLOWED_NETWORKS": "127.0.0.0/8"}


class ComposeNodes:
    """Nodes started the way compose starts them: deploy/compose/node-entrypoint.sh with
    KPNET_NODE_ID, KPNET_NODE_NAME, KPNET_PUBLIC_URL and KPNET_DATABASE_URL set."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.processes: list[subprocess.Popen[bytes]] = []
        self.nodes: dict[str, dict[str, str]] = {}

    def start(self, node_id: str) -> None:
        port = free_port()
        node = {
            "url": f"http://127.0.0.1:{port}",
            "port": str(port),
            "data_dir": str(self.root / node_id.lower()),
            "database_url": f"sqlite:///{self.root / (node_id.lower() + '.db')}",
        }
        env = script_env(
            **peer_policy(),
            KPNET_DATA_DIR=node["data_dir"],
            KPNET_NODE_ID=node_id,
            KPNET_NODE_NAME=f"Cellule KP {node_id}",
            KPNET_PUBLIC_URL=node["url"],
            KPNET_DATABASE_URL=node["database_url"],
            KPNET_HOST="127.0.0.1",
            KPNET_PORT=node["port"],
        )
        log = self.root / f"{node_id}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                ["/bin/sh", str(DEPLOY / "compose" / "node-entrypoint.sh")],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        ServeProcess(process, node["url"], log).wait_ready()
        self.nodes[node_id] = node

    def fingerprint(self, node_id: str) -> str:
        node = self.nodes[node_id]
        opened = open_node(
            load_settings(node["data_dir"], database_url=node["database_url"]), migrate=False
        )
        try:
            return opened.identity.fingerprint
        finally:
            opened.close()

    def peers(self, node_id: str) -> dict[str, str]:
        engine = make_engine(self.nodes[node_id]["database_url"])
        try:
            with engine.connect() as connection:
                return dict(connection.execute(select(Peer.node_id, Peer.status)).all())
        finally:
            engine.dispose()

    def peering_env(self, **nodes: dict[str, str]) -> dict[str, str]:
        """The peering job's environment for ``nodes`` (default: every running node)."""
        nodes = nodes or self.nodes
        env = script_env(**peer_policy(), NODES=" ".join(nodes))
        for node_id, node in nodes.items():
            env[f"NODE_{node_id}"] = f"{node['url']} {node['data_dir']} {node['database_url']}"
        return env

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="module")
def compose_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeNodes]:
    nodes = ComposeNodes(tmp_path_factory.mktemp("compose"))
    try:
        for node_id in ("CM", "CF"):
            nodes.start(node_id)
        yield nodes
    finally:
        nodes.stop()


def run_peering(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEPLOY / "compose" / "peer-nodes.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_node_entrypoint_creates_the_node_without_writing_the_database_url(compose_nodes):
    for node_id, node in compose_nodes.nodes.items():
        config = tomllib.loads((Path(node["data_dir"]) / "config.toml").read_text("utf-8"))
        assert config == {
            "node_id": node_id,
            "node_name": f"Cellule KP {node_id}",
            "public_url": node["url"],
        }  # the database URL stays in the environment
        key = Path(node["data_dir"]) / "keys" / "signing.key"
        assert key.stat().st_mode & 0o777 == 0o600
    log = (compose_nodes.root / "CM.log").read_text()
    assert log.count("Node CM created") == 1


def test_peering_job_refuses_a_card_that_does_not_match_the_fingerprint(compose_nodes, tmp_path):
    # GA's fingerprint, but the card found at "GA's URL" is CM's: a man in the middle.
    impostor = create_node(tmp_path / "ga", "GA")
    cm = compose_nodes.nodes["CM"]
    ga = {
        "url": cm["url"],
        "data_dir": str(impostor.data_dir),
        "database_url": impostor.sqlalchemy_url,
    }

    result = run_peering(compose_nodes.peering_env(CM=cm, GA=ga))

    assert result.returncode == 1, result.stdout
    assert "does not match the fingerprint" in result.stderr
    assert "GA" not in compose_nodes.peers("CM")


def test_peering_job_admits_every_node_on_every_other_after_checking_fingerprints(compose_nodes):
    result = run_peering(compose_nodes.peering_env())
    assert result.returncode == 0, result.stderr + result.stdout

    for node_id in compose_nodes.nodes:
        assert f"{node_id}  {compose_nodes.fingerprint(node_id)}" in result.stdout  # printed
        others = {other: "active" for other in compose_nodes.nodes if other != node_id}
        assert compose_nodes.peers(node_id) == others

    again = run_peering(compose_nodes.peering_env())
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("is already a peer") == 2


def test_image_and_compose_health_checks_pass_on_a_healthy_node_only(compose_nodes):
    node = compose_nodes.nodes["CF"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    compose_check = compose["services"]["node-cf"]["healthcheck"]["test"]
    assert compose_check[0] == "CMD"
    compose_command = [c.replace(":8100/", f":{node['port']}/") for c in compose_check[1:]]
    image_command = ["/bin/sh", "-c", dockerfile_healthcheck()]

    def exit_codes() -> list[int]:
        env = script_env(KPNET_PORT=node["port"])
        return [
            subprocess.run(
                command, env=env, capture_output=True, timeout=30, check=False
            ).returncode
            for command in (image_command, compose_command)
        ]

    assert exit_codes() == [0, 0]
    key = Path(node["data_dir"]) / "keys" / "signing.key"
    key.chmod(0o644)  # /healthz now answers 503: the keys are not usable
    try:
        assert 0 not in exit_codes()
    finally:
        key.chmod(0o600)
    assert exit_codes() == [0, 0]


# -- Kubernetes: deploy/kubernetes/prepare-data-dir.sh --------------------------------------


def secret_mount(source: Path, target: Path) -> None:
    """What a Secret volume mounted with fsGroup holds: the node's files, group-readable."""
    target.mkdir()
    for path in [*(source / "keys").iterdir(), source / "card.json"]:
        copy = target / path.name
        copy.write_bytes(path.read_bytes())
        copy.chmod(0o440)


def run_prepare(config: Path, keys: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(KUBE / "prepare-data-dir.sh")],
        env=script_env(
            KPNET_CONFIG_SOURCE=str(config),
            KPNET_KEYS_SOURCE=str(keys),
            KPNET_DATA_DIR=str(data_dir),
        ),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_kubernetes_init_script_builds_a_data_directory_the_node_accepts(tmp_path):
    original = create_node(tmp_path / "made-by-init")
    retired = original.keys_dir / "encryption.0123456789abcdef.retired"  # after a rotation
    retired.write_bytes(secrets.token_bytes(32))
    retired.chmod(0o600)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text(
        (original.data_dir / "config.toml").read_text()
    )
    secret_mount(original.data_dir, tmp_path / "secret")
    with pytest.raises(KeyFileError, match="readable by others"):  # as mounted: refused
        load_identity(tmp_path / "secret", "CM")

    data_dir = tmp_path / "emptydir" / "node"
    result = run_prepare(tmp_path / "config", tmp_path / "secret", data_dir)
    assert result.returncode == 0, result.stderr

    expected = load_identity(original.keys_dir, "CM")
    node = open_node(load_settings(data_dir, database_url=original.sqlalchemy_url))
    try:
        assert node.identity.fingerprint == expected.fingerprint
        assert node.card.to_json() == open_card(original.card_path)
    finally:
        node.close()
    assert sorted(p.name for p in (data_dir / "keys").iterdir()) == sorted(
        p.name for p in original.keys_dir.iterdir()
    )
    assert data_dir.stat().st_mode & 0o777 == 0o700
    for path in [*(data_dir / "keys").iterdir(), data_dir / "card.json", data_dir / "config.toml"]:
        assert path.stat().st_mode & 0o777 == 0o600, path


def open_card(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text("utf-8")))


def test_kubernetes_init_script_refuses_the_placeholder_secret(kube, tmp_path):
    keys = tmp_path / "secret"
    keys.mkdir()
    for name, value in kube_object(kube, "Secret", "kpnet-node-keys")["stringData"].items():
        (keys / name).write_text(value)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text((KUBE / "config.toml").read_text())

    result = run_prepare(tmp_path / "config", keys, tmp_path / "data")

    assert result.returncode == 1
    assert "signing.key is missing or not a 32-byte key" in result.stderr
    assert not (tmp_path / "data" / "keys" / "signing.key").exists()


def test_kubernetes_init_script_is_what_the_pods_run(kube):
    for kind in ("Deployment", "Job"):
        pod = kube_object(kube, kind)["spec"]["template"]["spec"]
        (init,) = pod["initContainers"]
        assert init["command"] == ["/bin/sh", "/etc/kpnet/scripts/prepare-data-dir.sh"]
        mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes[mounts["/etc/kpnet/scripts"]]["configMap"]["name"] == "kpnet-scripts"
        assert volumes[mounts["/etc/kpnet/config"]]["configMap"]["name"] == "kpnet-config"
        assert volumes[mounts["/etc/kpnet/keys"]]["secret"]["secretName"] == "kpnet-node-keys"
        data_dir = {e["name"]: e["value"] for e in init["env"]}["KPNET_DATA_DIR"]
        for container in pod["containers"]:
            assert {e["name"]: e["value"] for e in container["env"]}["KPNET_DATA_DIR"] == data_dir
            shared = {m["name"] for m in container["volumeMounts"]} & set(mounts.values())
            assert volumes[mounts[str(Path(data_dir).parent)]]["name"] in shared
    generators = {g["name"]: g["files"] for g in kube["kustomization"]["configMapGenerator"]}
    assert generators["kpnet-scripts"] == ["prepare-data-dir.sh"]
    assert generators["kpnet-config"] == ["config.toml"]
