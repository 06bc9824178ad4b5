"""Alembic migrations for the lrpilot job store."""
