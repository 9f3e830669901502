"""Validated shapes shared by the surfaces and the services: what the API accepts and
returns, what the console's forms are checked against, what CSV rows become.

``common`` holds the building blocks (bounded strings, country codes, partial dates,
strict models, pages); one module per area holds its shapes (``records``, ``alerts``,
``kyc``, ``agreements``, ``peers``, ``tokens``, ``audit``, ``node_info``). The words
they use (TLP levels, categories …) come from ``protocol``, defined once there.
"""
