"""The embedded SQLite store (and its -wal/-shm files and folder) is readable by its owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import text

from store.db import init_db, make_engine
from warden.runtime import ensure_admin_key
from warden.settings import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_store_and_its_wal_files_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: files 0644, folders 0755 unless Warden says otherwise
    try:
        db = tmp_path / "data" / "warden.db"
        engine = make_engine(f"sqlite:///{db}")
        init_db(engine)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        wal, shm = db.with_name("warden.db-wal"), db.with_name("warden.db-shm")
        assert wal.exists() and shm.exists()
        assert {_mode(db), _mode(wal), _mode(shm)} == {0o600}
        assert _mode(db.parent) == 0o700
        engine.dispose()
    finally:
        os.umask(old)


def test_an_existing_world_readable_store_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "warden.db"
    db.touch(mode=0o644)
    db.chmod(0o644)
    make_engine(f"sqlite:///{db}").dispose()
    assert _mode(db) == 0o600


def test_the_embedded_data_dir_and_admin_key_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        data = tmp_path / "warden-data"
        ensure_admin_key(Settings(data_dir=data))
        assert _mode(data) == 0o700 and _mode(data / "admin.key") == 0o600
    finally:
        os.umask(old)
