"""Start a throwaway PostgreSQL cluster from Debian's packages (``make test`` installs them).

If ``WARDEN_TEST_POSTGRES_URL`` is set, that server is used instead.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.kafka import free_port


def pg_bindir() -> Path:
    """The newest installed PostgreSQL server's bin directory."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise RuntimeError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql: run `make test` "
            "(it installs Debian's postgresql package) or set WARDEN_TEST_POSTGRES_URL"
        )
    return Path(candidates[-1]).parent


def _as_owner(cmd: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *cmd] if owner else cmd


@dataclass
class PostgresCluster:
    url: str
    datadir: Path
    bindir: Path
    owner: str | None
    options: str = ""
    """The server options it was started with (``resume`` starts it again with them: same port)."""

    def _pg_ctl(self, *args: str, check: bool) -> None:
        subprocess.run(_as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args], self.owner),
                       check=check, capture_output=True)

    def halt(self, mode: str = "fast") -> None:
        """Stop the server and keep its data (``fast``: clients are disconnected, ``immediate``: as a crash)."""
        self._pg_ctl("-m", mode, "-w", "stop", check=False)

    def resume(self) -> None:
        """Start the halted server again on the same port with the same data."""
        self._pg_ctl("-o", self.options, "-l", str(self.datadir.parent / "pg.log"), "-w", "-t", "60", "start",
                     check=True)

    def stop(self) -> None:
        self._pg_ctl("-m", "immediate", "stop", check=False)
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start_postgres() -> PostgresCluster:
    """initdb + start on a free port (as user ``postgres`` when running as root); returns its URL."""
    bindir = pg_bindir()
    owner = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="warden-pg-"))
    datadir, sockdir = root / "data", root / "sock"
    sockdir.mkdir()
    if owner:
        shutil.chown(root, owner)
        shutil.chown(sockdir, owner)
    os.chmod(root, 0o755)
    subprocess.run(_as_owner([str(bindir / "initdb"), "-D", str(datadir), "-U", "warden", "--auth=trust",
                              "-E", "UTF8", "--locale=C.UTF-8"], owner), check=True, capture_output=True)
    port = free_port()
    opts = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sockdir} -c fsync=off " \
           "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
    subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(datadir), "-o", opts, "-l",
                              str(root / "pg.log"), "-w", "-t", "60", "start"], owner), check=True, capture_output=True)
    cluster = PostgresCluster(f"postgresql://warden@127.0.0.1:{port}/postgres", datadir, bindir, owner, opts)
    deadline = time.monotonic() + 30
    import psycopg

    while True:
        try:
            with psycopg.connect(cluster.url.replace("postgresql://", "postgresql://", 1), connect_timeout=2):
                break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                cluster.stop()
                raise
            time.sleep(0.2)
    return cluster
