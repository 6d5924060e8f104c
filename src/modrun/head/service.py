"""``modrun orchestrator``: the one place its parts are made, started and stopped.

The constructor only keeps the settings: most parts read the database or the
disk as they are made. ``start()`` makes them in this order: database (migrated)
-> file store -> control loop (state loaded) -> embedded broker (unless --mqtt)
-> MQTT link -> control plane (signing key, first admin, OIDC discovery) ->
deployment reconciler -> gateway; then starts broker, control loop, MQTT and
reconciler. ``serve()`` adds HTTP. ``stop()`` is the reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from modrun.control.artifacts import Artifacts
from modrun.control.deployments import DeploymentStore
from modrun.control.guard import CallGuard, Decision, Subject
from modrun.control.plane import ControlPlane, artifact_key
from modrun.db.engine import database_url, is_postgres, libpq_url, make_engine
from modrun.db.migrate import ensure_schema
from modrun.errors import ConfigError
from modrun.fleet import protocol as P
from modrun.fleet.acl import ORCHESTRATOR_USER, FleetAccess
from modrun.fleet.broker import EmbeddedBroker
from modrun.mqtt.client import MqttLink
from modrun.orchestrator.callstats import CallStats
from modrun.orchestrator.config import OrchestratorSettings
from modrun.orchestrator.deployments import Reconciler
from modrun.orchestrator.engine import ControlLoop, Follow, Lead
from modrun.orchestrator.files import FileStore
from modrun.orchestrator.forward import LeaderForward
from modrun.orchestrator.gateway import Gateway
from modrun.orchestrator.leadership import Campaign, Lease
from modrun.orchestrator.listener import ChangeListener
from modrun.orchestrator.metrics import OrchestratorMetrics
from modrun.orchestrator.mosquitto import MosquittoFiles
from modrun.orchestrator.output import ModuleOutput
from modrun.orchestrator.scheduler import make_policy
from modrun.orchestrator.store import FleetStore
from modrun.storage.blobs import BlobStore, LocalBlobs, S3Blobs

log = logging.getLogger("modrun.orchestrator")


class Orchestrator:
    def __init__(self, settings: OrchestratorSettings) -> None:
        self.settings = settings

    def _make_parts(self) -> None:
        settings = self.settings
        storage = Path(settings.storage_path).expanduser()
        self.db_url = database_url(settings.db, storage)
        self.db = make_engine(self.db_url)
        ensure_schema(self.db, self.db_url, settings.migrate)
        key = artifact_key() if settings.encrypt_artifacts else None
        self.files = FileStore(
            self._blobs(storage, "files"), self.db, storage / "tmp", settings.max_file_size, key
        )
        self.topics = P.Topics(settings.realm)
        self.broker: EmbeddedBroker | None = None
        broker = settings.broker
        if settings.mqtt is None:
            access = None
            if settings.auth != "none":
                password = secrets.token_urlsafe(24)
                access = FleetAccess(
                    settings.realm,
                    password,
                    lambda secret, runtime: self.control_plane.node_credentials.speaks_for(secret, runtime),
                    self._runtime_of,
                    self._channels_of,
                )
                broker = broker.with_credentials(ORCHESTRATOR_USER, password)
            self.broker = EmbeddedBroker(settings.broker_host, settings.broker_port, access)
        # on an external broker the session outlives the orchestrator: what is sent to it
        # while it restarts (creates, exits, registrations) is delivered when it is back;
        # several orchestrators each have their own session, and each hears everything
        self.several = is_postgres(self.db_url)
        client_id = f"modrun-orchestrator-{settings.realm}"
        if self.several:
            client_id += "-" + re.sub(r"[^A-Za-z0-9_.:-]", "_", settings.instance_name)
        self.mqtt = MqttLink(broker, client_id=client_id, keepalive=10, persistent=settings.mqtt is not None)
        self.control = ControlLoop(
            FleetStore(self.db),
            self.topics,
            make_policy(settings.scheduler),
            self._lookup_file,
            self.mqtt.publish,
            settings.keepalive,
            settings.ka_timeout,
            node_networks=settings.node_networks,
            fence=Lease.fence if self.several else None,
        )
        self.campaign: Campaign | None = None
        self.listener: ChangeListener | None = None
        if self.several:
            libpq = libpq_url(self.db_url)
            lease = Lease(self.db, libpq, settings.instance_name, settings.own_url)
            self.campaign = Campaign(
                lease,
                lambda term: self.control.turn(Lead(term)),
                lambda: self.control.turn(Follow()),
                candidate=settings.candidate,
            )
            self.control.on_deposed = self.campaign.deposed
            self.listener = ChangeListener(libpq, self.control.turn)
        self.forward = (
            LeaderForward(self.campaign, lambda: self.control.leading) if self.campaign is not None else None
        )
        for topic in (f"{self.topics.reg}/+", f"{self.topics.control}/#", f"{self.topics.keepalive}/+"):
            self.mqtt.subscribe(topic, self.control.on_mqtt)
        self.output = ModuleOutput(self.topics)
        for topic in self.output.subscriptions():
            self.mqtt.subscribe(topic, self.output.on_mqtt)
        self.control_plane = ControlPlane(
            self.db,
            storage,
            settings.issuer or f"http://{settings.host}:{settings.port}",
            auth=settings.auth,
            signup=settings.signup,
            max_key_lifetime=settings.max_key_lifetime,
            blobs=self._blobs(storage, "artifacts"),
            max_artifact_size=settings.max_artifact_size,
            oidc=settings.oidc,
            artifact_key=key,
            default_quota=settings.default_quota,
            fleet=self._reconciler,
            tenant_hosts=settings.tenant_hosts,
        )
        if self.broker is not None:
            self.control_plane.node_credentials.on_revoke.append(self.broker.disconnect)
        self.mosquitto: MosquittoFiles | None = None
        if settings.mosquitto_files is not None:
            if settings.mqtt is None:
                raise ConfigError("--mosquittoFiles is for an external Mosquitto: give --mqtt too")
            try:
                self.mosquitto = MosquittoFiles(
                    settings.mosquitto_files,
                    settings.realm,
                    settings.mqtt,
                    settings.mosquitto_reload,
                    self.control_plane.node_credentials,
                    self.control,
                )
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        self.gateway = Gateway(
            self.control,
            settings.gateway_wait,
            settings.gateway_timeout,
            placed_only=self.control_plane.secured,
            max_response=settings.gateway_max_response,
            quiet_after=settings.quiet_after,
        )
        plane = self.control_plane
        self.guard = CallGuard(plane.issuers, _in_thread(plane.decide)) if plane.secured else None
        self.metrics = OrchestratorMetrics(self.control, self.campaign)
        self.calls = CallStats()

    def _reconciler(self, store: DeploymentStore, artifacts: Artifacts) -> Reconciler:
        self.reconciler = Reconciler(
            store, artifacts, self.files, self.control, self.output, operators=self._operators
        )
        return self.reconciler

    def _blobs(self, storage: Path, kind: str) -> BlobStore:
        """``kind`` (files, artifacts) under --filesS3 or under --storagePath."""
        target = self.settings.files_s3
        if target:
            bucket, _, prefix = target.removeprefix("s3://").partition("/")
            return S3Blobs(bucket, f"{prefix.strip('/')}/{kind}" if prefix.strip("/") else kind)
        return LocalBlobs(storage / kind)

    def _operators(self, artifact_id: uuid.UUID) -> bool:
        """An artifact whose owner is an admin (any, in an open fleet) is the operator's."""
        plane = self.control_plane
        if not plane.secured:
            return True
        access = plane.artifacts.access(artifact_id)
        owner = plane.accounts.get(access.owner_id) if access is not None and access.owner_id else None
        return owner is not None and owner.admin

    def _runtime_of(self, module: str) -> str | None:
        found = self.control.fleet.modules.get(module)
        return found.parent if found is not None else None

    def _channels_of(self, runtime: str) -> set[str]:
        modules = list(self.control.fleet.modules.copy().values())
        return {c["topic"] for m in modules if m.parent == runtime for c in m.channels}

    def _lookup_file(self, path: str) -> tuple[str, str] | None:
        """(sha256, kind) of a stored module file: one indexed row, no file I/O
        (the control thread calls it)."""
        info = self.files.recent_info(path)
        return (info.sha256, info.kind) if info else None

    def advertised_broker(self, request_host: str) -> str:
        """The broker URL joining nodes should use (no password: nodes bring their own)."""
        mqtt = self.settings.mqtt
        if mqtt is not None:
            if self.control_plane.secured:  # never the orchestrator's own user: nodes bring theirs
                return dataclasses.replace(mqtt, username=None, password=None).url()
            return mqtt.url(with_password=False).replace(":***@", "@")
        host = self.settings.broker_host
        if host in ("0.0.0.0", "::", ""):
            host = request_host
        return f"mqtt://{host}:{self.settings.broker_port}"

    # -- running ------------------------------------------------------------------------

    def start(self) -> None:
        self._make_parts()
        if self.broker is not None:
            self.broker.start()
        self.control.start()
        if self.listener is not None:
            self.listener.start()
        if self.mosquitto is not None:
            self.mosquitto.start()  # the orchestrator's own user is in the files before it connects
        self.mqtt.start()
        self.reconciler.start()
        if self.campaign is not None:
            self.campaign.start()
        if not self.mqtt.wait_connected(10):
            log.warning("MQTT broker %s not reachable yet; retrying in the background", self.settings.broker)

    def stop(self) -> None:
        if self.campaign is not None:
            self.campaign.stop()  # the lease is given up at once: a follower takes over now
        self.reconciler.stop()
        self.mqtt.stop()
        if self.listener is not None:
            self.listener.stop()
        self.control.stop()
        if self.mosquitto is not None:
            self.mosquitto.stop()
        if self.broker is not None:
            self.broker.stop()
        self.db.dispose()

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self.gateway.close()
            if self.forward is not None:
                await self.forward.close()

    def asgi(self) -> Any:
        from modrun.orchestrator.app import OrchestratorApp

        return OrchestratorApp(self, lifespan=self.lifespan)

    def serve(self) -> None:
        from modrun.api.server import run_http

        self.start()
        log.info(
            "orchestrator on http://%s:%d, realm %r, MQTT %s%s, keepalive %gs (timeout %gs), scheduler %s",
            self.settings.host,
            self.settings.port,
            self.settings.realm,
            self.settings.broker,
            " (embedded)" if self.broker else "",
            self.settings.keepalive,
            self.settings.ka_timeout,
            self.control.policy.name,
        )
        try:
            run_http(self.asgi(), self.settings.host, self.settings.port)
        finally:
            self.stop()


def _in_thread(decide: Callable[[Subject, str], Decision]) -> Callable[[Subject, str], Awaitable[Decision]]:
    async def run(subject: Subject, artifact: str) -> Decision:
        return await asyncio.to_thread(decide, subject, artifact)

    return run
