"""The sender's network transport: connects only to addresses the endpoint policy
allows, checked at connect time.

A peer's endpoint names a host; what that name resolves to may change between the
check at admission and each connection (DNS rebinding). ``PolicyBackend`` resolves the
name itself, checks every address it gets (``EndpointPolicy.check_addresses``) and
connects to an allowed one, so the connection is pinned to the address that was
checked; TLS still verifies the certificate for the name (httpcore sends SNI and
``Host`` from the URL, not from the address connected to). No proxy is used: a proxy
would connect on our behalf to addresses we never checked.

``EndpointBlocked`` (an ``httpx.ConnectError``) is what a refused endpoint raises.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

import httpcore
import httpx

from ..services.endpoint_policy import EndpointPolicy, EndpointRefused

# The defaults httpx gives a client of its own (the sender kept those until now).
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class EndpointBlocked(httpx.ConnectError):
    """The request was not sent: the endpoint policy refuses its URL or address."""

    def __init__(self, refusal: EndpointRefused, request: httpx.Request) -> None:
        super().__init__(f"{refusal.code}: {refusal.message}", request=request)
        self.refusal = refusal


class _AddressRefused(httpcore.ConnectError):
    def __init__(self, refusal: EndpointRefused) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


class PolicyBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving and checking each host before connecting."""

    def __init__(self, policy: EndpointPolicy) -> None:
        self.policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                found = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in found))
        try:
            allowed = self.policy.check_addresses(addresses, host)
        except EndpointRefused as refusal:
            raise _AddressRefused(refusal) from None
        failure: Exception | None = None
        for address in allowed:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:  # the next address, as a resolver would
                failure = exc
        assert failure is not None
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PolicyTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` over ``PolicyBackend``, refusing URLs the policy
    refuses before anything is resolved."""

    def __init__(self, policy: EndpointPolicy, limits: httpx.Limits = DEFAULT_LIMITS) -> None:
        # One TLS context (loading the CA bundle is a noticeable part of a start).
        ssl_context = httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        self.policy = policy
        # httpx builds its pool without a way to name the network backend: rebuild it
        # with the same settings and ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PolicyBackend(policy),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            self.policy.check_url(str(request.url))
        except EndpointRefused as refusal:
            raise EndpointBlocked(refusal, request) from None
        try:
            return await super().handle_async_request(request)
        except httpx.ConnectError as exc:
            if isinstance(exc.__cause__, _AddressRefused):
                raise EndpointBlocked(exc.__cause__.refusal, request) from None
            raise
