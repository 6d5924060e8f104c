"""Users and teams in the metadata database."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modrun.control.errors import BadRequest, Conflict, NotFound, Unprocessable
from modrun.control.passwords import MIN_LENGTH, hash_password, verify_password
from modrun.db.tables import teams, user_teams, users
from modrun.db.times import utc_now

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    username: str
    email: str
    admin: bool
    teams: dict[uuid.UUID, bool] = field(default_factory=dict)  # team id -> is team admin

    def public(self, with_email: bool = True) -> dict:
        out = {"id": str(self.id), "username": self.username, "admin": self.admin}
        if with_email:
            out["email"] = self.email
        return out


class Accounts:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- users --------------------------------------------------------------------

    def create_user(self, username: object, email: object, password: object, admin: bool = False) -> User:
        """Values straight from a request body: checked here."""
        if not isinstance(username, str) or not USERNAME.match(username):
            raise BadRequest(
                "username: 2 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        if not isinstance(email, str) or not EMAIL.match(email):
            raise BadRequest("email: not an email address")
        if not isinstance(password, str) or len(password) < MIN_LENGTH:
            raise BadRequest(f"password: at least {MIN_LENGTH} characters")
        user = User(uuid.uuid4(), username, email.lower(), admin)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    users.insert().values(
                        id=user.id,
                        username=username,
                        email=user.email,
                        password_hash=hash_password(password),
                        admin=admin,
                        created_at=utc_now(),
                        tokens_valid_after=utc_now(),
                    )
                )
        except sa.exc.IntegrityError:
            raise Conflict("a user with that username or email exists") from None
        return user

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one()

    def authenticate(self, login: str, password: str) -> User | None:
        """By username or email; None when either is wrong (same time either way)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(users).where(sa.or_(users.c.username == login, users.c.email == login.lower()))
            ).first()
        if not verify_password(row.password_hash if row else None, password) or row is None:
            return None
        return self.get(row.id)

    def get(self, user_id: uuid.UUID) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
            if row is None:
                return None
            memberships = conn.execute(
                sa.select(user_teams.c.team_id, user_teams.c.is_team_admin).where(
                    user_teams.c.user_id == user_id
                )
            )
            return User(row.id, row.username, row.email, row.admin, {t: a for t, a in memberships})

    def find_external(self, issuer: str, subject: str) -> User | None:
        """The local user of an identity provider's subject, if there is one (nothing made or changed)."""
        with self.engine.connect() as conn:
            user_id = conn.execute(
                sa.select(users.c.id).where(users.c.external_id == f"{issuer} {subject}")
            ).scalar()
        return self.get(user_id) if user_id is not None else None

    def external(
        self, issuer: str, subject: str, name: str, email: str, groups: tuple[str, ...] | None
    ) -> User:
        """The local user of an identity provider's subject, made on first sight.
        With ``groups`` the user's team memberships are set to the teams of those
        names (the provider is authoritative); team-admin flags are kept."""
        external_id = f"{issuer} {subject}"
        with self.engine.begin() as conn:
            user_id = conn.execute(sa.select(users.c.id).where(users.c.external_id == external_id)).scalar()
            if user_id is None:
                user_id = uuid.uuid4()
                conn.execute(
                    users.insert().values(
                        id=user_id,
                        username=self._free_name(conn, name or subject),
                        email=self._free_email(conn, email, user_id),
                        password_hash=None,
                        admin=False,
                        created_at=utc_now(),
                        tokens_valid_after=utc_now(),
                        external_id=external_id,
                    )
                )
            if groups is not None:
                wanted = set(conn.execute(sa.select(teams.c.id).where(teams.c.name.in_(groups))).scalars())
                held = {
                    r.team_id: r.is_team_admin
                    for r in conn.execute(sa.select(user_teams).where(user_teams.c.user_id == user_id))
                }
                for team_id in set(held) - wanted:
                    conn.execute(
                        user_teams.delete().where(
                            user_teams.c.user_id == user_id, user_teams.c.team_id == team_id
                        )
                    )
                for team_id in wanted - set(held):
                    conn.execute(
                        user_teams.insert().values(team_id=team_id, user_id=user_id, is_team_admin=False)
                    )
        found = self.get(user_id)
        assert found is not None
        return found

    @staticmethod
    def _free_name(conn: sa.Connection, wanted: str) -> str:
        base = re.sub(r"[^A-Za-z0-9._-]", "-", wanted).strip("-._")[:56] or "user"
        name, n = base, 1
        while conn.execute(sa.select(users.c.id).where(users.c.username == name)).first():
            n += 1
            name = f"{base}-{n}"
        return name

    @staticmethod
    def _free_email(conn: sa.Connection, wanted: str, user_id: uuid.UUID) -> str:
        email = wanted.lower() if EMAIL.match(wanted or "") else ""
        if not email or conn.execute(sa.select(users.c.id).where(users.c.email == email)).first():
            email = f"{user_id}@oidc.invalid"
        return email

    def all(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(users).order_by(users.c.username)).all()
        return [User(r.id, r.username, r.email, r.admin) for r in rows]

    def delete(self, user_id: uuid.UUID) -> None:
        with self.engine.begin() as conn:
            conn.execute(user_teams.delete().where(user_teams.c.user_id == user_id))
            if not conn.execute(users.delete().where(users.c.id == user_id)).rowcount:
                raise NotFound("no such user")

    def set_admin(self, user_id: uuid.UUID, admin: bool) -> None:
        with self.engine.begin() as conn:
            if not conn.execute(users.update().where(users.c.id == user_id).values(admin=admin)).rowcount:
                raise NotFound("no such user")
            if not admin and not conn.execute(sa.select(users.c.id).where(users.c.admin)).first():
                raise Unprocessable("the last global admin cannot be demoted")

    # -- teams ----------------------------------------------------------------------

    def create_team(self, name: object) -> dict:
        if not isinstance(name, str) or not USERNAME.match(name):
            raise BadRequest("team name: 2 to 64 letters, digits, '.', '_' or '-'")
        team_id = uuid.uuid4()
        try:
            with self.engine.begin() as conn:
                conn.execute(teams.insert().values(id=team_id, name=name, created_at=utc_now()))
        except sa.exc.IntegrityError:
            raise Conflict("a team with that name exists") from None
        return {"id": str(team_id), "name": name}

    def teams(self, only: set[uuid.UUID] | None = None) -> list[dict]:
        query = sa.select(teams).order_by(teams.c.name)
        if only is not None:
            query = query.where(teams.c.id.in_(only))
        with self.engine.connect() as conn:
            return [{"id": str(r.id), "name": r.name} for r in conn.execute(query)]

    def team_exists(self, team_id: uuid.UUID) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(teams.c.id).where(teams.c.id == team_id)).first() is not None

    def delete_team(self, team_id: uuid.UUID) -> None:
        with self.engine.begin() as conn:
            conn.execute(user_teams.delete().where(user_teams.c.team_id == team_id))
            if not conn.execute(teams.delete().where(teams.c.id == team_id)).rowcount:
                raise NotFound("no such team")

    def set_member(
        self, team_id: uuid.UUID, user_id: uuid.UUID, member: bool, team_admin: bool = False
    ) -> None:
        """Add (or, ``member=False``, remove) a user; ``team_admin`` sets the team-admin flag."""
        if not self.team_exists(team_id):
            raise NotFound("no such team")
        if self.get(user_id) is None:
            raise NotFound("no such user")
        with self.engine.begin() as conn:
            conn.execute(
                user_teams.delete().where(user_teams.c.team_id == team_id, user_teams.c.user_id == user_id)
            )
            if member:
                conn.execute(
                    user_teams.insert().values(team_id=team_id, user_id=user_id, is_team_admin=team_admin)
                )

    def members(self, team_id: uuid.UUID) -> list[dict]:
        query = (
            sa.select(users.c.id, users.c.username, users.c.email, user_teams.c.is_team_admin)
            .join(user_teams, user_teams.c.user_id == users.c.id)
            .where(user_teams.c.team_id == team_id)
            .order_by(users.c.username)
        )
        with self.engine.connect() as conn:
            return [
                {"id": str(r.id), "username": r.username, "email": r.email, "team_admin": r.is_team_admin}
                for r in conn.execute(query)
            ]
