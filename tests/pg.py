"""A throwaway PostgreSQL cluster from the installed binaries (started as `postgres` when we are root)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url


def find_postgres() -> Path | None:
    """The newest PostgreSQL bin directory with initdb and pg_ctl, if any."""
    candidates = (
        sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
        if Path("/usr/lib/postgresql").exists()
        else []
    )
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


@dataclass
class PostgresServer:
    """A server we may create databases on; ``process_dir`` is set when we started it ourselves."""

    admin_url: str
    process_dir: Path | None
    binaries: Path | None = None
    run_as: str | None = None

    def url_for(self, database: str) -> str:
        """A SQLAlchemy URL for one database on this server."""
        return (
            make_url(self.admin_url)
            .set(drivername="postgresql+psycopg", database=database)
            .render_as_string(hide_password=False)
        )

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        url = make_url(self.admin_url).set(drivername="postgresql")
        return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)

    def create_database(self, name: str, template: str | None = None) -> None:
        """CREATE DATABASE, optionally copying a migrated template."""
        clause = f" TEMPLATE {template}" if template else ""
        with self._admin() as connection:
            connection.execute(f"CREATE DATABASE {name}{clause}")

    def drop_database(self, name: str) -> None:
        """DROP DATABASE, disconnecting any leftover sessions."""
        with self._admin() as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def dump(self, database: str) -> str:
        """The pg_dump of a database, as text."""
        pg_dump = str(self.binaries / "pg_dump") if self.binaries else shutil.which("pg_dump") or "pg_dump"
        url = make_url(self.url_for(database)).set(drivername="postgresql")
        result = subprocess.run(
            [pg_dump, "--no-owner", url.render_as_string(hide_password=False)],
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout

    def stop(self) -> None:
        """Stop a server we started and remove its files."""
        if self.process_dir is None or self.binaries is None:
            return
        _run(
            self.run_as,
            [str(self.binaries / "pg_ctl"), "-D", str(self.process_dir / "data"), "-m", "immediate", "stop"],
            check=False,
        )
        shutil.rmtree(self.process_dir, ignore_errors=True)


def start_postgres(binaries: Path, _unused_tmp: Path) -> PostgresServer:
    """initdb and start a cluster on a free loopback port, with trust authentication."""
    run_as = "postgres" if os.geteuid() == 0 else None
    # pytest's tmp dirs are private to root; the postgres user needs a directory of its own.
    base = Path(tempfile.mkdtemp(prefix="rimay-pg-"))
    if run_as is not None:
        user = pwd.getpwnam(run_as)
        os.chown(base, user.pw_uid, user.pw_gid)
    data = base / "data"
    port = _free_port()
    _run(
        run_as,
        [
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        ],
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c full_page_writes=off"
    _run(
        run_as,
        [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"],
    )
    return PostgresServer(
        admin_url=f"postgresql://postgres@127.0.0.1:{port}/postgres",
        process_dir=base,
        binaries=binaries,
        run_as=run_as,
    )


def _run(run_as: str | None, command: list[str], *, check: bool = True) -> None:
    prefix = ["runuser", "-u", run_as, "--"] if run_as else []
    subprocess.run([*prefix, *command], check=check, capture_output=True)


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
