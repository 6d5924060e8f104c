"""Reading a URL's host as an IP address, the way address checks need it."""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def address_of(host: str) -> Address | None:
    """The IP address ``host`` is written as (brackets allowed), an IPv4-mapped
    IPv6 address as the IPv4 address it stands for (``::ffff:169.254.169.254``
    is 169.254.169.254); None for a name."""
    try:
        found = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found
