"""Real database servers for tests.

* PostgreSQL: a private cluster made with ``initdb`` and run with ``pg_ctl``
  on a free loopback port (as the ``postgres`` user when the tests run as
  root, since PostgreSQL refuses to run as root). It can be stopped and
  started again by tests.
* MariaDB/MySQL: the machine's server on 127.0.0.1:3306 (root, no password)
  when one answers; otherwise a private ``mariadbd`` on a free port.
Neither is ever skipped: a missing binary is an error telling what to install.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from support import free_port


def _as_owner(cmd: list[str], user: str) -> list[str]:
    return ["runuser", "-u", user, "--", *cmd] if os.geteuid() == 0 else cmd


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or (
        [shutil.which(name)] if shutil.which(name) else []
    )
    if not found:
        raise RuntimeError(f"{name} not found: install PostgreSQL (apt-get install postgresql)")
    return found[-1]


class PrivatePostgres:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="modrun-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        subprocess.run(
            _as_owner(
                [
                    _pg_bin("initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ],
                self.user,
            ),
            check=True,
            capture_output=True,
        )

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def fresh_database(self, name: str) -> str:
        """An empty database ``name`` in the cluster (dropped first if it exists); its URL."""
        import sqlalchemy as sa

        admin = sa.create_engine(
            self.dsn.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        admin.dispose()
        return self.dsn.rsplit("/", 1)[0] + f"/{name}"

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_owner(
                [
                    _pg_bin("pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    opts,
                    "-l",
                    str(self.dir / "log"),
                    "-w",
                    "start",
                ],
                self.user,
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_owner([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"], self.user),
            capture_output=True,
        )

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends, as a crash or the OOM killer would."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        victims = [postmaster]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    victims.append(int(stat.parent.name))
            except (OSError, ValueError, IndexError):
                continue
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class MariaDB:
    """root@127.0.0.1 on ``port``; ``database`` is created fresh for the run."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir: Path | None = None
        self.database = f"modrun_test_{os.getpid()}"
        if _port_open(3306) and self._usable(3306):
            self.port = 3306
        else:
            self._start_private()
        self._sql(f"CREATE DATABASE IF NOT EXISTS {self.database}")

    def _usable(self, port: int) -> bool:
        try:
            import pymysql

            pymysql.connect(host="127.0.0.1", port=port, user="root", password="", connect_timeout=3).close()
            return True
        except Exception:
            return False

    def _start_private(self) -> None:
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        server = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        if install is None or not Path(server).exists():
            raise RuntimeError("MariaDB not found: install it (apt-get install mariadb-server)")
        self.dir = Path(tempfile.mkdtemp(prefix="modrun-maria-"))
        self.port = free_port()
        subprocess.run(
            [
                install,
                "--no-defaults",
                f"--datadir={self.dir}/data",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
        )
        self.proc = subprocess.Popen(
            [
                server,
                "--no-defaults",
                f"--datadir={self.dir}/data",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.dir}/sock",
                "--user=root",
                f"--pid-file={self.dir}/pid",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not (_port_open(self.port) and self._usable(self.port)):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("private mariadbd did not start")
            time.sleep(0.2)

    def _sql(self, statement: str) -> None:
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="", autocommit=True)
        with conn.cursor() as cur:
            cur.execute(statement)
        conn.close()

    @property
    def dsn(self) -> str:
        return f"mysql://root:@127.0.0.1:{self.port}/{self.database}"

    def cleanup(self) -> None:
        try:
            self._sql(f"DROP DATABASE IF EXISTS {self.database}")
        except Exception:
            pass
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


class PrivateSshd:
    """A real OpenSSH server on a free loopback port, with a temporary host key
    and one authorized client key, run from the installed ``sshd``."""

    def __init__(self) -> None:
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        if not Path(sshd).exists():
            raise RuntimeError("sshd not found: install openssh-server (apt-get install openssh-server)")
        self.dir = Path(tempfile.mkdtemp(prefix="modrun-sshd-"))
        self.port = free_port()
        self.user = os.environ.get("USER") or "root"
        if os.geteuid() == 0:
            self.user = "root"
        self.host_key = self.dir / "host_ed25519"
        self.client_key = self.dir / "client_ed25519"
        for key in (self.host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        (self.dir / "authorized_keys").write_text(self.client_key.with_suffix(".pub").read_text())
        os.chmod(self.dir / "authorized_keys", 0o600)
        host_pub = self.host_key.with_suffix(".pub").read_text().split()
        self.known_hosts = self.dir / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
        config = self.dir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    f"AuthorizedKeysFile {self.dir}/authorized_keys",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "UsePAM no",
                    "StrictModes no",
                    f"PidFile {self.dir}/sshd.pid",
                    "LogLevel ERROR",
                ]
            )
            + "\n"
        )
        with open(self.dir / "log", "wb") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=log
            )
        deadline = time.monotonic() + 20
        while not _port_open(self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"sshd did not start: {(self.dir / 'log').read_text()}")
            time.sleep(0.1)

    def cleanup(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
