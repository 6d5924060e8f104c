"""A node's own credential: what its join token is exchanged for, once.

The first start in a secured fleet posts the runtime's uuid and name with the
join token to ``/api/v2/node/join`` and keeps the credential it gets (file
mode 0600, beside the runtime's id file); every later start uses that file
and needs no join token. The credential is the runtime's identity on the
broker (its MQTT password, the uuid its username) and on the fleet's routes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx

from modrun.http.bases import Bases
from modrun.storage.private import write_private

log = logging.getLogger("modrun.agent")


class JoinRefused(Exception):
    """Joining cannot succeed by trying again (a bad token, a uuid taken)."""


def node_credential(orchestrator: str, token: str, runtime: str, name: str, path: Path) -> str:
    """The credential kept at ``path``, or a new one exchanged for ``token``.
    Raises JoinRefused, or httpx.HTTPError when the orchestrator is unreachable."""
    try:
        kept = path.read_text().strip()
        if kept:
            return kept
    except OSError:
        pass
    response = Bases(orchestrator).request(
        lambda base: httpx.post(
            base + "/api/v2/node/join",
            json={"runtime": runtime, "name": name},
            headers={"authorization": f"Bearer {token}"},
            timeout=10,
        )
    )
    if response.status_code in (400, 401, 403, 409):
        raise JoinRefused(_error(response))
    response.raise_for_status()
    credential = str(response.json()["credential"])
    write_private(path, credential + "\n")
    log.info("joined as runtime %s: its credential is kept in %s", runtime, path)
    return credential


def _error(response: httpx.Response) -> str:
    try:
        return f"{response.status_code}: {response.json().get('error')}"
    except ValueError:
        return str(response.status_code)
