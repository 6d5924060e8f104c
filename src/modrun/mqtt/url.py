"""Broker addresses: ``mqtt://[user[:pass]@]host:port`` (``mqtts://`` for TLS).

A clustered broker is several members: ``mqtt://user:pass@a:1883,b:1883,c:1883``
(or whole URLs separated by commas, credentials taken from the first). Clients
connect to the first and move to the next when one is lost.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import quote, unquote, urlsplit

from modrun.errors import ConfigError

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int = DEFAULT_PORT
    tls: bool = False
    username: str | None = None
    password: str | None = None
    others: tuple[tuple[str, int], ...] = ()  # the cluster's other members

    @property
    def members(self) -> tuple[tuple[str, int], ...]:
        """Every member, the first one first."""
        return ((self.host, self.port), *self.others)

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = [p.strip() for p in url.split(",") if p.strip()]
        if not parts:
            raise ConfigError("broker URL: empty")
        first = cls._parse_one(parts[0])
        others = []
        for part in parts[1:]:
            if "://" not in part:
                part = f"{'mqtts' if first.tls else 'mqtt'}://{part}"
            member = cls._parse_one(part)
            if member.tls != first.tls:
                raise ConfigError(f"broker URL {url!r}: members must all use TLS or none")
            others.append((member.host, member.port))
        return replace(first, others=tuple(others))

    @classmethod
    def _parse_one(cls, url: str) -> BrokerAddress:
        if "://" not in url:
            url = "mqtt://" + url
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ConfigError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
        tls = parts.scheme in ("mqtts", "ssl")
        try:
            port = parts.port
        except ValueError:
            raise ConfigError(f"broker URL {url!r}: bad port") from None
        if not parts.hostname:
            raise ConfigError(f"broker URL {url!r}: no host")
        return cls(
            host=parts.hostname,
            port=port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def with_credentials(self, username: str, password: str) -> BrokerAddress:
        return replace(self, username=username, password=password)

    def url(self, with_password: bool = False) -> str:
        auth = ""
        if self.username:
            auth = quote(self.username, safe="")
            if self.password:
                auth += ":" + (quote(self.password, safe="") if with_password else "***")
            auth += "@"
        hosts = ",".join(f"{host}:{port}" for host, port in self.members)
        return f"{'mqtts' if self.tls else 'mqtt'}://{auth}{hosts}"

    def __str__(self) -> str:
        return self.url()
