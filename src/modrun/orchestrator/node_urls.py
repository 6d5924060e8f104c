"""The address a runtime registers (``metadata.url``), checked before the
gateway will ever call it.

The gateway sends callers' requests to that URL, so a node that registers
``http://169.254.169.254/`` or an internal admin port would turn the
orchestrator into a proxy for it (SSRF). A URL must be plain ``http``/``https``
to a host and port, without credentials, query or fragment; link-local
addresses (cloud metadata services) are refused unless an operator's
``--nodeNetworks`` names them. With ``--nodeNetworks`` the host must be an IP
address in one of those networks: a name is refused, since what it resolves
to at call time is not what was checked.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

from modrun.http.addresses import Network, address_of

LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))


def parse_networks(value: str) -> list[Network]:
    """``10.0.0.0/8,fd00::/8`` as networks (ValueError naming the bad one)."""
    found: list[Network] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            found.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"not a network: {part!r} (expected a CIDR such as 10.0.0.0/8)") from None
    return found


def checked_node_url(url: object, networks: Sequence[Network] = ()) -> str:
    """The URL without a trailing slash, or ValueError saying what is wrong."""
    if not isinstance(url, str) or not url:
        raise ValueError("expected an http(s) URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"scheme {parts.scheme!r} (only http and https)")
    if not parts.hostname:
        raise ValueError("no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the URL")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ValueError("a query or fragment")
    if port == 0:
        raise ValueError("port 0")
    _check_host(parts.hostname, networks)
    return url.rstrip("/")


def _check_host(host: str, allowed: Sequence[Network]) -> None:
    address = address_of(host)
    if address is None:
        if allowed:
            raise ValueError(
                f"host {host!r} is a name; with --nodeNetworks a node must advertise an IP address"
            )
        return
    if allowed:
        if not any(address in network for network in allowed):
            raise ValueError(f"address {address} is outside --nodeNetworks")
        return
    if any(address in network for network in LINK_LOCAL):
        raise ValueError(f"link-local address {address} (name it in --nodeNetworks to allow it)")
