"""Async SQLAlchemy engine, sessions and the tables' metadata."""
