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

    def stop(self) -> None:
        subprocess.run(_as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"],
                                 self.owner), check=False, capture_output=True)
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
    cluster = PostgresCluster(f"postgresql://warden@127.0.0.1:{port}/postgres", datadir, bindir, owner)
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
