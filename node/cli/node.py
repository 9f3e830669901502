"""The node itself: ``kpnet init``, ``serve``, ``card``, ``fingerprint`` and
``db upgrade``."""

from __future__ import annotations

import gc
import json
import socket
from typing import Annotated

import typer

from .common import DataDir, fail, opened, settings_for

db_app = typer.Typer(no_args_is_help=True, help="Database.")


def init(
    data_dir: DataDir,
    node_id: Annotated[
        str, typer.Option(help="Node id: country code, optionally -tag (CM, CF-usaf).")
    ],
    name: Annotated[str, typer.Option(help="Display name shown to peers.")],
    url: Annotated[str, typer.Option(help="URL at which peers reach this node.")],
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL (default: SQLite in the data dir).")
    ] = None,
) -> None:
    """Create a node: data directory, keys, signed card, database. Prints the fingerprint."""
    from ..bootstrap import NodeExists, init_node
    from ..runtime import utc_now

    try:
        settings = init_node(
            data_dir, node_id=node_id, name=name, url=url, now=utc_now(), database_url=database_url
        )
    except NodeExists as exc:
        fail(str(exc))
    with opened(settings.data_dir, migrate=False) as node:
        typer.echo(f"Node {node.settings.node_id} created in {data_dir}")
        typer.echo(f"Fingerprint (read it aloud to your peers): {node.identity.fingerprint}")


def serve(
    data_dir: DataDir,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the node's HTTP server.

    What would stop it from starting is checked first, in the order an operator fixes
    it: the port, then the database (reached and migrated) and the keys and card. A
    failure is one line on stderr, which is the node's log (the journal under systemd,
    the container's log under compose or Kubernetes), and exit status 1."""
    import uvicorn
    import uvicorn.config

    from ..access_log import logging_config
    from ..app import create_app
    from ..runtime import open_node

    settings = settings_for(data_dir)
    host, port = host or settings.host, port or settings.port
    listening = _listen(host, port)
    try:
        node = open_node(settings)  # database reached and migrated, keys and card usable
        app = create_app(settings, opened=node)
        # What start-up built (modules, the app, its schemas) lives as long as the
        # process: out of the collector's generations, full collections skip it.
        gc.freeze()
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="info",
            log_config=logging_config(uvicorn.config.LOGGING_CONFIG),
            proxy_headers=True,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
        uvicorn.Server(config).run(sockets=[listening])
    finally:
        listening.close()


# How long an idle connection stays open for the next request. Uvicorn's 5 s is shorter
# than a batch's round trip on a slow, lossy link (two 800 ms crossings and a
# retransmission), so a sender's next batch would meet a connection just being closed.
# Senders drop idle connections after 5 s themselves, so they close first.
KEEP_ALIVE_SECONDS = 75


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (uvicorn listens on it), or a one-line error."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listening = socket.socket(family, kind, proto)
    except OSError as exc:
        fail(f"the node cannot listen on {host}:{port}: {exc.strerror or exc}")
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
    except OSError as exc:
        listening.close()
        reason = (exc.strerror or str(exc)).lower()
        fail(f"the node cannot listen on {host}:{port}: {reason}")
    return listening


def card(data_dir: DataDir) -> None:
    """Print this node's signed card (give it to peers with the fingerprint)."""
    with opened(data_dir) as node:
        typer.echo(json.dumps(node.card.to_json(), indent=2, ensure_ascii=False))


def fingerprint(data_dir: DataDir) -> None:
    """Print this node's fingerprint, to read aloud when peering in person."""
    with opened(data_dir) as node:
        typer.echo(node.identity.fingerprint)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir) -> None:
    """Apply pending database migrations (needs the config, not the keys)."""
    from ..db import make_engine, upgrade
    from ..db.migrate import current_revision

    engine = make_engine(settings_for(data_dir).sqlalchemy_url)
    try:
        upgrade(engine)
        typer.echo(f"database at revision {current_revision(engine)}")
    finally:
        engine.dispose()
