"""Alembic migrations of the catalog database (PostgreSQL and SQLite)."""
