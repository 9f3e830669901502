"""Map service and protocol errors to HTTP answers (routes stay free of try/except)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from protocol import CardError

from ..services.endpoint_policy import EndpointRefused
from ..services.errors import Conflict, InvalidInput, NotFound


def install_error_handlers(app: FastAPI) -> None:
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
