"""What a runtime may register as the address the gateway will call."""

from __future__ import annotations

import pytest

from modrun.orchestrator.node_urls import checked_node_url, parse_networks


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8001",
        "https://node-7.internal:443/",
        "http://[::1]:9000",
        "http://10.0.0.5:80/modrun",
    ],
)
def test_plain_http_addresses_are_taken_without_a_trailing_slash(url):
    assert checked_node_url(url) == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://[fe80::1]:80", "link-local"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://127.0.0.1:70", "scheme"),
        ("http://admin:pw@127.0.0.1:1", "credentials"),
        ("http://127.0.0.1:1/?a=b", "query"),
        ("http://127.0.0.1:1/#x", "fragment"),
        ("http://127.0.0.1:99999", "not a URL"),
        ("http:///nohost", "no host"),
        ("", "expected"),
        (["http://127.0.0.1"], "expected"),
    ],
)
def test_addresses_that_would_make_the_gateway_a_proxy_are_refused(url, why):
    with pytest.raises(ValueError, match=why):
        checked_node_url(url)


def test_with_allowed_networks_only_addresses_inside_them_and_no_names():
    networks = parse_networks("10.0.0.0/8, fd00::/8")
    assert checked_node_url("http://10.2.3.4:8001", networks) == "http://10.2.3.4:8001"
    assert checked_node_url("http://[fd00::7]:8001", networks) == "http://[fd00::7]:8001"
    with pytest.raises(ValueError, match="outside --nodeNetworks"):
        checked_node_url("http://192.168.1.1:8001", networks)
    with pytest.raises(ValueError, match="is a name"):
        checked_node_url("http://node.internal:8001", networks)
    allowed = parse_networks("169.254.10.0/24")  # an operator may name a link-local network
    assert checked_node_url("http://169.254.10.2:1", allowed) == "http://169.254.10.2:1"


def test_a_bad_network_is_named():
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33'"):
        parse_networks("10.0.0.0/8,10.0.0.0/33")
