"""A real PostgreSQL server for the tests: a cluster of our own (initdb, pg_ctl), which
a test may stop and start, or the server ``.ci/run`` started (DROPSCRIBE_TEST_POSTGRES)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

if TYPE_CHECKING:
    from collections.abc import Iterator

PASSWORD = "pg-SECRET-password-42"  # the dropscribe role's, for password_file tests


def bindir() -> Path | None:
    """The newest installed PostgreSQL's programs (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One PostgreSQL server in a folder of its own, on 127.0.0.1 and a Unix socket.

    Local (socket) connections are trusted; TCP ones need a password (scram), so the
    daemon's password_file is tested for real. Run as the ``postgres`` user when this
    is root (initdb refuses root)."""

    def __init__(self) -> None:
        found = bindir()
        if found is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = found
        self.root = Path(tempfile.mkdtemp(prefix="dropscribe-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.root.chmod(0o755)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        )
        conf = (
            f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.root}'\nfsync = off\n"
            "synchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
        )
        self._run("sh", "-c", f"cat >> {self.data}/postgresql.conf <<'EOF'\n{conf}EOF")
        self.start()
        with self.admin() as db:
            db.execute(f"CREATE ROLE dropscribe LOGIN CREATEDB PASSWORD '{PASSWORD}'")

    def _run(self, program: str, *args: str) -> None:
        exe = str(self.bin / program) if (self.bin / program).exists() else program
        subprocess.run([*self._as, exe, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=str(self.root), port=self.port, user="postgres", dbname=dbname, autocommit=True
        )

    def database(self) -> str:
        """A fresh database owned by the dropscribe role; its URL (TCP, no password)."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self.admin() as db:
            db.execute(f"CREATE DATABASE {name} OWNER dropscribe")
        return f"postgresql://dropscribe@127.0.0.1:{self.port}/{name}"


class SharedServer:
    """The server .ci/run started (a superuser URL in DROPSCRIBE_TEST_POSTGRES)."""

    def __init__(self, url: str) -> None:
        self.url = url
        with psycopg.connect(url, autocommit=True) as db:
            exists = db.execute("SELECT 1 FROM pg_roles WHERE rolname = 'dropscribe'").fetchone()
            if not exists:
                # another test process may make it at the same moment
                with contextlib.suppress(
                    psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation
                ):
                    db.execute(f"CREATE ROLE dropscribe LOGIN CREATEDB PASSWORD '{PASSWORD}'")
            host = db.info.host
        self.host = host if host.startswith("/") else "127.0.0.1"
        self.port = int(psycopg.conninfo.conninfo_to_dict(url).get("port") or 5432)

    def database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name} OWNER dropscribe")
        return f"postgresql://dropscribe@127.0.0.1:{self.port}/{name}"

    def destroy(self) -> None:
        pass


class Proxy:
    """A TCP relay on 127.0.0.1 in front of the server, which a test can cut (every
    connection dropped, new ones refused) and mend: one host cut off from the database."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.port = free_port()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.mend()

    def mend(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    close = cut

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def server() -> Cluster | SharedServer:
    """The server .ci/run started, else a cluster of our own."""
    url = os.environ.get("DROPSCRIBE_TEST_POSTGRES")
    return SharedServer(url) if url else Cluster()


@contextlib.contextmanager
def own_cluster() -> Iterator[Cluster]:
    """A cluster for one test alone (it may be stopped and started)."""
    cluster = Cluster()
    try:
        yield cluster
    finally:
        cluster.destroy()
