"""``kpnet kyc``: the KYC match index."""

from __future__ import annotations

import typer

from .common import DataDir, opened
from .progress import progress_bar

kyc_app = typer.Typer(no_args_is_help=True, help="KYC matching.")


@kyc_app.command("reindex")
def kyc_reindex(data_dir: DataDir) -> None:
    """Rebuild the KYC match index from every live licensee and subject."""
    from ..matching import MatchIndex

    with opened(data_dir) as node, progress_bar() as progress, node.sessions() as session:
        records, keys = MatchIndex.rebuild(session, progress=progress)
        session.commit()
    typer.echo(f"match index rebuilt: {records} persons and organisations, {keys} keys")
