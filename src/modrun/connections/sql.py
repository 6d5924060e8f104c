"""SQL for functions: PostgreSQL (psycopg) and MySQL/MariaDB (PyMySQL).

Each call is its own transaction (committed on success, rolled back on error).
Parameters are always bound, never spliced: PostgreSQL statements use ``$1``,
``$2``...; MySQL statements use ``?``. Both drivers take ``%s``, so
placeholders are rewritten outside string literals, quoted identifiers and
comments, and a literal ``%`` is escaped. Rows come back as JSON objects.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from modrun.connections.resolve import SqlTarget
from modrun.errors import HostFunctionError

MAX_IDLE = 4


def _skip_quoted(sql: str, i: int) -> int:
    """Index just past the literal, identifier, comment or dollar-quote at i (or i)."""
    c = sql[i]
    if c in "'\"`":
        j = i + 1
        while j < len(sql):
            if sql[j] == c:
                if j + 1 < len(sql) and sql[j + 1] == c:  # doubled quote
                    j += 2
                    continue
                return j + 1
            if sql[j] == "\\" and c != '"':
                j += 2
                continue
            j += 1
        return len(sql)
    if sql.startswith("--", i) or (c == "#"):
        end = sql.find("\n", i)
        return len(sql) if end < 0 else end
    if sql.startswith("/*", i):
        end = sql.find("*/", i + 2)
        return len(sql) if end < 0 else end + 2
    return i


def translate(sql: str, params: Sequence[Any], dialect: str) -> tuple[str, list[Any]]:
    """Rewrite ``$n`` (postgresql) or ``?`` (mysql) placeholders to ``%s``."""
    out: list[str] = []
    ordered: list[Any] = []
    i = 0
    used_positional = 0
    while i < len(sql):
        c = sql[i]
        if dialect == "postgresql" and c == "$" and i + 1 < len(sql):
            if sql[i + 1].isdigit() and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                j = i + 1
                while j < len(sql) and sql[j].isdigit():
                    j += 1
                n = int(sql[i + 1 : j])
                if not 1 <= n <= len(params):
                    raise HostFunctionError(f"statement uses ${n} but {len(params)} params were given")
                out.append("%s")
                ordered.append(params[n - 1])
                i = j
                continue
            tag_end = sql.find("$", i + 1)  # dollar-quoted string: $tag$ ... $tag$
            tag = sql[i : tag_end + 1] if tag_end > 0 else ""
            if tag and all(ch.isalnum() or ch == "_" for ch in tag[1:-1]):
                close = sql.find(tag, tag_end + 1)
                end = len(sql) if close < 0 else close + len(tag)
                out.append(sql[i:end].replace("%", "%%"))
                i = end
                continue
        if dialect == "mysql" and c == "?":
            if used_positional >= len(params):
                raise HostFunctionError(f"statement has more ? placeholders than the {len(params)} params")
            out.append("%s")
            ordered.append(params[used_positional])
            used_positional += 1
            i += 1
            continue
        if c == "#" and dialect != "mysql":
            out.append(c)
            i += 1
            continue
        end = _skip_quoted(sql, i)
        if end != i:
            out.append(sql[i:end].replace("%", "%%"))
            i = end
            continue
        out.append("%%" if c == "%" else c)
        i += 1
    if dialect == "mysql" and used_positional != len(params):
        raise HostFunctionError(f"statement has {used_positional} ? placeholders but {len(params)} params")
    return "".join(out), ordered


def to_json(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


class _Pool:
    def __init__(self, target: SqlTarget) -> None:
        self.target = target
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        if self.target.kind == "postgresql":
            import psycopg

            return psycopg.connect(self.target.dsn, connect_timeout=10)
        import pymysql

        url = urlsplit(self.target.dsn)
        return pymysql.connect(
            host=url.hostname or "localhost",
            port=url.port or 3306,
            user=unquote(url.username or ""),
            password=unquote(url.password or ""),
            database=url.path.lstrip("/") or None,
            connect_timeout=10,
            autocommit=False,
            charset="utf8mb4",
        )

    def run(self, statement: str, params: Sequence[Any], query: bool | None) -> Any:
        """``query``: answer rows (True), the rows affected (False), or rows when
        the statement returns any and the rows affected otherwise (None)."""
        sql, ordered = translate(statement, params, self.target.kind)
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                conn = self._connect()
            with conn.cursor() as cursor:
                cursor.execute(sql, ordered)
                if query is None:
                    query = cursor.description is not None
                if query:
                    columns = [d[0] for d in cursor.description or ()]
                    result: Any = [
                        dict(zip(columns, map(to_json, row), strict=True)) for row in cursor.fetchall()
                    ]
                else:
                    result = {"rowsAffected": cursor.rowcount}
                    last = getattr(cursor, "lastrowid", None)
                    if self.target.kind == "mysql" and last:
                        result["lastInsertId"] = last
            conn.commit()
        except HostFunctionError:
            raise
        except Exception as exc:
            if conn is not None:
                try:
                    conn.rollback()
                except Exception:
                    conn = None
            raise HostFunctionError(f"{self.target.kind} {self.target.name}: {_reason(exc)}") from None
        with self._lock:
            if conn is not None and len(self._idle) < MAX_IDLE:
                self._idle.append(conn)
            elif conn is not None:
                conn.close()
        return result

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            try:
                conn.close()
            except Exception:
                pass


def _reason(exc: Exception) -> str:
    """The server's message on one line; PyMySQL's ``(code, message)`` as
    ``message (code)``."""
    args = exc.args
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return f"{args[1]} ({args[0]})"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text


class SqlConnections:
    def __init__(self, targets: Mapping[str, SqlTarget]) -> None:
        self._pools = {name: _Pool(t) for name, t in targets.items()}

    def kind(self, connection: str) -> str | None:
        pool = self._pools.get(connection)
        return pool.target.kind if pool is not None else None

    def run(self, connection: str, statement: str, params: Sequence[Any], query: bool | None) -> Any:
        pool = self._pools.get(connection)
        if pool is None:
            known = ", ".join(sorted(self._pools)) or "none"
            raise HostFunctionError(f"no SQL connection named {connection!r} (manifest has: {known})")
        if not isinstance(params, Sequence) or isinstance(params, (str, bytes)):
            raise HostFunctionError("params must be a JSON array")
        return pool.run(statement, params, query)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
