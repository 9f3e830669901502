"""Monitoring: the Prometheus configuration and alert rules (deploy/prometheus/) and the
Grafana dashboard (deploy/grafana/) query only metrics and labels that a node exports.

What a node exports is read from the /metrics of real nodes in this process that have
delivered, received, de-duplicated, refused and failed to deliver messages, so that
every metric family the node declares has samples with their labels.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from node.app import create_app
from node.config import load_settings
from node.db import make_engine
from node.db.models import OutboxMessage
from node.metrics import NodeMetrics
from node.runtime import open_node
from tests.conftest import create_node, free_port, issue_tokens
from tests.deploy.conftest import DEPLOY


class Router(httpx.AsyncBaseTransport):
    """Outgoing deliveries go to the in-process app listening on the URL's port; other
    ports are unreachable."""

    def __init__(self) -> None:
        self.apps: dict[int, Any] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        app = self.apps.get(request.url.port or 80)
        if app is None:
            raise httpx.ConnectError("unreachable", request=request)
        return await httpx.ASGITransport(app=app).handle_async_request(request)


FAST = {
    "delivery_poll_seconds": 0.1,
    "delivery_backoff_base_seconds": 0.1,
    "delivery_backoff_cap_seconds": 0.3,
}


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Series names and their label names, from the /metrics of two nodes that delivered,
    received, de-duplicated, refused and failed messages: CM and CF (running, in process)
    and CD (admitted by both, never running)."""
    root = tmp_path_factory.mktemp("metrics")
    ports = {"CM": free_port(), "CF": free_port(), "CD": free_port()}
    settings = {}
    for node_id, port in ports.items():
        create_node(root / node_id, node_id, port=port)
        settings[node_id] = load_settings(root / node_id, **FAST)
    tokens = {n: issue_tokens(s) for n, s in settings.items()}
    cards = {}
    for node_id, s in settings.items():
        node = open_node(s, migrate=False)
        cards[node_id] = (node.card.to_json(), node.identity.fingerprint)
        node.close()
    router = Router()
    apps = {n: create_app(settings[n], transport=router) for n in ("CM", "CF")}
    router.apps = {ports[n]: app for n, app in apps.items()}

    def auth(node_id: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[node_id][role]}"}

    with TestClient(apps["CM"]) as cm, TestClient(apps["CF"]) as cf:
        clients = {"CM": cm, "CF": cf}
        for node_id, client in clients.items():
            for other, (card, fingerprint) in cards.items():
                if other != node_id:
                    r = client.post(
                        "/api/v1/peers",
                        headers=auth(node_id, "admin"),
                        json={"card": card, "fingerprint": fingerprint},
                    )
                    assert r.status_code == 201, r.text
        # CF accepts only seizures from CM: CM's "other" alert is refused for good.
        r = cf.put(
            "/api/v1/peers/CM/agreement",
            headers=auth("CF", "admin"),
            json={"alert_categories": ["seizure"], "max_handling": "AMBER"},
        )
        assert r.status_code == 200, r.text
        for category in ("seizure", "other"):
            r = cm.post(
                "/api/v1/alerts",
                headers=auth("CM", "analyst"),
                json={
                    "category": category,
                    "severity": "info",
                    "title": "Saisie à Garoua-Boulaï",
                    "body": "Colis de 120 carats",
                    "recipients": ["CF", "CD"],
                },
            )
            assert r.status_code == 201, r.text
        wanted = (
            "kpnet_federation_messages_sent_total{",
            "kpnet_federation_messages_failed_total{",
            "kpnet_federation_delivery_failures_total{",
        )
        deadline = time.monotonic() + 30
        while not all(w in cm.get("/metrics").text for w in wanted):
            assert time.monotonic() < deadline, cm.get("/metrics").text
            time.sleep(0.1)
        engine = make_engine(settings["CM"].sqlalchemy_url)
        with engine.connect() as connection:
            delivered = connection.execute(
                select(OutboxMessage.envelope).where(
                    OutboxMessage.recipient == "CF", OutboxMessage.status == "delivered"
                )
            ).scalar_one()
        engine.dispose()
        redelivered = cf.post(
            "/federation/v1/messages",
            content=delivered,
            headers={"content-type": "application/json"},
        )
        assert redelivered.json()["status"] == "duplicate"
        garbage = cf.post(
            "/federation/v1/messages", content=b"{}", headers={"content-type": "application/json"}
        )
        assert garbage.json()["error"] == "malformed"
        texts = [cm.get("/metrics").text, cf.get("/metrics").text]

    series: dict[str, set[str]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                series.setdefault(sample.name, set()).update(sample.labels)
    return series


def declared_series() -> set[str]:
    """Series names of every metric the node declares, sampled or not."""
    metrics = NodeMetrics()
    metrics.watch_database(lambda: {})
    names = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    for family in metrics.registry.collect():
        names |= {family.name + suffix for suffix in suffixes[family.type]}
    return names


def test_exposition_has_a_sample_of_every_metric_the_node_declares(exposition):
    # So that the checks below know every series and its labels, not only those that
    # happen to have samples on an idle node.
    declared = declared_series()
    assert "kpnet_peer_up" in declared and "kpnet_federation_messages_sent_total" in declared
    assert declared <= set(exposition), declared - set(exposition)
    assert exposition["kpnet_peer_up"] == {"peer"}
    assert exposition["kpnet_federation_messages_rejected_total"] == {"peer", "type", "code"}


PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}
# Labels that Prometheus adds to every series it scrapes, or that deploy/prometheus adds.
TARGET_LABELS = {"job", "instance", "node"}


def promql_metrics_and_labels(expr: str) -> tuple[set[str], set[str]]:
    """Metric names and label names used by a PromQL expression (Grafana variables
    such as ``$node`` or ``$__rate_interval`` allowed)."""
    expr = re.sub(r"\$\{[^}]*\}|\$\w+", "x", expr)
    labels: set[str] = set()
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        labels |= set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    for clause in re.findall(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr
    ):
        labels |= {label.strip() for label in clause.split(",") if label.strip()}
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    metrics = {
        name
        for name in re.findall(r"(?<![\w.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()", expr)
        if name not in PROMQL_WORDS
    }
    return metrics, labels


def test_promql_helper_finds_metrics_and_labels():
    metrics, labels = promql_metrics_and_labels(
        'histogram_quantile(0.95, sum by (node, le) (rate(kpnet_a_bucket{node=~"$node"}'
        "[$__rate_interval]))) > 2 and on (peer) kpnet_b == 0 unless up offset 5m"
    )
    assert metrics == {"kpnet_a_bucket", "kpnet_b", "up"}
    assert labels == {"node", "le", "peer"}


def assert_queries_exist(exprs: list[str], exposition: dict[str, set[str]]) -> None:
    assert exprs
    for expr in exprs:
        metrics, labels = promql_metrics_and_labels(expr)
        assert metrics, f"no metric in {expr!r}"
        known_labels = set(TARGET_LABELS) | {"le"}
        for metric in metrics:
            assert metric in exposition, f"{metric} (in {expr!r}) is not in /metrics"
            known_labels |= exposition[metric]
        assert labels <= known_labels, f"unknown labels {labels - known_labels} in {expr!r}"


# -- Prometheus -----------------------------------------------------------------------------


def test_prometheus_config_loads_rule_files_that_exist():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text("utf-8"))
    assert config["rule_files"]
    for rule_file in config["rule_files"]:
        assert (DEPLOY / "prometheus" / rule_file).is_file(), rule_file
    (job,) = config["scrape_configs"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    for group in job["static_configs"]:
        assert set(group["labels"]) <= TARGET_LABELS


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text("utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_prometheus_rules_are_valid():
    promtool = shutil.which("promtool")
    if promtool:  # else the structure is checked below
        for command in ("check", "test"):
            file = "rules.yml" if command == "check" else "rules.test.yml"
            result = subprocess.run(
                [promtool, command, "rules", file],
                cwd=DEPLOY / "prometheus",
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, result.stdout + result.stderr
    document = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text("utf-8"))
    assert set(document) == {"groups"}
    names = set()
    for group in document["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"Kpnet[A-Z]\w+", rule["alert"]), rule["alert"]
            assert rule["alert"] not in names
            names.add(rule["alert"])
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            assert rule["expr"].count("(") == rule["expr"].count(")")
            if "for" in rule:
                assert re.fullmatch(r"\d+[smhd]", rule["for"]), rule["for"]
            assert rule["labels"]["severity"] in ("warning", "critical")
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_prometheus_rules_cover_peers_outbox_and_rejections_with_real_metrics(exposition):
    rules = alert_rules()
    assert_queries_exist([rule["expr"] for rule in rules], exposition)
    used = set().union(*(promql_metrics_and_labels(r["expr"])[0] for r in rules))
    assert {
        "kpnet_peer_up",
        "kpnet_outbox_pending_count",
        "kpnet_outbox_oldest_pending_age_seconds",
        "kpnet_federation_messages_rejected_total",
    } <= used
    unreachable = next(r for r in rules if r["alert"] == "KpnetPeerUnreachable")
    assert unreachable["expr"].replace(" ", "") == "kpnet_peer_up==0"
    assert re.fullmatch(r"\d+m", unreachable["for"])
    rejected = [r for r in rules if "kpnet_federation_messages_rejected_total" in r["expr"]]
    assert any(
        re.search(r"\b(rate|increase)\(kpnet_federation_messages_rejected_total", r["expr"])
        for r in rejected
    )


# -- Grafana --------------------------------------------------------------------------------


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels += panel.get("panels", [])
    return panels


def test_grafana_dashboard_queries_only_metrics_the_node_exports(exposition):
    dashboard = json.loads((DEPLOY / "grafana" / "kpnet-dashboard.json").read_text("utf-8"))
    panels = [p for p in dashboard_panels(dashboard) if p["type"] != "row"]
    assert len(panels) >= 8
    ids = [p["id"] for p in dashboard_panels(dashboard)]
    assert len(ids) == len(set(ids))
    exprs = []
    for panel in panels:
        assert panel["targets"], panel["title"]
        exprs += [target["expr"] for target in panel["targets"]]
    assert_queries_exist(exprs, exposition)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for variable in variables.values():
        if variable["type"] == "query":
            query = (
                variable["query"]["query"]
                if isinstance(variable["query"], dict)
                else variable["query"]
            )
            metric, label = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query).groups()
            assert metric in exposition
            assert label in exposition[metric] | TARGET_LABELS
    queried = set().union(*(promql_metrics_and_labels(e)[0] for e in exprs))
    # Every metric family the node exports is on the dashboard.
    families = {
        re.sub(r"_(bucket|count|sum|total)$", "", n)
        for n in exposition
        if not n.endswith("_created")
    }
    shown = {re.sub(r"_(bucket|count|sum|total)$", "", n) for n in queried}
    assert families <= shown, families - shown
