"""Creating a new node: data directory, configuration, keys, card and database."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from .config import CONFIG_FILE, Settings, load_settings, write_config
from .db import make_engine, upgrade
from .keystore import create_identity, issue_card


class NodeExists(Exception):
    pass


def init_node(
    data_dir: Path,
    *,
    node_id: str,
    name: str,
    url: str,
    now: datetime,
    database_url: str | None = None,
    options: Mapping[str, str | int | bool] | None = None,
) -> Settings:
    """Create a node in ``data_dir``; refuse if one is already there. ``options`` are
    further settings written to its ``config.toml``."""
    if (data_dir / CONFIG_FILE).exists() or (data_dir / "keys").exists():
        raise NodeExists(f"a node already exists in {data_dir}; refusing to overwrite it")
    values: dict[str, str | int | bool] = {
        "node_id": node_id,
        "node_name": name,
        "public_url": url,
        **(options or {}),
    }
    if database_url:
        values["database_url"] = database_url
    # Validate before touching the disk.
    settings = Settings(data_dir=data_dir, **values)  # type: ignore[arg-type]
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    # The database first: if it is unreachable, no config or keys are left behind to
    # make the next attempt refuse with "a node already exists".
    engine = make_engine(settings.sqlalchemy_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    write_config(data_dir, values)
    identity = create_identity(settings.keys_dir, node_id)
    issue_card(settings.card_path, identity, name=name, url=url, now=int(now.timestamp()))
    return load_settings(data_dir)
