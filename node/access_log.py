"""The HTTP access log of ``kpnet serve``: uvicorn's, without query strings.

A query string carries what users look for (``/api/v1/subjects?q=Mbala``): a search
term is subject data, and the access log is read by more people, and kept longer, than
the audit log. The path stays (it names the operation and the object); ``?…`` is
dropped before the line is formatted.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

PATH_ARG = 2  # uvicorn logs (client, method, path with query, HTTP version, status)


class QueryStringDropped(logging.Filter):
    """Cut the query string from uvicorn's access log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) > PATH_ARG:
            path = args[PATH_ARG]
            if isinstance(path, str):
                record.args = (*args[:PATH_ARG], path.split("?", 1)[0], *args[PATH_ARG + 1 :])
        return True


def logging_config(base: dict[str, Any]) -> dict[str, Any]:
    """uvicorn's logging configuration ``base`` with the access handler filtered."""
    config = copy.deepcopy(base)
    config.setdefault("filters", {})["no_query_string"] = {"()": QueryStringDropped}
    config["handlers"]["access"].setdefault("filters", []).append("no_query_string")
    return config
