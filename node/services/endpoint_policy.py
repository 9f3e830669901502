"""Which peer endpoints this node may send to: the guard against request forgery
through a peer's card (a card naming ``http://169.254.169.254`` or ``127.0.0.1:5432``).

An endpoint must be an ``https://`` URL (``http://`` only if the operator allows it)
with a host and nothing else: no user name or password, no query, no fragment. An
address, written in the URL or resolved from its name at connect time, must be a
public one: not loopback, link-local, private (RFC 1918, ULA), shared (CGNAT),
multicast, unspecified, reserved or documentation; IPv4-mapped, IPv4-compatible and
NAT64 forms count as the IPv4 address they carry. An operator lets ranges through by
listing them (``peer_allowed_networks``), as the demo and the tests do for loopback.

``check_url`` is applied when a peer is admitted, when an endpoint change is approved
and before each delivery; ``check_address`` by the sender's transport on every address
a name resolves to, just before connecting to it (so a name that re-resolves to an
internal address is refused too).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import InvalidInput

if TYPE_CHECKING:
    from ..config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_ENDPOINT_LENGTH = 2048
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Names an IPv4 parser (inet_aton) reads as an address: 2130706433, 0x7f.1, 127.1 …
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

# Settings a node running on loopback uses: the demo, the benches and the tests.
LOOPBACK_PEERS: dict[str, str | bool] = {
    "peer_allow_http": True,
    "peer_allowed_networks": "127.0.0.0/8,::1/128",
}

# Codes of ``EndpointRefused`` (stable: the API returns them, the surfaces translate them).
NOT_A_URL = "endpoint_malformed"
NOT_HTTPS = "endpoint_not_https"
CREDENTIALS = "endpoint_credentials"
QUERY = "endpoint_query"
ADDRESS = "endpoint_address_refused"


class EndpointRefused(InvalidInput):
    """The endpoint is not one this node sends to. ``code`` says why; ``params`` hold
    the endpoint and, for a refused address, the address and its range."""

    def __init__(self, code: str, message: str, **params: str) -> None:
        super().__init__("endpoint", message)
        self.code = code
        self.params = params

    def __str__(self) -> str:
        hint = {
            NOT_HTTPS: "; plain http is allowed only with KPNET_PEER_ALLOW_HTTP",
            ADDRESS: "; allow its range with KPNET_PEER_ALLOWED_NETWORKS",
        }.get(self.code, "")
        where = self.params.get("endpoint", "")
        return f"endpoint {where} refused ({self.code}): {self.message}{hint}"


def address_range(address: IPAddress) -> str | None:
    """The name of the non-public range ``address`` is in, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_range(embedded)
    for name, inside in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if inside:
            return name
    return None if address.is_global else "not-global"


@dataclass(frozen=True)
class EndpointPolicy:
    """Deny by default: https to public addresses only."""

    allow_http: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> EndpointPolicy:
        return cls(settings.peer_allow_http, settings.peer_networks)

    def address_refusal(self, address: IPAddress) -> str | None:
        """The range that makes ``address`` refused, or None if it may be connected to."""
        if any(address.version == n.version and address in n for n in self.allowed_networks):
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return self.address_refusal(address.ipv4_mapped)
        return address_range(address)

    def check_address(self, address: IPAddress, endpoint: str = "") -> None:
        refused = self.address_refusal(address)
        if refused is not None:
            raise EndpointRefused(
                ADDRESS,
                f"address {address} is {refused}; this node does not send there",
                endpoint=endpoint,
                address=str(address),
                range=refused,
            )

    def check_addresses(self, addresses: Iterable[IPAddress], endpoint: str) -> list[IPAddress]:
        """The addresses of ``addresses`` that may be connected to; refused if none."""
        allowed, first_refusal = [], None
        for address in addresses:
            try:
                self.check_address(address, endpoint)
            except EndpointRefused as exc:
                first_refusal = first_refusal or exc
            else:
                allowed.append(address)
        if not allowed:
            raise first_refusal or EndpointRefused(
                NOT_A_URL, "the name resolves to no address", endpoint=endpoint
            )
        return allowed

    def check_url(self, endpoint: str) -> str:
        """``endpoint`` if this node may send to it; else ``EndpointRefused``."""
        shown = endpoint[:200]
        if not isinstance(endpoint, str) or len(endpoint) > MAX_ENDPOINT_LENGTH:
            raise EndpointRefused(NOT_A_URL, "not a URL of acceptable length", endpoint=shown)
        if any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E or c == "\\" for c in endpoint):
            raise EndpointRefused(
                NOT_A_URL, "spaces, control or non-ASCII characters", endpoint=shown
            )
        try:
            parts = urlsplit(endpoint)
            port = parts.port
        except ValueError:
            raise EndpointRefused(NOT_A_URL, "not a URL", endpoint=shown) from None
        schemes = ("https", "http") if self.allow_http else ("https",)
        if parts.scheme.lower() not in schemes:
            raise EndpointRefused(
                NOT_HTTPS,
                "must be an https:// URL" + ("" if self.allow_http else " (http is not allowed)"),
                endpoint=shown,
            )
        if "@" in parts.netloc:
            raise EndpointRefused(
                CREDENTIALS, "must not carry a user name or password", endpoint=shown
            )
        if "?" in endpoint or "#" in endpoint:
            raise EndpointRefused(QUERY, "must not have a query or fragment", endpoint=shown)
        host = (parts.hostname or "").rstrip(".")
        if not host or port == 0:
            raise EndpointRefused(NOT_A_URL, "no host or no usable port", endpoint=shown)
        try:
            address: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None:
            if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
                raise EndpointRefused(NOT_A_URL, "no IPv6 zone", endpoint=shown)
            self.check_address(address, shown)
            return endpoint
        if _NUMERIC_HOST.match(host) or not all(_LABEL.match(x) for x in host.split(".")):
            raise EndpointRefused(NOT_A_URL, "the host is not a valid name", endpoint=shown)
        if host == "localhost" or host.endswith(".localhost"):
            self.check_address(ipaddress.IPv4Address("127.0.0.1"), shown)
        return endpoint
