"""Console routes, one module per area; each route declares its roles with ``Require``."""
