"""The HTTP API (``/api/v1``, ``/federation/v1``, operations): thin routes over the
services.

``routes/`` holds one module per route family; ``deps`` checks the caller's token and
permission and gives each route its unit of work; ``errors`` maps service errors to
answers; ``docs`` serves Swagger UI at ``/docs`` from the node's own files. What the API
shares with the console lives in ``node.web``.
"""
