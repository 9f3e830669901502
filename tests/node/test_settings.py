"""Where settings come from: explicit values, then KPNET_* variables, then the data
directory's config.toml."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from node.app import create_app
from node.config import load_settings


def test_environment_overrides_config_toml(shared_api, monkeypatch):
    api = shared_api
    settings = api.settings
    assert load_settings(settings.data_dir).node_name == "Test node CM"
    monkeypatch.setenv("KPNET_NODE_NAME", "Cellule nationale KP - Yaoundé")
    monkeypatch.setenv("KPNET_PORT", "9100")

    overridden = load_settings(settings.data_dir)

    assert overridden.node_name == "Cellule nationale KP - Yaoundé"
    assert overridden.port == 9100
    assert overridden.node_id == "CM"  # still from config.toml
    assert overridden.public_url == settings.public_url
    with TestClient(create_app(overridden)) as client:
        shown = client.get("/api/v1/node", headers=api.as_role("officer")).json()
    assert shown["name"] == "Cellule nationale KP - Yaoundé"


def test_explicit_values_override_the_environment(shared_api, monkeypatch):
    settings = shared_api.settings
    monkeypatch.setenv("KPNET_NODE_NAME", "from the environment")
    assert load_settings(settings.data_dir, node_name="explicit").node_name == "explicit"


def test_data_dir_from_the_environment(shared_api, monkeypatch):
    settings = shared_api.settings
    monkeypatch.setenv("KPNET_DATA_DIR", str(settings.data_dir))
    found = load_settings()
    assert found.data_dir == settings.data_dir
    assert (found.node_id, found.node_name) == ("CM", "Test node CM")
    assert found.sqlalchemy_url == settings.sqlalchemy_url


def test_database_url_from_the_environment(shared_api, monkeypatch, tmp_path):
    settings = shared_api.settings
    other = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("KPNET_DATABASE_URL", other)
    assert load_settings(settings.data_dir).sqlalchemy_url == other


def test_invalid_node_id_in_the_environment_is_refused(shared_api, monkeypatch):
    settings = shared_api.settings
    monkeypatch.setenv("KPNET_NODE_ID", "cameroun")
    with pytest.raises(ValidationError, match="node id"):
        load_settings(settings.data_dir)
