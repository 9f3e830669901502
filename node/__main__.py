"""``python -m node``: the ``kpnet`` command."""

from .cli import main

main()
