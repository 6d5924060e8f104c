"""Node labels (``modrun serve --label zone=eu``) and the requirements
deployments put on them (``labels: {"zone": "eu"}``: every pair must match)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$")
VALUE = re.compile(r"^[A-Za-z0-9._/-]{0,63}$")


class BadLabel(ValueError):
    pass


def checked(labels: object) -> dict[str, str]:
    """Labels from JSON: an object of short strings."""
    if not isinstance(labels, Mapping):
        raise BadLabel("labels: an object of KEY: VALUE strings")
    out: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not KEY.match(key):
            raise BadLabel(f"label key {key!r}: 1 to 63 letters, digits, '.', '_', '/' or '-'")
        if not isinstance(value, str) or not VALUE.match(value):
            raise BadLabel(f"label {key}: the value must be up to 63 letters, digits, '.', '_', '/' or '-'")
        out[key] = value
    return out


def parse(pairs: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings, as given on a command line."""
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise BadLabel(f"label {pair!r}: write KEY=VALUE")
        found[key.strip()] = value.strip()
    return checked(found)


def matches(have: Mapping[str, str], required: Mapping[str, str]) -> bool:
    return all(have.get(k) == v for k, v in required.items())
