"""Alembic migrations of the governance store (run by ``store.db.init_db``)."""
