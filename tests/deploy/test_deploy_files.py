"""The deployment kit's files, read and checked against the code they deploy: the
image (deploy/Dockerfile), the demo federation (deploy/compose.yaml), one node on
Kubernetes (deploy/kubernetes/), the systemd unit and the TLS proxy.

Every image they name is a public official image or the one built from
deploy/Dockerfile, every file they name exists, and every KPNET_* variable they set is
a real setting of node/config.py.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from node.config import parse_networks
from node.keystore import ENCRYPTION_FILE, SIGNING_FILE
from tests.deploy.conftest import (
    BIN,
    BUILT_IMAGE,
    DEPLOY,
    KUBE,
    REPO,
    SETTINGS,
    assert_pulled_image_is_official,
    default_of,
    dockerfile_healthcheck,
    dockerfile_instructions,
    exec_form,
    final_stage,
    image_name,
    kube_object,
    node_services,
    setting_of,
)

# -- Dockerfile -----------------------------------------------------------------------------


def dockerignored() -> list[str]:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerfile_builds_from_official_python_and_installs_the_repository():
    instructions = dockerfile_instructions()
    stages = [args.split()[0] for name, args in instructions if name == "FROM"]
    assert stages, "no FROM"
    for image in stages:
        assert_pulled_image_is_official(image)
        assert image_name(image) == ("python", "3.11-slim")
    runs = " ".join(args for name, args in instructions if name == "RUN")
    assert re.search(r"pip install \.(\s|$)", runs), "the project is installed with `pip install .`"
    ignored = dockerignored()
    for name, args in instructions:
        if name != "COPY" or "--from=" in args:
            continue
        *sources, _target = args.split()
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
            top = source.strip("/").split("/")[0]
            assert top not in ignored, f"COPY {source}, but .dockerignore leaves it out"
    # The package build needs these (pyproject.toml names README.md as its readme).
    copied = " ".join(args for name, args in instructions if name == "COPY")
    for needed in ("pyproject.toml", "README.md", "protocol", "node"):
        assert needed in copied, needed


def test_dockerfile_runs_kpnet_serve_as_a_non_root_user_with_a_data_volume():
    stage = final_stage()
    users = [args for name, args in stage if name == "USER"]
    assert users, "the image must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), users[-1]

    env: dict[str, str] = {}
    for name, args in stage:
        if name == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    assert env["KPNET_DATA_DIR"] == "/var/lib/kpnet"
    for key in env:
        if key.startswith("KPNET_"):
            setting_of(key)
    volumes = [
        exec_form(args) if args.startswith("[") else args.split()
        for name, args in stage
        if name == "VOLUME"
    ]
    assert ["/var/lib/kpnet"] in volumes
    exposed = [args.split("/")[0] for name, args in stage if name == "EXPOSE"]
    assert exposed == [env["KPNET_PORT"]]
    assert env["KPNET_HOST"] == "0.0.0.0"  # the node's default (127.0.0.1) is unreachable

    entrypoint = [exec_form(args) for name, args in stage if name == "ENTRYPOINT"]
    command = [exec_form(args) for name, args in stage if name == "CMD"]
    assert entrypoint[-1] == ["kpnet"]
    assert command[-1] == ["serve"]


def test_dockerfile_healthcheck_asks_healthz_with_python_only():
    command = dockerfile_healthcheck()
    assert "/healthz" in command
    assert command.startswith("python -c ")
    assert "curl" not in command and "wget" not in command


# -- compose.yaml ---------------------------------------------------------------------------


def test_compose_uses_official_images_or_the_image_built_from_the_dockerfile(compose):
    for name, service in compose["services"].items():
        if "build" in service:
            build = service["build"]
            assert (DEPLOY / build["context"]).resolve() == REPO, name
            assert (REPO / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile", name
            assert image_name(service["image"])[0] == BUILT_IMAGE, name
        else:
            assert_pulled_image_is_official(service["image"])


def test_compose_mounts_only_files_of_the_repository_and_runs_scripts_it_mounts(compose):
    for name, service in compose["services"].items():
        mounts: dict[str, Path] = {}
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
                mounts[target] = DEPLOY / source
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"
        for word in service.get("entrypoint", []):
            if word.startswith("/opt/kpnet-compose/"):
                mounted = mounts["/opt/kpnet-compose"] / word.removeprefix("/opt/kpnet-compose/")
                assert mounted.is_file(), f"{name}: {word} is not in deploy/compose/"


def test_compose_runs_three_nodes_each_on_its_own_postgresql(compose):
    nodes = node_services(compose)
    assert sorted(s["environment"]["KPNET_NODE_ID"] for s in nodes.values()) == ["CD", "CF", "CM"]
    databases = set()
    for name, service in nodes.items():
        env = service["environment"]
        for key in env:
            setting_of(key)
        database = urlsplit(env["KPNET_DATABASE_URL"])
        assert database.scheme == "postgresql"
        db_service = compose["services"][database.hostname]
        assert db_service["image"] == "postgres:16"
        assert db_service["environment"]["POSTGRES_PASSWORD"] == database.password
        assert service["depends_on"][database.hostname]["condition"] == "service_healthy"
        databases.add(database.hostname)
        assert urlsplit(env["KPNET_PUBLIC_URL"]).hostname == name
        assert service["entrypoint"][-1].endswith("node-entrypoint.sh")
        assert any(v.endswith(":/var/lib/kpnet") for v in service["volumes"])
    assert len(databases) == 3


def test_compose_peering_job_knows_every_node_by_its_url_volume_and_database(compose):
    nodes = node_services(compose)
    job = compose["services"]["peering"]
    assert job["restart"] == "no"
    assert set(job["depends_on"]) == set(nodes)
    assert all(d["condition"] == "service_healthy" for d in job["depends_on"].values())
    env = job["environment"]
    mounted = dict(v.split(":")[:2] for v in job["volumes"])
    by_volume = dict(zip(mounted.values(), mounted.keys(), strict=True))
    assert set(env["NODES"].split()) == {s["environment"]["KPNET_NODE_ID"] for s in nodes.values()}
    for service in nodes.values():
        node_id = service["environment"]["KPNET_NODE_ID"]
        url, data_dir, database_url = env[f"NODE_{node_id}"].split()
        assert url == service["environment"]["KPNET_PUBLIC_URL"]
        assert database_url == service["environment"]["KPNET_DATABASE_URL"]
        node_volume = next(
            v.split(":")[0] for v in service["volumes"] if v.endswith(":/var/lib/kpnet")
        )
        assert by_volume[data_dir] == node_volume


def test_compose_nodes_allow_plain_http_only_on_the_compose_network(compose):
    """The demo's nodes reach each other by http on the compose network: the endpoint
    policy must allow that network's range, and no other."""
    (subnet,) = [c["subnet"] for c in compose["networks"]["default"]["ipam"]["config"]]
    expected = {"KPNET_PEER_ALLOW_HTTP": "true", "KPNET_PEER_ALLOWED_NETWORKS": subnet}
    for name, service in [
        *node_services(compose).items(),
        ("peering", compose["services"]["peering"]),
    ]:
        environment = service["environment"]
        assert {k: environment.get(k) for k in expected} == expected, name
        for setting in expected:
            setting_of(setting)
    assert [str(n) for n in parse_networks(subnet)] == [subnet]


def test_compose_prometheus_scrapes_every_node_with_the_shipped_rules(compose):
    prometheus = compose["services"]["prometheus"]
    assert "./prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text("utf-8"))
    targets = {
        t
        for job in config["scrape_configs"]
        for group in job["static_configs"]
        for t in group["targets"]
    }
    assert targets == {f"{name}:{default_of('port')}" for name in node_services(compose)}


# -- Kubernetes -----------------------------------------------------------------------------


def probe_path(container: dict[str, Any], probe: str) -> str:
    return str(container[probe]["httpGet"]["path"])


def test_kubernetes_deployment_runs_two_replicas_with_health_probes(kube):
    deployment = kube_object(kube, "Deployment")
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["serve"]
    assert probe_path(container, "readinessProbe") == "/healthz"
    assert probe_path(container, "livenessProbe") == "/livez"
    port = container["ports"][0]
    assert port["containerPort"] == default_of("port")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    service = kube_object(kube, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in (port["name"], port["containerPort"])


def pod_specs(kube: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        "Deployment": kube_object(kube, "Deployment")["spec"]["template"]["spec"],
        "Job": kube_object(kube, "Job")["spec"]["template"]["spec"],
    }


def test_kubernetes_job_applies_migrations(kube):
    job = kube_object(kube, "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container.get("command", ["kpnet"]) == ["kpnet"]  # the image's entrypoint
    assert container["args"] == ["db", "upgrade"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")


def test_kubernetes_pods_use_only_the_built_image_real_settings_and_shipped_objects(kube):
    secrets = {o["metadata"]["name"]: o for o in kube["objects"] if o["kind"] == "Secret"}
    config_maps = {g["name"] for g in kube["kustomization"]["configMapGenerator"]}
    assert {i["name"] for i in kube["kustomization"]["images"]} == {BUILT_IMAGE}
    for kind, pod in pod_specs(kube).items():
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert container["image"] == BUILT_IMAGE, (kind, container["name"])
            for env in container.get("env", []):
                setting_of(env["name"])
            for source in container.get("envFrom", []):
                secret = secrets[source["secretRef"]["name"]]
                for key in secret.get("stringData", {}) | secret.get("data", {}):
                    setting_of(key)
            mounted = {m["name"] for m in container.get("volumeMounts", [])}
            assert mounted <= {v["name"] for v in pod["volumes"]}, (kind, container["name"])
        for volume in pod["volumes"]:
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps


def test_kubernetes_key_secret_holds_the_key_files_the_node_reads(kube):
    keys = kube_object(kube, "Secret", "kpnet-node-keys")
    assert set(keys["stringData"]) == {SIGNING_FILE, ENCRYPTION_FILE, "card.json"}
    config = tomllib.loads((KUBE / "config.toml").read_text("utf-8"))
    assert set(config) <= SETTINGS
    assert {"node_id", "node_name", "public_url"} <= set(config)
    assert "database_url" not in config  # a secret: it comes from kpnet-env
    if shutil.which("kubectl"):
        rendered = subprocess.run(
            ["kubectl", "kustomize", str(KUBE)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert rendered.returncode == 0, rendered.stderr
        kinds = [o["kind"] for o in yaml.safe_load_all(rendered.stdout) if o]
        assert kinds.count("ConfigMap") == 2 and "Deployment" in kinds and "Job" in kinds


# -- systemd --------------------------------------------------------------------------------


def unit_directives() -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / "kpnet.service").read_text("utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        directives.setdefault(key.strip(), []).append(value.strip())
    return directives


def test_systemd_unit_is_hardened():
    unit = unit_directives()
    expected = {
        "User": "kpnet",
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
        "PrivateDevices": "yes",
        "RestrictSUIDSGID": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
    }
    for key, value in expected.items():
        assert unit.get(key) == [value], (key, unit.get(key))
    assert "@system-service" in unit["SystemCallFilter"]
    families = set(unit["RestrictAddressFamilies"][0].split())
    assert families == {"AF_UNIX", "AF_INET", "AF_INET6"}
    environment = dict(v.split("=", 1) for v in unit["Environment"])
    data_dir = environment["KPNET_DATA_DIR"]
    assert unit["ReadWritePaths"] == [data_dir]
    assert unit["StateDirectory"] == [Path(data_dir).name] and data_dir.startswith("/var/lib/")
    for key in environment:
        setting_of(key)
    assert unit["ExecStart"][0].split()[-2:] == ["kpnet", "serve"] or unit["ExecStart"][0].endswith(
        "/kpnet serve"
    )


def test_systemd_unit_verifies_when_systemd_analyze_is_present(tmp_path):
    text = (DEPLOY / "systemd" / "kpnet.service").read_text("utf-8")
    assert "ExecStart=/opt/kpnet/bin/kpnet serve" in text
    if not shutil.which("systemd-analyze"):
        return  # the structure is checked by test_systemd_unit_is_hardened
    unit = tmp_path / "kpnet.service"
    # verify checks that the program exists; the venv's kpnet stands in for /opt/kpnet's.
    unit.write_text(text.replace("/opt/kpnet/bin/kpnet", str(BIN / "kpnet")))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# -- TLS proxy ------------------------------------------------------------------------------


def test_caddy_proxies_to_the_node_and_hides_metrics():
    text = (DEPLOY / "caddy" / "Caddyfile").read_text("utf-8")
    code = "\n".join(line.split("#")[0] for line in text.splitlines())
    upstream = f"{default_of('host')}:{default_of('port')}"
    assert re.search(rf"^\s*reverse_proxy {re.escape(upstream)}\b", code, re.M)
    matcher = re.search(r"^\s*@(\w+) path (.*)$", code, re.M)
    assert matcher and "/metrics" in matcher.group(2).split()
    assert re.search(rf"^\s*respond @{matcher.group(1)} 404\s*$", code, re.M)
    max_size = re.search(r"max_size (\d+)MiB", code)
    assert max_size and int(max_size.group(1)) * 1024 * 1024 > 50 * 1024 * 1024  # CSV imports
    if shutil.which("caddy"):
        result = subprocess.run(
            [
                "caddy",
                "adapt",
                "--config",
                str(DEPLOY / "caddy" / "Caddyfile"),
                "--adapter",
                "caddyfile",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
