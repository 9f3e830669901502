"""A receiver whose clock is 10 minutes off (run under libfaketime): the sender's
record of the peer names the skew and measures it, instead of reporting
``bad_receipt`` or ``key_expired``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.federation.conftest import (
    alert_json,
    build_network,
    metric_value,
    peer_row,
    send_alert,
    wait_for,
)

FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


@pytest.mark.parametrize(("offset", "word"), [(600, "ahead"), (-600, "behind")])
def test_a_peer_clock_ten_minutes_off_is_named_as_such(tmp_path, offset, word):
    assert FAKETIME.exists(), "libfaketime (Debian package faketime) is needed"
    cm, cf = build_network(tmp_path, ("CM", "CF"))
    try:
        cf.start(
            extra_env={
                "LD_PRELOAD": str(FAKETIME),
                "FAKETIME": f"{offset:+d}s",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                "FAKETIME_DONT_RESET": "1",
            }
        )
        cm.start()
        send_alert(cm, alert_json("Horloge décalée"))
        row = wait_for(lambda: (r := peer_row(cm, "CF"))["last_error"] and r)
        # Read off the peer's Date header (whole seconds) at the middle of a request.
        named = re.fullmatch(rf"clock {word} by (\d+) s", row["last_error"])
        assert named and abs(int(named.group(1)) - abs(offset)) <= 3, row
        assert abs(row["clock_offset_seconds"] - offset) <= 3
        assert abs(metric_value(cm, "kpnet_peer_clock_offset_seconds", peer="CF") - offset) <= 3
    finally:
        cm.stop()
        cf.stop()
