"""Console routes, one module per area.

Each route declares its permission by the viewer or unit of work it takes
(``node.console.auth``).
"""
