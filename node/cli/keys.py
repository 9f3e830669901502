"""``kpnet keys``: this node's keys."""

from __future__ import annotations

import typer

from .common import CLI_ACTOR, DataDir, opened

keys_app = typer.Typer(no_args_is_help=True, help="This node's keys.")


@keys_app.command("rotate")
def keys_rotate(data_dir: DataDir) -> None:
    """New keys and card, announced to every peer (signed with the current key).
    The node's running processes take the new keys at once, without a restart."""
    from ..services.rotation import rotate_keys

    with opened(data_dir) as node:
        card = rotate_keys(node, CLI_ACTOR, node.now())
        fingerprint = card.fingerprint
    typer.echo(f"new card serial {card.serial}; new fingerprint {fingerprint}")
    typer.echo(
        "peers are told through card.update; the running node uses the new keys at once "
        "and signs with them once every peer has the new card"
    )
