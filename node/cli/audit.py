"""``kpnet audit``: the audit log."""

from __future__ import annotations

import typer

from .common import DataDir, fail, opened

audit_app = typer.Typer(no_args_is_help=True, help="Audit log.")


@audit_app.command("verify")
def audit_verify(data_dir: DataDir) -> None:
    """Check the audit log's hash chain; exit 1 naming the first broken entry."""
    from ..services.audit import verify_chain

    with opened(data_dir) as node, node.sessions() as session:
        report = verify_chain(session)
    if not report.ok:
        fail(
            f"audit log BROKEN at entry {report.first_broken_seq}: {report.problem} "
            f"({report.entries} entries verified before it)"
        )
    typer.echo(f"audit log intact: {report.entries} entries verified")
