"""Adding the console's routes and error pages to the node's app."""

from __future__ import annotations

from fastapi import FastAPI

from .pages import install_error_pages
from .routes import alerts, audit, kyc, peers, records, session, transfer, users


def install_console(app: FastAPI) -> None:
    for module in (session, alerts, kyc, records, transfer, peers, audit, users):
        app.include_router(module.router)
    install_error_pages(app)
