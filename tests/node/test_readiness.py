"""Waiting for a node process: ready as soon as it is, and when it cannot start, the
reason from its own log (the demo and the tests report start-up failures this way)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.bootstrap import init_node
from node.readiness import NodeNotReady, ServeProcess, last_lines, start_serve
from tests.conftest import free_port


def serve(data_dir: Path, port: int) -> ServeProcess:
    return start_serve(data_dir, port, data_dir / "serve.log")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    node = tmp_path / "node"
    init_node(node, node_id="CM", name="x", url="http://x", now=datetime.now(UTC))
    return node


def test_a_node_that_cannot_start_is_reported_with_its_last_log_lines(data_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        started = serve(data_dir, taken.getsockname()[1])
        with pytest.raises(NodeNotReady) as failed:
            started.wait_ready()
    message = str(failed.value)
    assert "exited with status 1" in message
    assert "address already in use" in message  # the node's own words, from its log


def test_a_node_that_starts_is_ready_and_answers(data_dir):
    started = serve(data_dir, free_port())
    try:
        started.wait_ready()
        assert started.process.poll() is None
    finally:
        started.stop()


def test_last_lines_are_the_end_of_the_log(tmp_path):
    log = tmp_path / "serve.log"
    log.write_text("".join(f"line {n}\n" for n in range(100)))
    assert last_lines(log, 3) == "line 97\nline 98\nline 99"
    assert last_lines(tmp_path / "missing.log") == f"(no log at {tmp_path / 'missing.log'})"
