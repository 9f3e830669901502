"""The endpoint policy alone: which URLs and addresses a node sends to (no database)."""

from __future__ import annotations

import ipaddress

import pytest

from node.config import parse_networks
from node.services.endpoint_policy import (
    ADDRESS,
    CREDENTIALS,
    NOT_A_URL,
    NOT_HTTPS,
    QUERY,
    EndpointPolicy,
    EndpointRefused,
)

# http is let through here so that each case is refused for what it shows, not its scheme.
HTTP_ALLOWED = EndpointPolicy(allow_http=True)

REFUSED = [
    ("http://169.254.169.254/latest/meta-data", ADDRESS, "link-local"),
    ("https://127.0.0.1:5432", ADDRESS, "loopback"),
    ("https://[::1]:6379", ADDRESS, "loopback"),
    ("https://user:pw@10.0.0.1", CREDENTIALS, None),
    ("https://user@cf.example.org", CREDENTIALS, None),
    ("https://10.0.0.1", ADDRESS, "private"),
    ("https://172.16.0.1", ADDRESS, "private"),
    ("https://192.168.1.10:8100", ADDRESS, "private"),
    ("https://[fd00::1]", ADDRESS, "private"),
    ("https://[fe80::1]", ADDRESS, "link-local"),
    ("https://224.0.0.1", ADDRESS, "multicast"),
    ("https://[ff02::1]", ADDRESS, "multicast"),
    ("https://0.0.0.0", ADDRESS, "unspecified"),
    ("https://[::]", ADDRESS, "unspecified"),
    ("https://255.255.255.255", ADDRESS, "private"),
    ("https://240.0.0.1", ADDRESS, "private"),
    ("https://100.64.0.1", ADDRESS, "not-global"),
    ("https://192.0.2.7", ADDRESS, "private"),
    ("https://[::ffff:127.0.0.1]", ADDRESS, "loopback"),
    ("https://[::ffff:169.254.169.254]", ADDRESS, "link-local"),
    ("https://[64:ff9b::a9fe:a9fe]", ADDRESS, "link-local"),
    ("https://[::127.0.0.1]", ADDRESS, "reserved"),
    ("https://2130706433", NOT_A_URL, None),
    ("https://0x7f.1", NOT_A_URL, None),
    ("https://127.1", NOT_A_URL, None),
    ("https://localhost:8100", ADDRESS, "loopback"),
    ("https://kpnet.localhost", ADDRESS, "loopback"),
    ("https://cf.example.org/?next=http://10.0.0.1", QUERY, None),
    ("https://cf.example.org/#x", QUERY, None),
    ("https://cf.example.org?", QUERY, None),
    ("ftp://cf.example.org", NOT_HTTPS, None),
    ("https://cf.example.org:0", NOT_A_URL, None),
    ("https://cf.example.org:99999", NOT_A_URL, None),
    ("https:///federation", NOT_A_URL, None),
    ("https://cf .example.org", NOT_A_URL, None),
    ("https://cf_1.example.org", NOT_A_URL, None),
    ("https://[fe80::1%25eth0]", NOT_A_URL, None),
    ("https://cf.example.org\\@10.0.0.1", NOT_A_URL, None),
    ("https://" + "a" * 2100 + ".org", NOT_A_URL, None),
]


@pytest.mark.parametrize(("endpoint", "code", "range_"), REFUSED)
def test_bad_endpoints_are_refused(endpoint: str, code: str, range_: str | None) -> None:
    with pytest.raises(EndpointRefused) as refused:
        HTTP_ALLOWED.check_url(endpoint)
    assert refused.value.code == code
    assert refused.value.params.get("range") == range_
    assert code in str(refused.value)


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://cf.example.org",
        "https://kpnet.cf.example.org:8443/node/",
        "https://8.8.8.8",
        "https://[2001:4860:4860::8888]:443",
        "https://xn--cellule-kp-dtb.cf",
    ],
)
def test_https_to_public_hosts_is_accepted(endpoint: str) -> None:
    assert EndpointPolicy().check_url(endpoint) == endpoint


def test_plain_http_only_where_the_operator_allows_it() -> None:
    with pytest.raises(EndpointRefused) as refused:
        EndpointPolicy().check_url("http://cf.example.org")
    assert refused.value.code == NOT_HTTPS
    assert "KPNET_PEER_ALLOW_HTTP" in str(refused.value)
    assert HTTP_ALLOWED.check_url("http://cf.example.org") == "http://cf.example.org"


def test_allowed_networks_let_only_those_ranges_through() -> None:
    policy = EndpointPolicy(
        allow_http=True, allowed_networks=parse_networks("10.20.0.0/16, 127.0.0.0/8,::1/128")
    )
    for endpoint in ("http://10.20.3.4:8100", "http://127.0.0.1:8100", "https://[::1]:8100"):
        assert policy.check_url(endpoint) == endpoint
    # An IPv4-mapped address is the IPv4 address it carries.
    assert policy.check_url("https://[::ffff:10.20.0.1]")
    for endpoint in ("http://10.21.0.1", "http://169.254.169.254", "http://[fd00::1]"):
        with pytest.raises(EndpointRefused):
            policy.check_url(endpoint)


def test_connect_time_check_keeps_only_allowed_addresses() -> None:
    addresses = [ipaddress.ip_address(a) for a in ("10.0.0.5", "93.184.215.14", "::1")]
    assert EndpointPolicy().check_addresses(addresses, "cf.example.org") == [addresses[1]]
    with pytest.raises(EndpointRefused) as refused:
        EndpointPolicy().check_addresses(addresses[:1], "cf.example.org")
    assert refused.value.params["range"] == "private"


@pytest.mark.parametrize("value", ["10.0.0.0/33", "10.0.0.1/8", "not-a-range"])
def test_allowed_networks_setting_must_be_ranges(value: str) -> None:
    with pytest.raises(ValueError):
        parse_networks(value)
