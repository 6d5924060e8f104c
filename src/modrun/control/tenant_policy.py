"""What a tenant's bundle may ask of the node that runs it.

A bundle's manifest (``modrun.json``) configures the child node that serves
it. Some of what a manifest can say reaches the host rather than the sandbox:
a process executor (``local``, ``ssh``) runs a command as the node's user, and
SQL or Dgraph connections open the node's network to databases. Those are the
operator's: a bundle whose owner is not an admin may declare only HTTP
connections, HTTP models (OpenAI-compatible, KServe, generic) and the embedded
model, and its HTTP connections may reach only the hosts the operator granted
its owner (control/tenant_hosts.py). Checked when the bundle is uploaded and
again when it is deployed (its owner may have been an admin then and not now,
or lost a grant).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from modrun.control.tenant_hosts import HostPattern, refused_url
from modrun.manifest.model import HttpConnection, Manifest

TENANT_PROVIDERS = ("openai", "kserve", "generic", "embedded")
TENANT_CONNECTIONS = ("http",)


def operator_features(manifest: Manifest, granted: Sequence[HostPattern] = ()) -> list[str]:
    """The manifest's fields that only an operator may use, each with why
    (``granted``: the hosts its owner's HTTP connections may reach)."""
    found = [
        f"models.{name}.provider: {model.provider!r} runs a process on the node (operators only)"
        for name, model in manifest.models.items()
        if model.provider not in TENANT_PROVIDERS
    ]
    found += [
        f"connections.{name}.type: {conn.type!r} opens the node's network to a database (operators only)"
        for name, conn in manifest.connections.items()
        if conn.type not in TENANT_CONNECTIONS
    ]
    for name, conn in manifest.connections.items():
        if isinstance(conn, HttpConnection):
            field = "baseUrl" if conn.base_url is not None else "endpoint"
            why = refused_url(conn.base_url or conn.endpoint or "", granted)
            if why:
                found.append(f"connections.{name}.{field}: {why}")
    return found


def refuse_operator_features(
    manifests: Iterable[tuple[str, Manifest]], granted: Sequence[HostPattern] = ()
) -> None:
    """Unprocessable naming the first field a tenant may not use."""
    from modrun.control.errors import Unprocessable

    for name, manifest in manifests:
        features = operator_features(manifest, granted)
        if features:
            raise Unprocessable(f"bundle manifest {name}: {features[0]}")
