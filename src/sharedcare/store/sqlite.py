"""SQLite store: a WAL file, one serialised writer connection, a reader connection per thread.

Writes run one at a time under `BEGIN IMMEDIATE`, so a conditional create's check-then-insert cannot race
another writer. Readers never block the writer (WAL) and see only committed data.

Several server processes may share the file. SQLite makes a writer that finds the file locked poll with growing
sleeps (up to 100 ms), so writers of different processes would mostly wait for nothing; they queue on an exclusive
`flock` of a side file instead (`<db>-wlock`), which wakes the next one as soon as the lock is let go.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

from sharedcare.store.schema import SCHEMA_VERSION, SQLITE
from sharedcare.store.searchsql import ConditionCompiler
from sharedcare.store.sqlstore import SqlStore


class SQLiteStore(SqlStore):
    dialect = SQLITE

    def __init__(self, path: str, conditions: ConditionCompiler, *, synchronous: str = "FULL") -> None:
        super().__init__(conditions)
        self.path = path
        self._synchronous = synchronous
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._lock_fd = _open_lock_file(path)
        self._writer = self._connect()
        with self._write_lock, self._process_lock():
            self._writer.execute("BEGIN IMMEDIATE")
            cur = self._writer.cursor()
            self.create_schema(cur)
            cur.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self._writer.execute("COMMIT")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA mmap_size=268435456")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextlib.contextmanager
    def reading(self) -> Iterator[Any]:
        """A consistent snapshot for the duration of the block (one read transaction)."""
        conn = self._reader()
        conn.execute("BEGIN")
        cur = conn.cursor()
        try:
            yield cur
        finally:
            cur.close()
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def _process_lock(self) -> Iterator[None]:
        """Exclusive among the processes sharing the file (a no-op for an in-memory database)."""
        if self._lock_fd is None:
            yield
            return
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def writing(self) -> Iterator[Any]:
        with self._write_lock, self._process_lock():
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.cursor()
            try:
                yield cur
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
            finally:
                cur.close()

    def lock_key(self, cur: Any, key: str) -> None:
        """Nothing to do: SQLite writers are already serialised by `BEGIN IMMEDIATE`."""

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._readers.clear()
        with self._write_lock:
            self._writer.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


def _open_lock_file(path: str) -> int | None:
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return os.open(f"{path}-wlock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
