"""Schema fuzzing: every operation of ``/openapi.json``, with admin, analyst and officer
tokens, on SQLite and PostgreSQL (where text with U+0000 used to fail).

Schemathesis generates requests from the published schema (valid ones and invalid
ones), sends them to the app in-process (ASGI, no network) and
checks each answer: no server error, a status code the operation declares, the declared
content type, and a body that matches the declared schema. A fixed number of examples
per operation, derandomised, so a run is bounded and repeatable.

Left out: ``GET /api/v1/alerts/stream`` (Server-Sent Events: an answer that never ends
is not a response to validate; test_streams covers it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from node.app import create_app
from tests.conftest import create_node, issue_tokens

ROLES = ("admin", "analyst", "officer")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
STREAMS = ["/api/v1/alerts/stream"]
EXAMPLES = 4  # per operation and mode (valid, invalid), each sent as 3 roles


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def fuzzed_node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, dict[str, str]]]:
    """The schema of a fresh node's app (delivery off), and one token per role."""
    url = request.getfixturevalue("module_postgres_url") if request.param == "postgres" else None
    settings_ = create_node(tmp_path_factory.mktemp("fuzz") / "node", database_url=url)
    settings_ = settings_.model_copy(update={"sender_enabled": False})
    tokens = issue_tokens(settings_)
    app = create_app(settings_)
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path=STREAMS)
        yield schema, tokens
    finally:
        asgi.shutdown_lifespans()  # the node the fuzzed app opened is closed with its module


def test_every_operation_answers_as_its_schema_says(
    fuzzed_node: tuple[Any, dict[str, str]],
) -> None:
    schema, tokens = fuzzed_node
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40  # every operation of the API, federation and ops
    failures: list[str] = []

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                deadline=None,
                database=None,
                phases=[Phase.generate],  # bounded: no shrinking of what fails
                suppress_health_check=list(HealthCheck),
            )
            def answers_as_declared(case: Any) -> None:
                for role in ROLES:  # each generated request, as each role
                    headers = {"Authorization": f"Bearer {tokens[role]}"}
                    case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                answers_as_declared()
            except Unsatisfiable:
                # No invalid request exists for an operation without any input.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (AssertionError, BaseExceptionGroup) as exc:  # reported together below
                failures.append(f"{operation.label} ({mode.value}): {exc}"[:3000])
    assert not failures, "\n\n".join(failures)
