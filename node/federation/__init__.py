"""Federation: what crosses between nodes, below the surfaces and above the services.

- ``inbound``: receiving envelopes (open, de-duplicate, handle, receipt), idempotent on
  (sender, message id); ``handlers``: one handler per message type;
- ``sender``: ``OutboxSender`` delivers the outbox that services fill
  (``node.services.outbox``), with leases, backoff and signed receipts;
- ``ratelimit``: per-peer token buckets; ``feed``: in-process wake-ups for those waiting
  on what peers send (live alert streams, KYC checks).
"""
