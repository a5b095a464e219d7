"""The governance store: SQLModel tables, engine/session helpers and idempotent writes."""
