"""What the two web surfaces share: the API (``node.api``) and the console
(``node.console``) import this package and never each other.

- ``request``: the node and one database session per request, and ``RequestWork``, the
  unit of work of a request, which commits and then has the outbox sender deliver;
- ``bodies``: reading a request body under a size limit before anything parses it;
- ``streams``: the live alert stream (Server-Sent Events), fed by ``alert_fanout``: one
  reader of new alerts for every stream of the process;
- ``kyc_checks``: running a KYC check and waiting for the peers' answers;
- ``params``: bounded ids, offsets and versions in paths and queries;
- ``url_text``: refusing U+0000 and non-characters in a URL before any route runs;
- ``disconnects``: a client gone mid-request is one log line, not a traceback.
"""
