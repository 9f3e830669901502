"""The FaultyLink the delivery tests and ``kpnet bench link`` rely on: it limits
bandwidth, adds latency, and fails the way the tests say it does."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from node.bench.faulty_link import FaultyLink, LinkShape


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


def timed_post(link: FaultyLink, size: int, timeout: float = 30) -> float:
    started = time.monotonic()
    response = httpx.post(link.url, content=b"x" * size, timeout=timeout)
    assert response.status_code == 200 and len(response.content) == size
    return time.monotonic() - started


def test_bandwidth_and_latency_are_what_the_shape_says(echo_port):
    with FaultyLink(echo_port) as fast:
        loopback = timed_post(fast, 32_000)
    # 32 KB each way at 256 kbit/s is 2 s; 0.2 s one way, twice (connect and answer).
    with FaultyLink(echo_port, LinkShape(rate_bits=256_000, latency_seconds=0.2)) as slow:
        shaped = timed_post(slow, 32_000)
        assert slow.counters.bytes_up >= 32_000 and slow.counters.bytes_down >= 32_000
    assert loopback < 0.5
    assert 2.0 + 0.4 <= shaped < 2.0 + 0.4 + 1.5


def test_lost_segments_cost_a_retransmission_wait(echo_port):
    clean = LinkShape(rate_bits=1_000_000, latency_seconds=0.05, seed=7)
    lossy = LinkShape(rate_bits=1_000_000, latency_seconds=0.05, drop=0.2, seed=7)
    with FaultyLink(echo_port, clean) as link:
        without_loss = timed_post(link, 60_000)
    with FaultyLink(echo_port, lossy) as link:
        with_loss = timed_post(link, 60_000)
        assert link.counters.dropped_segments > 0
    # Each direction waits at least one retransmission timeout (0.2 s) for a lost segment.
    assert with_loss >= without_loss + 2 * 0.2


def test_down_refuses_hang_holds_the_answer_and_up_restores(echo_port):
    with FaultyLink(echo_port) as link:
        link.set_mode("down")
        with pytest.raises(httpx.TransportError):
            httpx.post(link.url, content=b"x", timeout=5)
        link.set_mode("hang")
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(link.url, content=b"x", timeout=1)
        link.set_mode("up")
        assert timed_post(link, 10) < 1


def test_trickle_sends_the_answer_a_byte_at_a_time(echo_port):
    with FaultyLink(echo_port, LinkShape(trickle_seconds=0.5)) as link:
        link.set_mode("trickle")
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(link.url, content=b"x" * 100, timeout=httpx.Timeout(5, read=0.3))
        # Slower than any read timeout notices: a byte every 0.5 s reads on and on.
        started = time.monotonic()
        sock = socket.create_connection(("127.0.0.1", link.port), timeout=5)
        with sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
            got = b"".join(sock.recv(100) for _ in range(4))
        assert len(got) == 4 and got.startswith(b"HTTP")
        assert time.monotonic() - started >= 1.5
