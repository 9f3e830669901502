"""Connections on slow links: a sender's next batch may start seconds after the last
answer left the node (two slow crossings and a retransmission), so an idle connection
must still be open then."""

from __future__ import annotations

import http.client
import time

from tests.federation.conftest import build_network


def test_an_idle_connection_stays_open_longer_than_a_slow_round_trip(tmp_path):
    (cf,) = build_network(tmp_path, ("CF",))
    cf.start()
    connection = http.client.HTTPConnection("127.0.0.1", cf.port, timeout=30)
    try:
        connection.request("GET", "/livez")
        first = connection.getresponse()
        first.read()
        assert first.status == 200
        socket_used = connection.sock
        time.sleep(7)  # what is tested: the connection outlives a slow round trip
        connection.request("GET", "/livez")  # raises RemoteDisconnected if it was closed
        second = connection.getresponse()
        second.read()
        assert second.status == 200
        assert connection.sock is socket_used
    finally:
        connection.close()
        cf.stop()
