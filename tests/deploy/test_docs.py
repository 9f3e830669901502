"""The operator, security, API, key-ceremony and architecture guides against the code:
every setting is documented with its real default, every `kpnet` command and option they
cite exists, every API route they cite exists (or is one of the KYC routes being built),
every metric they name is exported, and every link between documents resolves."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import typer.main

from node.app import create_app
from node.cli import app as cli_app
from node.config import Settings
from node.metrics import NodeMetrics
from tests.conftest import create_node
from tests.deploy.conftest import REPO, SETTINGS, setting_of

GUIDES = ["operations.md", "key-ceremony.md", "security.md", "api.md", "architecture.md"]
DOCS = REPO / "docs"


def guide(name: str) -> str:
    return (DOCS / name).read_text("utf-8")


def test_readme_links_every_guide_and_every_guide_link_resolves():
    readme = (REPO / "README.md").read_text("utf-8")
    for name in GUIDES:
        assert f"](docs/{name})" in readme, name
    for path in [REPO / "README.md", *(DOCS / name for name in GUIDES)]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text("utf-8")):
            if target.startswith(("http://", "https://")):
                continue
            assert (path.parent / target).exists(), f"{path.name}: broken link {target}"


def test_operations_guide_lists_every_setting_with_its_default():
    rows = {}
    for line in guide("operations.md").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].startswith("`KPNET_"):
            rows[cells[0].strip("`")] = cells
    assert {setting_of(name) for name in rows} == SETTINGS
    for name, cells in rows.items():
        field = Settings.model_fields[setting_of(name)]
        default = cells[1].strip("`")
        if field.is_required():
            assert default == "—", (name, default)
        elif isinstance(field.default, bool):
            assert default == str(field.default).lower(), (name, default)
        elif isinstance(field.default, (int, float)):
            assert default in (str(field.default), f"{field.default:g}"), (name, default)
        elif isinstance(field.default, str):
            assert default == field.default, (name, default)


INVOCATION = re.compile(r"(?:\S*/bin/)?kpnet[ \t]+([a-z].*)$")


def shell_blocks(text: str) -> list[str]:
    """The contents of the ```sh (or unlabelled) code blocks of a Markdown text."""
    blocks, current, language = [], None, ""
    for line in text.splitlines():
        fence = line.strip()
        if fence.startswith("```"):
            if current is None:
                current, language = [], fence[3:].strip()
            else:
                if language in ("", "sh", "bash"):
                    blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def kpnet_command_lines() -> list[tuple[str, str, list[str]]]:
    """(guide, line, words after `kpnet`) of every `kpnet` command in the guides' shell
    blocks (the last `kpnet` of a line: `docker exec kpnet kpnet fingerprint`)."""
    found = []
    for name in GUIDES:
        for block in shell_blocks(guide(name)):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                line = line.split(" #")[0].strip()
                if line.startswith("#"):
                    continue
                starts = [m.start() for m in re.finditer(r"(?<![\w-])(?:\S*/bin/)?kpnet ", line)]
                matches = [m for m in (INVOCATION.match(line, start) for start in starts) if m]
                if matches:
                    found.append((name, line, shlex.split(matches[-1].group(1))))
    return found


def test_every_kpnet_command_in_the_guides_exists_with_its_options():
    root = typer.main.get_command(cli_app)
    lines = kpnet_command_lines()
    assert len(lines) >= 15, lines  # the extractor finds the guides' commands
    checked = 0
    for name, line, words in lines:
        command: Any = root  # typer's own click: duck-typed
        path: list[str] = []
        while hasattr(command, "commands") and words and words[0] in command.commands:
            path.append(words.pop(0))
            command = command.commands[path[-1]]
        if not path:
            # `createdb --owner kpnet kpnet` is not a kpnet command; `kpnet bakup` would be.
            assert not re.match(r"^(\S*/bin/)?kpnet ", line), f"{name}: no such command: {line}"
            continue
        assert not hasattr(command, "commands"), f"{name}: incomplete command: {line}"
        options = {opt for param in command.params for opt in param.opts if opt.startswith("-")}
        for word in words:
            if word.startswith("--"):
                assert word.split("=")[0] in options, f"{name}: kpnet {' '.join(path)} {word}"
        checked += 1
    assert checked >= 12


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    settings = create_node(tmp_path_factory.mktemp("docs") / "node")
    paths = create_app(settings).openapi()["paths"]
    documents = {("GET", "/openapi.json"), ("GET", "/docs")}  # FastAPI's own
    return documents | {
        (method.upper(), path) for path, operations in paths.items() for method in operations
    }


def cited_routes(text: str) -> set[tuple[str, str]]:
    cited = set()
    for method, path in re.findall(r"\b(GET|POST|PUT|PATCH|DELETE) (/[\w/{}.-]+)", text):
        cited.add((method, path.rstrip(".")))
    return cited


def route_matches(cited: str, template: str) -> bool:
    """`/api/v1/peers/CM` and `/api/v1/peers/{node}` both match `/api/v1/peers/{node_id}`."""
    parts, pattern = cited.split("/"), template.split("/")
    return len(parts) == len(pattern) and all(
        a == b or b.startswith("{") for a, b in zip(parts, pattern, strict=True)
    )


def test_every_api_route_the_guides_cite_exists(routes):
    for name in GUIDES:
        for method, path in cited_routes(guide(name)):
            assert any(m == method and route_matches(path, p) for m, p in routes), (
                f"{name}: {method} {path} is not a route"
            )


def test_every_metric_the_guides_name_is_exported():
    metrics = NodeMetrics()
    metrics.watch_database(lambda: {})
    families = {family.name for family in metrics.registry.collect()}
    series = families | {f + "_total" for f in families}
    for name in GUIDES:
        for metric in set(re.findall(r"`(kpnet_[a-z_]+)`", guide(name))):
            assert metric in series, f"{name}: {metric} is not a metric of the node"
    documented = set(re.findall(r"`(kpnet_[a-z_]+)`", guide("operations.md")))
    exported = {f if f in documented else f + "_total" for f in families}
    assert exported <= documented, exported - documented


def test_guides_have_no_placeholders_and_name_real_files():
    for name in GUIDES:
        text = guide(name)
        assert not re.search(r"\b(TODO|TBD|FIXME|XXX)\b", text), name
        for path in re.findall(r"`((?:deploy|docs|node|protocol)/[\w./-]+)`", text):
            assert (REPO / path.rstrip("/.")).exists(), f"{name}: {path} does not exist"
