"""Acknowledged means on disk: the store's sessions run with durable settings on both engines."""

from __future__ import annotations

from sharedcare.app import Server


def test_store_sessions_are_durable(server: Server) -> None:
    with server.store.writing() as cur:
        if server.store.dialect.name == "postgresql":
            cur.execute("SHOW synchronous_commit")  # a commit returns only once its WAL is flushed
            assert cur.fetchone()[0] == "on"
        else:
            cur.execute("PRAGMA synchronous")  # FULL: the WAL is synced at every commit, so power loss keeps it
            assert cur.fetchone()[0] >= 2
            cur.execute("PRAGMA journal_mode")
            assert cur.fetchone()[0] == "wal"
