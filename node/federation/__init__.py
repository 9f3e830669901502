"""Federation: what crosses between nodes, below the surfaces and above the services.

- ``inbound``: receiving envelopes (open, de-duplicate, handle, receipt), idempotent on
  (sender, message id); ``handlers``: one handler per message type;
- ``sender``: ``OutboxSender`` delivers the outbox that services fill
  (``node.services.outbox``), each peer on its own task; ``outbox_ledger``: its
  bookkeeping in the database (leases, backoff, signed receipts); ``link_estimate``:
  batch sizes and deadlines from each peer's measured link; ``clock_offset``: each
  peer's clock, read off its answers;
- ``ratelimit``: per-peer token buckets; ``feed``: in-process wake-ups for those waiting
  on what peers send (live alert streams, KYC checks).
"""
