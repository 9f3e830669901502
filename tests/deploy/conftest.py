"""What the deployment kit's tests share: where the kit is, which images it may name,
the node's real settings, the Dockerfile read instruction by instruction, and the
compose and Kubernetes files parsed.

No container engine or cluster is needed: the files are parsed and checked, and the
kit's scripts are run for real on this machine (tests/deploy/test_deploy_scripts.py).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from node.config import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUBE = DEPLOY / "kubernetes"
BIN = Path(sys.executable).parent
SETTINGS = set(Settings.model_fields)

# Images pulled from a registry: Docker Official Images and Prometheus's own image.
OFFICIAL_IMAGES = {"python", "postgres", "prom/prometheus"}
# The image built from deploy/Dockerfile, under the name the kit gives it.
BUILT_IMAGE = "kpnet"


def image_name(reference: str) -> tuple[str, str | None]:
    """(repository, tag) of an image reference such as ``prom/prometheus:v2.53.0``."""
    reference = reference.split("@", 1)[0]
    repository, _, tag = reference.rpartition(":")
    if not repository or "/" in tag:
        return reference, None
    return repository, tag


def assert_pulled_image_is_official(reference: str) -> None:
    repository, tag = image_name(reference)
    assert repository in OFFICIAL_IMAGES, f"{reference} is not a public official image"
    assert tag and tag != "latest", f"{reference}: pin a tag"


def setting_of(env_name: str) -> str:
    """The setting an environment variable sets; fails for a name the node ignores."""
    assert env_name.startswith("KPNET_"), env_name
    name = env_name.removeprefix("KPNET_").lower()
    assert name in SETTINGS, f"{env_name} is not a setting of node/config.py"
    return name


def default_of(name: str) -> Any:
    return Settings.model_fields[name].default


def script_env(**extra: str) -> dict[str, str]:
    """The environment without the developer's KPNET_* settings, with this virtualenv's
    ``kpnet`` and ``python`` first on PATH, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPNET_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


# -- the Dockerfile -------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    result = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            result.append((instruction.upper(), arguments.strip()))
    return result


def final_stage() -> list[tuple[str, str]]:
    """The instructions of the image that ships (the last FROM and after)."""
    instructions = dockerfile_instructions()
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def exec_form(arguments: str) -> list[str]:
    return list(json.loads(arguments))


def dockerfile_healthcheck() -> str:
    """The shell command of the image's HEALTHCHECK."""
    checks = [args for name, args in final_stage() if name == "HEALTHCHECK"]
    assert len(checks) == 1, checks
    command = checks[0].split(" CMD ", 1)
    assert len(command) == 2, checks[0]
    return command[1]


# -- compose and Kubernetes, parsed ---------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def node_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The compose services that are kpnet nodes."""
    return {
        name: service
        for name, service in compose["services"].items()
        if "KPNET_NODE_ID" in service.get("environment", {})
    }


@pytest.fixture(scope="module")
def kube() -> dict[str, Any]:
    """The kustomization and every object of the resources it lists."""
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text("utf-8"))
    objects = []
    for resource in kustomization["resources"]:
        path = KUBE / resource
        assert path.is_file(), f"kustomization names {resource}, which does not exist"
        objects += [o for o in yaml.safe_load_all(path.read_text("utf-8")) if o]
    for generator in kustomization.get("configMapGenerator", []):
        for file in generator["files"]:
            assert (KUBE / file).is_file(), file
    return {"kustomization": kustomization, "objects": objects}


def kube_object(kube: dict[str, Any], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        o
        for o in kube["objects"]
        if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]
