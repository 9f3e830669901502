"""9 KB alerts over 50 kbit/s: see test_slow_links.py (a module of its own, so that
the two slow links run side by side)."""

from __future__ import annotations

from tests.federation.test_slow_links import deliver_across


def test_large_alerts_cross_a_50_kbit_link_exactly_once(tmp_path):
    deliver_across(tmp_path, 50_000, 9000, 0.3)
