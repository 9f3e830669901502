"""Map service and protocol errors to HTTP answers (routes stay free of try/except), and
the error answers every operation declares in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from protocol import CardError, scrub_text

from ..schemas.errors import ErrorOut, InvalidOut
from ..schemas.federation import FederationAnswer
from ..services.endpoint_policy import EndpointRefused
from ..services.errors import Conflict, InvalidInput, NotFound


def _refusal(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


# Declared on every /api/v1 operation (docs/api.md §1).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _refusal("The request cannot be read"),
    401: _refusal("No valid bearer token"),
    403: _refusal("The token's role may not do this"),
    404: _refusal("No such object"),
    409: _refusal("Conflict, for example a stale version"),
    413: _refusal("The body is larger than allowed"),
    422: {"model": InvalidOut, "description": "Invalid input: what is wrong, and where"},
    429: _refusal("Too many requests; wait as Retry-After says"),
}

# POST /federation/v1/messages: every answer is a FederationAnswer.
FEDERATION_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": FederationAnswer, "description": description}
    for code, description in (
        (200, "One result per envelope (a batch, or the one envelope accepted)"),
        (400, "The envelope is malformed, or off its schema"),
        (403, "Unknown sender or key, bad signature, not for us, not permitted"),
        (413, "The body or an envelope is too large, or the batch too long"),
        (415, "The body's Content-Encoding is not gzip"),
        (429, "The sender is over its rate; wait as Retry-After says"),
        (503, "This node cannot store messages now; try again after Retry-After"),
    )
}


def _quoted(value: Any) -> Any:
    """A location part or message as it may be echoed: strings scrubbed of characters that
    cannot be encoded (a lone surrogate in a member name would break the answer)."""
    return scrub_text(value) if isinstance(value, str) else value


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # The documented shape only: never the input back (it may be a secret, or text
        # that cannot be encoded).
        errors = [
            {
                "loc": [_quoted(part) for part in error.get("loc", ())],
                "msg": _quoted(str(error.get("msg", ""))),
                "type": str(error.get("type", "value_error")),
            }
            for error in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(EndpointRefused)
    async def _endpoint(_: Request, exc: EndpointRefused) -> JSONResponse:
        return JSONResponse(
            {
                "detail": [
                    {
                        "loc": ["endpoint"],
                        "msg": exc.message,
                        "type": exc.code,
                        "ctx": exc.params,
                    }
                ]
            },
            status_code=422,
        )

    @app.exception_handler(InvalidInput)
    async def _invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        return JSONResponse(
            {"detail": [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}]},
            status_code=422,
        )

    @app.exception_handler(CardError)
    async def _card(_: Request, exc: CardError) -> JSONResponse:
        return JSONResponse(
            {"detail": [{"loc": ["body", "card"], "msg": str(exc), "type": exc.code}]},
            status_code=422,
        )
