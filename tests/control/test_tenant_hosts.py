"""The operator's allow-list of hosts tenants' HTTP connections may reach."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modrun.control.tenant_hosts import TenantHosts, parse_patterns, refused_url

GRANTED = parse_patterns(
    ["api.openai.com", "*.example.com:8443", "10.0.0.0/8:*", "[fd00::/8]", "127.0.0.1:9000"]
)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1/",
        "https://a.example.com:8443/",
        "https://a.b.example.com:8443/x",
        "http://10.2.3.4:5555/",
        "http://[fd00::1]/",
        "http://127.0.0.1:9000/x",
        "http://[::ffff:127.0.0.1]:9000/",
    ],
)
def test_granted_hosts_pass(url):
    assert refused_url(url, GRANTED) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://example.com:8443/", "example.com:8443 is not among"),  # *.x is subdomains only
        ("https://evil-example.com:8443/", "is not among"),
        ("https://api.openai.com:8443/", "api.openai.com:8443 is not among"),  # no port: the default only
        ("http://127.0.0.1:9001/", "127.0.0.1:9001"),
        ("http://localhost:9000/", "localhost:9000"),  # a name never matches an address pattern
        ("http://169.254.169.254/", "169.254.169.254:80"),
        ("http://{{HOST}}/v1/", "a placeholder in the host"),
        ("http://api.openai.com{{PORT}}/", "a placeholder in the host"),
        ("ftp://api.openai.com/", "not an http(s) URL"),
    ],
)
def test_anything_else_is_refused_with_the_reason(url, why):
    assert why in (refused_url(url, GRANTED) or "")


def test_nothing_is_granted_by_default():
    assert "is not among" in (
        refused_url("https://api.openai.com/", TenantHosts().granted("alice", [])) or ""
    )


def test_a_policy_file_grants_hosts_to_everyone_users_and_teams(tmp_path: Path):
    policy = tmp_path / "hosts.json"
    policy.write_text(
        json.dumps(
            {"everyone": ["api.openai.com"], "users": {"alice": ["alice.dev"]}, "teams": {"ml": ["10.0.0.5"]}}
        )
    )
    hosts = TenantHosts.load("extra.example.org", policy)
    alice = hosts.granted("alice", ["ml"])
    bob = hosts.granted("bob", [])
    for url in (
        "https://api.openai.com/",
        "https://extra.example.org/",
        "https://alice.dev/",
        "http://10.0.0.5/",
    ):
        assert refused_url(url, alice) is None
    assert refused_url("https://api.openai.com/", bob) is None
    assert refused_url("https://alice.dev/", bob) and refused_url("http://10.0.0.5/", bob)


@pytest.mark.parametrize(
    ("flag", "doc", "why"),
    [
        ("bad host", None, "not a host pattern"),
        ("a.com:99999", None, "not a port"),
        (None, {"everyone": "api.openai.com"}, "a list of host patterns"),
        (None, {"groups": {}}, "an object of everyone, users and teams"),
        (None, {"users": {"alice": ["*"]}}, "not a host pattern"),
    ],
)
def test_a_bad_policy_is_refused_at_start(tmp_path: Path, flag, doc, why):
    policy = None
    if doc is not None:
        policy = tmp_path / "hosts.json"
        policy.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=why):
        TenantHosts.load(flag, policy)
