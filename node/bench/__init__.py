"""Benchmarks run by ``kpnet bench``: each builds what it measures in a temporary
directory (never the operator's node), runs the same code path as the real command and
prints one JSON line of results last.

``import_bench``: bulk CSV import of synthetic licensees (``kpnet bench import``).
"""
