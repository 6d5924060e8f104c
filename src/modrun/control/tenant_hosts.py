"""The hosts a tenant's HTTP connections (and the HTTP models that use them) may
reach: an operator's allow-list, nothing by default.

``--tenantHosts api.openai.com,*.example.com:8443`` grants hosts to everyone;
``--tenantHostsFile policy.json`` grants them to everyone, to users and to teams
by name::

    {"everyone": ["api.openai.com"],
     "users": {"alice": ["*.alice.example"]},
     "teams": {"ml": ["10.20.0.0/16:8080"]}}

A pattern is a host name (``api.openai.com``), a wildcard for its subdomains
(``*.example.com``: ``a.example.com``, not ``example.com``), or an IP address or
network (``10.0.0.5``, ``10.20.0.0/16``, ``[fd00::/8]``), each with an optional
port: none means the scheme's default port (80, 443), ``:*`` any port. A name
pattern never matches an IP address, nor a network a name. Admins' artifacts
are the operator's and are not held to the list.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from modrun.config.json_files import read_json_file
from modrun.errors import ConfigError
from modrun.http.addresses import Network, address_of

NAME = re.compile(r"(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*")
ANY_PORT = -1


@dataclass(frozen=True)
class HostPattern:
    text: str
    name: str | None = None  # a host name, or "*.suffix"
    network: Network | None = None
    port: int | None = None  # None: the scheme's default; ANY_PORT: any

    def matches(self, host: str, port: int, default_port: int) -> bool:
        wanted = default_port if self.port is None else self.port
        if self.port != ANY_PORT and port != wanted:
            return False
        address = address_of(host)
        if self.network is not None:
            return address is not None and address in self.network
        if address is not None or self.name is None:
            return False
        if self.name.startswith("*."):
            return host.endswith(self.name[1:]) and len(host) > len(self.name) - 1
        return host == self.name


def parse_pattern(text: str) -> HostPattern:
    """One pattern (ValueError saying what is wrong)."""
    raw = text.strip().lower()
    if not raw:
        raise ValueError("an empty host pattern")
    host, port = raw, None
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"not a host pattern: {text!r}")
        port = _port(rest[1:], text) if rest else None
    elif raw.count(":") == 1:
        host, _, given = raw.partition(":")
        port = _port(given, text)
    try:
        return HostPattern(text.strip(), network=ipaddress.ip_network(host, strict=False), port=port)
    except ValueError:
        pass
    if not NAME.fullmatch(host):
        raise ValueError(f"not a host pattern: {text!r} (a name, *.domain, an address or network)")
    return HostPattern(text.strip(), name=host, port=port)


def _port(text: str, pattern: str) -> int:
    if text == "*":
        return ANY_PORT
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"not a port in {pattern!r}: {text!r}")
    return int(text)


def parse_patterns(values: Iterable[str]) -> tuple[HostPattern, ...]:
    return tuple(parse_pattern(v) for v in values if v.strip())


@dataclass(frozen=True)
class TenantHosts:
    everyone: tuple[HostPattern, ...] = ()
    users: dict[str, tuple[HostPattern, ...]] = field(default_factory=dict)
    teams: dict[str, tuple[HostPattern, ...]] = field(default_factory=dict)

    @classmethod
    def load(cls, flag: str | None = None, policy_file: Path | None = None) -> TenantHosts:
        """From ``--tenantHosts`` (everyone) and ``--tenantHostsFile`` (ValueError when bad)."""
        everyone = parse_patterns((flag or "").split(","))
        if policy_file is None:
            return cls(everyone)
        try:
            doc = read_json_file(policy_file, "--tenantHostsFile")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        if not isinstance(doc, dict) or set(doc) - {"everyone", "users", "teams"}:
            raise ValueError(f"--tenantHostsFile {policy_file}: an object of everyone, users and teams")
        return cls(
            everyone + parse_patterns(_strings(doc.get("everyone", []), "everyone")),
            _grants(doc.get("users", {}), "users"),
            _grants(doc.get("teams", {}), "teams"),
        )

    def granted(self, username: str, teams: Iterable[str]) -> tuple[HostPattern, ...]:
        """What a user may reach: everyone's hosts, theirs and their teams'."""
        found = list(self.everyone) + list(self.users.get(username, ()))
        for team in teams:
            found += self.teams.get(team, ())
        return tuple(found)


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: a list of host patterns")
    return value


def _grants(value: object, where: str) -> dict[str, tuple[HostPattern, ...]]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: an object of names to host patterns")
    return {str(k): parse_patterns(_strings(v, f"{where}.{k}")) for k, v in value.items()}


def refused_url(url: str, granted: Sequence[HostPattern]) -> str | None:
    """Why ``url`` is not for a tenant with ``granted`` hosts, or None."""
    scheme, _, rest = url.partition("://")
    if "{{" in scheme or "{{" in rest.split("/", 1)[0]:
        return "a placeholder in the host: where it points must be known before it runs"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a URL"
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        return "not an http(s) URL"
    default = 443 if parts.scheme == "https" else 80
    if any(p.matches(host, port or default, default) for p in granted):
        return None
    shown = f"{host}:{port or default}"
    return f"{shown} is not among the hosts the operator allows tenants (--tenantHosts)"
