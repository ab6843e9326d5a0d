"""The browser sessions' table: shared by every server process, so a session started in one is known to all.

Rows are keyed by the SHA-256 of the session id, not the id itself: whoever can read the database cannot take
over a signed-in browser with what they read there.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sharedcare.store.schema import pending_ddl
from sharedcare.store.sqlstore import SqlStore

DDL = [
    "CREATE TABLE IF NOT EXISTS web_sessions (key TEXT PRIMARY KEY, body TEXT NOT NULL, "
    "created DOUBLE PRECISION NOT NULL, seen DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS web_sessions_seen ON web_sessions (seen)",
]


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionTable:
    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.sql = store.dialect.sql
        with store.writing() as cur:
            for stmt in pending_ddl(cur, store.dialect, DDL):
                cur.execute(stmt)

    def load(self, session_id: str) -> tuple[str, float, float] | None:
        """(body, created, seen) of a session, or None."""
        with self.store.reading() as cur:
            cur.execute(self.sql("SELECT body, created, seen FROM web_sessions WHERE key = ?"), (_key(session_id),))
            row = cur.fetchone()
        return (row[0], float(row[1]), float(row[2])) if row else None

    def save(self, session_id: str, body: str, created: float, seen: float) -> None:
        with self.store.writing() as cur:
            cur.execute(
                self.sql(
                    "INSERT INTO web_sessions (key, body, created, seen) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET body = excluded.body, seen = excluded.seen"
                ),
                (_key(session_id), body, created, seen),
            )

    def delete(self, session_id: str) -> None:
        with self.store.writing() as cur:
            cur.execute(self.sql("DELETE FROM web_sessions WHERE key = ?"), (_key(session_id),))

    def sweep(self, seen_before: float, created_before: float) -> int:
        """Forget sessions idle or old enough to have ended anyway."""
        with self.store.writing() as cur:
            cur.execute(
                self.sql("DELETE FROM web_sessions WHERE seen < ? OR created < ?"), (seen_before, created_before)
            )
            return int(cur.rowcount or 0)

    def count(self) -> int:
        with self.store.reading() as cur:
            cur.execute("SELECT COUNT(*) FROM web_sessions")
            row: Any = cur.fetchone()
        return int(row[0])
