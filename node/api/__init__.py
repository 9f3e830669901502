"""The HTTP layer: thin routes over the services, dependencies, error mapping.

``routes/`` holds one module per route family; ``deps`` provides the node, the
per-request session and the role checks; ``errors`` maps service errors to answers.
"""
