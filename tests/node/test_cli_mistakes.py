"""``kpnet`` mistakes a user can make: each ends with one line on stderr and exit
status 1 (2 for usage errors), never a traceback, and leaves nothing half made."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.bootstrap import init_node
from tests.conftest import free_port
from tests.node.conftest import init_args


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("cli-mistakes") / "node"
    init_node(data_dir, node_id="CM", name="x", url="http://x", now=datetime.now(UTC))
    return data_dir


def test_token_mistakes_are_one_line(node_dir, kpnet, user_mistake):
    data_dir = node_dir
    bad_role = user_mistake(
        kpnet("token", "create", "--data-dir", data_dir, "--role", "root", "--name", "x")
    )
    assert "unknown role 'root'" in bad_role
    assert "admin, analyst, officer, auditor" in bad_role
    unknown = user_mistake(kpnet("token", "revoke", "--data-dir", data_dir, "424242"))
    assert "424242" in unknown
    never = kpnet(
        "token",
        "create",
        "--data-dir",
        data_dir,
        "--role",
        "officer",
        "--name",
        "x",
        "--expires-days",
        "0",
    )
    assert never.returncode == 2
    assert "Traceback" not in never.stderr


@pytest.mark.parametrize(
    "command", [["fingerprint"], ["token", "list"], ["audit", "verify"], ["serve"]], ids=" ".join
)
def test_commands_on_a_missing_data_dir_fail_with_one_line(tmp_path, kpnet, user_mistake, command):
    missing = tmp_path / "nowhere"
    message = user_mistake(kpnet(*command, "--data-dir", missing))
    assert f"no node in {missing}" in message
    assert "kpnet init" in message
    assert not missing.exists()


def test_missing_data_dir_option_is_a_usage_error(kpnet):
    result = kpnet("fingerprint")
    assert result.returncode == 2
    assert "--data-dir" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("node_id", ["cameroon", "cm"])
def test_invalid_node_id_is_refused_and_creates_nothing(tmp_path, kpnet, user_mistake, node_id):
    data_dir = tmp_path / "node"
    message = user_mistake(kpnet(*init_args(data_dir, node_id)))
    assert "node id" in message
    assert "CM" in message  # says what a valid one looks like
    assert not data_dir.exists()


def test_unreachable_database_leaves_no_half_made_node(tmp_path, kpnet, user_mistake):
    data_dir = tmp_path / "node"
    failed = kpnet(*init_args(data_dir), "--database-url", "postgresql://kpnet@127.0.0.1:1/kpnet")
    message = user_mistake(failed)
    assert message.startswith("error: database:")
    assert not (data_dir / "config.toml").exists()
    assert not (data_dir / "keys").exists()

    retried = kpnet(*init_args(data_dir))
    assert retried.returncode == 0, retried.stderr


# -- a node that cannot start says why ----------------------------------------------------


def test_serve_on_a_port_in_use_says_so_in_one_line(node_dir, kpnet, user_mistake):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = user_mistake(kpnet("serve", "--data-dir", node_dir, "--port", port))
    assert line == f"error: the node cannot listen on 127.0.0.1:{port}: address already in use"


def test_serve_with_an_unreachable_database_says_so_in_one_line(node_dir, kpnet, user_mistake):
    port = free_port()  # nothing listens there
    unreachable = f"postgresql://kpnet@127.0.0.1:{port}/kpnet"
    serve = ("serve", "--data-dir", node_dir, "--port", free_port())
    line = user_mistake(kpnet(*serve, env={"KPNET_DATABASE_URL": unreachable}))
    assert line.startswith("error: database: connection failed")
    assert f"port {port} failed: Connection refused" in line


def test_serve_with_keys_readable_by_others_says_which_file_and_the_fix(
    tmp_path, kpnet, user_mistake
):
    data_dir = tmp_path / "node"
    init_node(data_dir, node_id="CM", name="x", url="http://x", now=datetime.now(UTC))
    key = data_dir / "keys" / "signing.key"
    key.chmod(0o644)
    line = user_mistake(kpnet("serve", "--data-dir", data_dir, "--port", free_port()))
    assert line == f"error: key file {key} is readable by others; run: chmod 600 {key}"


def test_serve_with_a_key_directory_open_to_others_says_so_and_the_fix(
    tmp_path, kpnet, user_mistake
):
    data_dir = tmp_path / "node"
    init_node(data_dir, node_id="CM", name="x", url="http://x", now=datetime.now(UTC))
    keys = data_dir / "keys"
    keys.chmod(0o755)  # the files stay 0600: the directory alone is the mistake
    line = user_mistake(kpnet("serve", "--data-dir", data_dir, "--port", free_port()))
    assert line == f"error: key directory {keys} is readable by others; run: chmod 700 {keys}"
