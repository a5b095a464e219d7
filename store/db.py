"""Engine and schema set-up for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine
from sqlmodel import create_engine

from store import audit_log, models  # noqa: F401 - the append-only guard on every engine; the tables

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")
SPINE_REVISION = "0001_spine"
_MIGRATION_LOCK = 0x57A2D3_0001  # pg_advisory_xact_lock key: one migrator at a time


#: permissions of a SQLite store and its -wal/-shm files (the owner only, like admin.key), and of a folder made for it
DB_FILE_MODE = 0o600
DB_DIR_MODE = 0o700


def secure_sqlite_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only, or tighten an existing one (and its -wal/-shm
    files). SQLite gives the -wal and -shm files it creates the mode of the database file. A folder is
    created owner-only; an existing one is left as it is (it may be shared, like /tmp)."""
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=DB_DIR_MODE, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, DB_FILE_MODE))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and file.stat().st_mode & 0o077:
            file.chmod(DB_FILE_MODE)


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so readers and the writer coexist, and a file
    only its owner reads (:func:`secure_sqlite_file`)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not path.startswith("file:"):
            secure_sqlite_file(Path(path))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def alembic_config() -> Config:
    """The Alembic configuration of the store (``store/alembic.ini``)."""
    return Config(str(ALEMBIC_INI))


def init_db(engine: Engine) -> None:
    """Bring the schema to the latest migration (``alembic upgrade head``; idempotent, safe to race).

    A database created before migrations existed (tables but no ``alembic_version``) is stamped at
    the spine revision first, then upgraded.
    """
    with _sqlite_file_lock(engine):
        _upgrade(engine)


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """One migrator at a time on a SQLite file (PostgreSQL uses an advisory lock in ``_upgrade``):
    ``warden up`` starts the API and a job worker together, and both bring the schema up."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    with open(f"{path}.migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _upgrade(engine: Engine) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        tables = set(inspect(conn).get_table_names())
        cfg.attributes["connection"] = conn
        if "findings" in tables and "alembic_version" not in tables:
            command.stamp(cfg, SPINE_REVISION)
        command.upgrade(cfg, "head")
