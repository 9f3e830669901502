"""``kpnet demo``: three nodes on this machine playing a regional scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import fail


def demo(
    once: Annotated[
        bool,
        typer.Option(
            "--once", help="Play the scenario, check every step, exit 0 only if all held."
        ),
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Empty directory for the three nodes (default: a temporary one, removed at exit)."
        ),
    ] = None,
    port: Annotated[
        int, typer.Option(help="First of three ports on 127.0.0.1 (free ones are used if taken).")
    ] = 8101,
) -> None:
    """Three national nodes (CM, CF, CD) on this machine playing a regional scenario."""
    from ..demo.network import DemoError
    from ..demo.run import run_demo

    try:
        code = run_demo(once=once, data_dir=data_dir, first_port=port)
    except DemoError as exc:
        fail(str(exc))
    raise typer.Exit(code)
