"""``kpnet peer``: admitting other countries' nodes after the fingerprint check, their
state, the sharing agreement with each, and the endpoint changes their cards ask for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from protocol import ALERT_CATEGORIES

from ..schemas.agreements import SharingAgreement
from .common import DataDir, fail, unit_of_work

peer_app = typer.Typer(no_args_is_help=True, help="Peers (other countries' nodes).")
endpoint_app = typer.Typer(
    no_args_is_help=True,
    help="Endpoint changes a peer's card asks for: not used until approved here.",
)
peer_app.add_typer(endpoint_app, name="endpoint")


@peer_app.command("add")
def peer_add(
    data_dir: DataDir,
    card_file: Annotated[Path, typer.Argument(help="The peer's card (JSON), from `kpnet card`.")],
    fingerprint: Annotated[
        str, typer.Option(help="The fingerprint the peer's focal point read aloud.")
    ],
    name: Annotated[str | None, typer.Option(help="Name to show for this peer.")] = None,
) -> None:
    """Admit a peer after comparing its fingerprint in person."""
    try:
        card_bytes = card_file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {card_file}: {exc.strerror}")
    with unit_of_work(data_dir) as work:
        peer = work.peers().add(card_bytes, fingerprint=fingerprint, name=name)
        work.session.commit()
        typer.echo(
            f"peer {peer.node_id} ({peer.name}) admitted at {peer.endpoint}; "
            f"sharing up to TLP:{peer.agreement['max_handling']}"
        )


@peer_app.command("list")
def peer_list(data_dir: DataDir) -> None:
    """List peers, one a line, tab-separated: id, state, name, endpoint, last contact,
    consecutive delivery failures, fingerprint, last delivery error, endpoint change
    waiting for approval."""
    with unit_of_work(data_dir) as work:
        for peer in work.peers().all():
            contact = f"{peer.last_contact_at:%Y-%m-%d %H:%M}" if peer.last_contact_at else "never"
            typer.echo(
                f"{peer.node_id}\t{peer.status}\t{peer.name}\t{peer.endpoint}\t"
                f"last contact {contact}\tfailures {peer.consecutive_failures}\t"
                f"fingerprint {peer.fingerprint}\t"
                f"last error {peer.last_error or '-'}\t"
                f"pending endpoint {peer.pending_endpoint or '-'}"
            )


def _peer_status(data_dir: Path, node_id: str, new_status: str) -> None:
    with unit_of_work(data_dir) as work:
        work.peers().set_status(node_id, new_status)
        work.session.commit()
        typer.echo(f"peer {node_id} is now {new_status}")


@peer_app.command("suspend")
def peer_suspend(data_dir: DataDir, node_id: str) -> None:
    """Stop exchanging with a peer; its messages are refused."""
    _peer_status(data_dir, node_id, "suspended")


@peer_app.command("resume")
def peer_resume(data_dir: DataDir, node_id: str) -> None:
    """Resume exchanging with a suspended peer."""
    _peer_status(data_dir, node_id, "active")


@peer_app.command("remove")
def peer_remove(data_dir: DataDir, node_id: str) -> None:
    """Remove a peer (it becomes unknown; its history stays in the audit log)."""
    _peer_status(data_dir, node_id, "removed")


@peer_app.command("agreement")
def peer_agreement(
    data_dir: DataDir,
    node_id: str,
    max_handling: Annotated[
        str | None,
        typer.Option(help="Highest TLP level sent: CLEAR, GREEN, AMBER, AMBER+STRICT, RED."),
    ] = None,
    categories: Annotated[
        str | None, typer.Option(help="Alert categories, comma-separated, or 'all'.")
    ] = None,
    kyc: Annotated[
        str | None,
        typer.Option(help="Record kinds KYC queries are answered from: licensee,subject."),
    ] = None,
    kyc_queries_per_day: Annotated[
        str | None,
        typer.Option(help="KYC queries answered per UTC day, or 'default' (the node's)."),
    ] = None,
    disclosure_requests_per_day: Annotated[
        str | None,
        typer.Option(help="Disclosure requests accepted per UTC day, or 'default'."),
    ] = None,
) -> None:
    """Show or change the sharing agreement with a peer."""
    with unit_of_work(data_dir) as work:
        registry = work.peers()
        peer = registry.get(node_id)
        values = dict(peer.agreement)
        if max_handling is not None:
            values["max_handling"] = max_handling.upper()
        if categories is not None:
            values["alert_categories"] = (
                list(ALERT_CATEGORIES)
                if categories == "all"
                else [c.strip() for c in categories.split(",") if c.strip()]
            )
        if kyc is not None:
            values["kyc_record_kinds"] = [k.strip() for k in kyc.split(",") if k.strip()]
        for name, quota in (
            ("kyc_queries_per_day", kyc_queries_per_day),
            ("disclosure_requests_per_day", disclosure_requests_per_day),
        ):
            if quota is not None:
                values[name] = None if quota.strip().lower() == "default" else quota.strip()
        if values != peer.agreement:
            registry.set_agreement(node_id, SharingAgreement.model_validate(values))
            work.session.commit()
        typer.echo(json.dumps(registry.get(node_id).agreement, indent=2))


@endpoint_app.command("show")
def endpoint_show(data_dir: DataDir, node_id: str) -> None:
    """Show the endpoint in use and the one waiting for approval, if any."""
    with unit_of_work(data_dir) as work:
        peer = work.peers().get(node_id)
        typer.echo(f"current\t{peer.endpoint}")
        if peer.pending_endpoint is not None:
            typer.echo(f"pending\t{peer.pending_endpoint}\tsince {peer.pending_endpoint_at}")


Expected = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        help="The pending endpoint as you reviewed it (`peer endpoint show`); refused if "
        "the peer has asked for another since.",
    ),
]


@endpoint_app.command("approve")
def endpoint_approve(data_dir: DataDir, node_id: str, endpoint: Expected = None) -> None:
    """Deliver to the endpoint the peer's newer card asks for (checked again against
    the endpoint policy). Confirm the change with the peer's focal point first."""
    with unit_of_work(data_dir) as work:
        peer = work.peers().approve_endpoint(node_id, endpoint)
        work.session.commit()
        typer.echo(f"peer {node_id} is now delivered to at {peer.endpoint}")


@endpoint_app.command("reject")
def endpoint_reject(data_dir: DataDir, node_id: str, endpoint: Expected = None) -> None:
    """Keep delivering to the current endpoint; forget the one the card asks for."""
    with unit_of_work(data_dir) as work:
        peer = work.peers().reject_endpoint(node_id, endpoint)
        work.session.commit()
        typer.echo(f"peer {node_id} stays at {peer.endpoint}; the endpoint change is rejected")
