"""What ``kpnet serve`` writes to its log: no search terms from query strings, and one
line (not a traceback) when a client goes away in the middle of a request.

A real server process on loopback; clients are raw sockets, so a request can be cut
where a dropped mobile link would cut it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.federation.conftest import RunningNode, build_network, wait_for

SECRET_TERM = "Zanzibar-Mbala-7731"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    (node,) = build_network(tmp_path_factory.mktemp("served"), ("CM",))
    node.start()
    try:
        yield node
    finally:
        node.stop()


def _cut_request(node: RunningNode, head: bytes, body_part: bytes) -> None:
    """Send a request's head and part of its body, then drop the connection."""
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as conn:
        conn.sendall(head + body_part)
    # closed here, with most of the declared body never sent


def test_search_terms_do_not_reach_the_access_log(served: RunningNode) -> None:
    with served.api("analyst") as api:
        assert api.get("/api/v1/subjects", params={"q": SECRET_TERM}).status_code == 200
        assert api.get("/api/v1/audit", params={"who": SECRET_TERM}).status_code in (200, 403)
    wait_for(lambda: '"GET /api/v1/subjects HTTP/1.1" 200' in served.log_text())
    log = served.log_text()
    assert SECRET_TERM not in log
    assert "?q=" not in log


def test_a_client_that_drops_mid_body_costs_one_log_line(served: RunningNode) -> None:
    token = served.tokens["analyst"]
    head = (
        "POST /api/v1/imports/licensees?dry_run=true HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: text/csv\r\n"
        "Content-Length: 100000\r\n\r\n"
    ).encode()
    before = served.log_text()
    _cut_request(served, head, b"licence_number,licence_type,legal_name\n")
    # The node notices the disconnect and says so in one line.
    wait_for(lambda: "client disconnected" in served.log_text()[len(before) :])
    with httpx.Client(base_url=served.url) as client:
        assert client.get("/livez").status_code == 200  # and serves on
    added = served.log_text()[len(before) :]
    assert "Traceback" not in added
    assert len([line for line in added.splitlines() if "disconnect" in line]) == 1


def test_a_peer_that_drops_mid_batch_costs_one_log_line(served: RunningNode) -> None:
    head = (
        b"POST /federation/v1/messages HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: 200000\r\n\r\n"
    )
    before = served.log_text()
    _cut_request(served, head, b'[{"version": 1, ')
    wait_for(lambda: "client disconnected" in served.log_text()[len(before) :])
    added = served.log_text()[len(before) :]
    assert "Traceback" not in added
