"""kpnet national node: the per-country server.

``app`` builds the FastAPI application, ``cli`` the ``kpnet`` command, ``config`` the
settings. Below them, ``api`` (HTTP) → ``services`` (rules) → ``db`` (storage); the
node uses the ``protocol`` package for keys, cards and messages.
"""

__version__ = "0.1.0"
