"""Batch sizes and deadlines sized from the link: a link that becomes slower than it was
measured must not keep timing out batches sized for the old speed."""

from __future__ import annotations

from node.federation.link_estimate import MIN_BATCH_BYTES, LinkEstimate


def test_a_link_measured_fast_that_turns_slow_gets_deadlines_it_can_meet():
    link = LinkEstimate(max_batch_bytes=512 * 1024)
    link.succeeded(40_000, 0.04)  # a loopback-fast link: 1 MB/s
    fast_deadline = link.deadline(10_000)
    # The link drops to GPRS: 10 kB do not get through in that deadline.
    link.timed_out(10_000, fast_deadline)
    assert link.batch_bytes() == MIN_BATCH_BYTES
    # Now believed no faster than it proved to be: the small batch that follows gets
    # at least the time the failed one had for its bytes, with room to spare.
    assert link.deadline(MIN_BATCH_BYTES) >= fast_deadline * MIN_BATCH_BYTES / 10_000 * 3


def test_a_timeout_halves_a_rate_the_failed_request_does_not_contradict():
    link = LinkEstimate(max_batch_bytes=512 * 1024)
    link.succeeded(50_000, 25.0)  # 2,000 B/s
    link.timed_out(1_000, 0.1)  # 10,000 B/s "ceiling": says nothing slower
    assert link.rate == 1_000


def test_success_grows_the_batch_at_most_twofold_toward_the_target():
    link = LinkEstimate(max_batch_bytes=512 * 1024)
    start = link.batch_bytes()
    link.succeeded(start, 0.01)
    assert link.batch_bytes() == 2 * start
    link.succeeded(2 * start, 0.01)
    assert link.batch_bytes() == 4 * start
