"""The model registry: model servers defined at run time, their access log and
versioned weights/params (MER's AvailableModels, ConnTypeParams, ModelParams,
ModelAccess and ModelWeights, as modrun tables).

A registry model is a manifest-style model spec stored as connection params
(where and how to reach it) and model params (how to run it). Manifest models
win over registry models of the same name.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from modrun.db.tables import model_access, model_servers, model_weights
from modrun.db.times import utc_now
from modrun.errors import ConfigError
from modrun.manifest.model import NAME_PATTERN, ModelSpec

CONN_KEYS = ("host", "port", "user", "password", "privateKey", "knownHosts", "connection")


def validate(name: str, spec: dict[str, Any]) -> ModelSpec:
    import re

    if not re.match(NAME_PATTERN, name) or len(name) > 63:
        raise ConfigError(
            f"model name {name!r}: use letters, digits and single hyphens, at most 63 characters"
        )
    try:
        return ModelSpec.model_validate(spec)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or name}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ConfigError(f"model {name}: {problems}") from None


def _split(spec: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    conn = {k: v for k, v in spec.items() if k in CONN_KEYS}
    params = {k: v for k, v in spec.items() if k not in CONN_KEYS and k != "provider"}
    return spec.get("provider", "generic"), conn, params


def load(engine: Engine) -> dict[str, dict[str, Any]]:
    """Registry models as raw spec documents (placeholders not yet resolved)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(model_servers).order_by(model_servers.c.name)).fetchall()
    return {r.name: {"provider": r.conn_type, **r.conn_params, **r.model_params} for r in rows}


def create(engine: Engine, name: str, spec: dict[str, Any]) -> None:
    validate(name, spec)
    provider, conn_params, params = _split(spec)
    now = utc_now()
    try:
        with engine.begin() as conn:
            conn.execute(
                model_servers.insert().values(
                    id=uuid.uuid4(),
                    name=name,
                    conn_type=provider,
                    conn_params=conn_params,
                    model_params=params,
                    created_at=now,
                    last_updated=now,
                )
            )
    except sa.exc.IntegrityError:
        raise ConfigError(f"a registry model named {name!r} already exists") from None


def modify(engine: Engine, name: str, changes: dict[str, Any]) -> None:
    current = load(engine).get(name)
    if current is None:
        raise ConfigError(f"no registry model named {name!r}")
    spec = {**current, **changes}
    validate(name, spec)
    provider, conn_params, params = _split(spec)
    with engine.begin() as conn:
        conn.execute(
            model_servers.update()
            .where(model_servers.c.name == name)
            .values(conn_type=provider, conn_params=conn_params, model_params=params, last_updated=utc_now())
        )


def delete(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        if conn.execute(model_servers.delete().where(model_servers.c.name == name)).rowcount == 0:
            raise ConfigError(f"no registry model named {name!r}")


def add_weights(engine: Engine, model: str, params: dict[str, Any], weights: bytes | None) -> int:
    """Store a new version of a model's weights/params; returns its number."""
    with engine.begin() as conn:
        latest = conn.execute(
            sa.select(sa.func.max(model_weights.c.version)).where(model_weights.c.model == model)
        ).scalar()
        version = (latest or 0) + 1
        conn.execute(
            model_weights.insert().values(
                id=uuid.uuid4(),
                model=model,
                version=version,
                params=params,
                weights=weights,
                created_at=utc_now(),
            )
        )
    return version


def weights_versions(engine: Engine, model: str) -> list[dict[str, Any]]:
    t = model_weights
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.version, t.c.params, t.c.created_at, sa.func.length(t.c.weights).label("size"))
            .where(t.c.model == model)
            .order_by(t.c.version.desc())
        ).fetchall()
    return [
        {
            "version": r.version,
            "params": r.params,
            "createdAt": r.created_at.isoformat(),
            "weightsBytes": r.size,
        }
        for r in rows
    ]


def latest_weights(engine: Engine) -> dict[str, tuple[int, dict[str, Any], bytes | None]]:
    """Newest weights/params version of every model that has one."""
    t = model_weights
    newest = sa.select(t.c.model, sa.func.max(t.c.version).label("v")).group_by(t.c.model).subquery()
    query = sa.select(t).join(newest, sa.and_(t.c.model == newest.c.model, t.c.version == newest.c.v))
    with engine.connect() as conn:
        return {r.model: (r.version, r.params, r.weights) for r in conn.execute(query)}


def access_log(engine: Engine, model: str, limit: int = 50) -> list[dict[str, Any]]:
    t = model_access
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t).where(t.c.model == model).order_by(t.c.start_access.desc()).limit(min(limit, 1000))
        ).fetchall()
    return [
        {
            "requestId": str(r.request_id),
            "model": r.model,
            "start": r.start_access.isoformat(),
            "stop": r.stop_access.isoformat(),
            "status": r.status,
            "error": r.error,
        }
        for r in rows
    ]
