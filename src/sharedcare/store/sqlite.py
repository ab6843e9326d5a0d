"""SQLite store: a WAL file, one serialised writer connection, a reader connection per thread.

Writes run one at a time under `BEGIN IMMEDIATE`, so a conditional create's check-then-insert cannot race
another writer. Readers never block the writer (WAL) and see only committed data.

Several server processes may share the file. SQLite makes a writer that finds the file locked poll with growing
sleeps (up to 100 ms), so writers of different processes would mostly wait for nothing; they queue on an exclusive
`flock` of a side file instead (`<db>-wlock`), which wakes the next one as soon as the lock is let go.

Group commit: each commit waits for an fsync of the WAL (`synchronous=FULL`), some 10-20 ms, while holding the write
lock. Units of work (`transact`) that arrive while another holds the lock queue up, and whichever thread takes the lock
next runs every queued unit in one SQLite transaction, each in a savepoint of its own (one failing undoes only its own
writes, as if it had run alone), then commits them with one fsync. Every caller still returns only once its unit is
committed. Each unit runs in its caller's context variables (who is asking, deferred hooks) and has its own `now`.

Checkpoints: by default the committing connection copies the WAL back into the database (and syncs it) whenever the
WAL passes 1,000 pages, inside its commit and so under the write lock. The writer leaves that to a helper thread with
a connection of its own, which checkpoints without blocking writers (PASSIVE) a few times a second. Under steady
writing such a checkpoint never finds the WAL fully copied when the next writer begins, so SQLite never starts the
WAL over and the file would grow without end: past `WAL_LIMIT` the helper takes the write lock for a moment and
runs a RESTART checkpoint, after which the next commit writes from the start of the file again.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from sharedcare.store.schema import SCHEMA_VERSION, SQLITE
from sharedcare.store.searchsql import ConditionCompiler
from sharedcare.store.sqlstore import SqlStore, SqlTxn, utc_now

T = TypeVar("T")
CHECKPOINT_EVERY = 0.25  # seconds between background WAL checkpoints
WAL_LIMIT = 64 * 1024 * 1024  # WAL bytes past which the checkpointer starts the WAL over (under the write lock)
RESTART_WAIT_MS = 2000  # longest a RESTART checkpoint waits for readers of old snapshots
GROUP_MAX = 8  # units committed together at most (each waits for those before it in the group)
WRITER_WAIT = 0.05  # longest a preparing thread defers to the writer at one time (seconds)


@dataclass(eq=False)
class _Unit:
    """One caller's unit of work, queued for the next group."""

    work: Callable[[SqlTxn], Any]
    context: contextvars.Context
    large: bool = False  # runs in a group of its own
    done: bool = False
    value: Any = None
    error: BaseException | None = None


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
        self._queue: list[_Unit] = []
        self._queue_lock = threading.Lock()
        self._writer_idle = threading.Event()
        self._writer_idle.set()
        self._lock_fd = _open_lock_file(path)
        self._writer = self._connect()
        # The writer's statement journals in memory: on disk, an INSERT ... SELECT (how index rows are written)
        # copied every page it first touched into a temporary file, as many writes as the WAL itself.
        self._writer.execute("PRAGMA temp_store=MEMORY")
        with self._write_lock, self._process_lock():
            self._writer.execute("BEGIN IMMEDIATE")
            cur = self._writer.cursor()
            self.create_schema(cur)
            cur.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self._writer.execute("COMMIT")
        self._checkpointer = _Checkpointer(path, self._connect, self._exclusive) if self._lock_fd is not None else None
        if self._checkpointer is not None:
            self._writer.execute("PRAGMA wal_autocheckpoint=0")

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
    def _exclusive(self) -> Iterator[None]:
        """No writer of this or any other process runs inside the block."""
        with self._write_lock, self._process_lock():
            yield

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

    def transact(self, work: Callable[[SqlTxn], T], *, large: bool = False) -> T:
        unit = _Unit(work, contextvars.copy_context(), large)
        with self._queue_lock:
            self._queue.append(unit)
        with self._write_lock:
            while not unit.done:  # not yet run by the thread that held the lock before
                self._run_group()
        if unit.error is not None:
            raise unit.error
        return unit.value  # type: ignore[no-any-return]

    def _run_group(self) -> None:
        """Run the queued units (at most GROUP_MAX) in one transaction and commit them together. A large unit runs
        alone: it then needs no savepoint (see `_run_units`), whose journal, kept in memory, every statement after
        the savepoint's would otherwise walk from its start."""
        with self._queue_lock:
            n = next((k for k, u in enumerate(self._queue[:GROUP_MAX]) if u.large), GROUP_MAX)
            n = max(n, 1)  # a large unit at the head runs alone; otherwise the group stops before one
            group, self._queue = self._queue[:n], self._queue[n:]
        conn = self._writer
        with self._process_lock():
            try:
                conn.execute("BEGIN IMMEDIATE")
            except BaseException as exc:  # e.g. locked by a writer outside this program for the whole timeout
                for u in group:
                    u.error, u.done = exc, True
                return
            cur = conn.cursor()
            try:
                self._writer_idle.clear()
                try:
                    ran = self._run_units(conn, cur, group)
                finally:
                    self._writer_idle.set()  # the commit's fsync lets go of the interpreter lock
                if conn.in_transaction:
                    conn.execute("COMMIT")
            except BaseException as exc:  # the commit failed (or a unit was interrupted): nothing was written
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                ran = group
                for u in ran:
                    u.error = u.error or exc
            finally:
                cur.close()
        for u in ran:
            u.done = True

    def _run_units(self, conn: sqlite3.Connection, cur: Any, group: list[_Unit]) -> list[_Unit]:
        """Each unit in its savepoint; the units run, or, if one cost the whole transaction, none (those not yet run
        go back to the head of the queue, the ones run share the failure).

        The first unit runs without one: a failure then rolls back the transaction, which holds nothing else, and
        the others start a new one. Why: while a savepoint is open SQLite copies every page a statement first
        changes into a journal file, as many writes as the WAL itself; most groups are a single unit (a Bundle, an
        import's commit group)."""
        first, *rest = group
        try:
            first.value = first.context.run(_run_unit, first.work, SqlTxn(self, cur, utc_now()))
        except Exception as exc:  # noqa: BLE001 - handed to the unit's own caller
            first.error = exc
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if not rest:
                return group
            try:
                conn.execute("BEGIN IMMEDIATE")
            except BaseException as begin_failed:
                for u in rest:
                    u.error = begin_failed
                return group
        for n, unit in enumerate(rest, start=1):
            cur.execute("SAVEPOINT unit")
            try:
                unit.value = unit.context.run(_run_unit, unit.work, SqlTxn(self, cur, utc_now()))
            except Exception as exc:  # noqa: BLE001 - handed to the unit's own caller
                unit.error = exc
                if not conn.in_transaction:  # SQLite rolled everything back (e.g. disk full)
                    for earlier in group[:n]:
                        earlier.error = earlier.error or exc
                    with self._queue_lock:
                        self._queue[:0] = group[n + 1 :]
                    return group[: n + 1]
                cur.execute("ROLLBACK TO unit")
            cur.execute("RELEASE unit")
        return group

    def yield_to_writer(self, timeout: float = WRITER_WAIT) -> None:
        """Called between pieces of work done outside the write lock (a Bundle's validation, early indexing): while
        a thread of this process runs units under the lock, wait (briefly), rather than contend with it for the
        interpreter lock. Every SQL call releases that lock and the writer must win it back, so with competition the
        lock would be held, and every other writer kept waiting, far longer than the work takes."""
        if not self._writer_idle.is_set():
            self._writer_idle.wait(timeout)

    def lock_key(self, cur: Any, key: str) -> None:
        """Nothing to do: SQLite writers are already serialised by `BEGIN IMMEDIATE`."""

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
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


class _Checkpointer:
    """A daemon thread checkpointing the WAL every `every` seconds from its own connection, and starting it over
    (with `exclusive` held: no writer running) once it has grown past `limit` bytes."""

    def __init__(
        self,
        path: str,
        connect: Callable[[], sqlite3.Connection],
        exclusive: Callable[[], contextlib.AbstractContextManager[None]],
        every: float = CHECKPOINT_EVERY,
        limit: int = WAL_LIMIT,
    ) -> None:
        self._connect, self._exclusive = connect, exclusive
        self._every, self._limit = every, limit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"sqlite-checkpoint {path}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        conn = self._connect()
        conn.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
        try:
            while not self._stop.wait(self._every):
                if self._checkpoint(conn, "PASSIVE") * page > self._limit:  # the log in use, not the file's size
                    with self._exclusive():
                        self._checkpoint(conn, "RESTART")
        finally:
            conn.close()

    @staticmethod
    def _checkpoint(conn: sqlite3.Connection, mode: str) -> int:
        """Run a checkpoint; the number of frames in the WAL (0 when it could not run)."""
        try:
            row = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error:
            return 0
        return int(row[1]) if row and row[1] > 0 else 0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _run_unit(work: Callable[[SqlTxn], T], txn: SqlTxn) -> T:
    result = work(txn)
    txn.finish()
    return result


def _open_lock_file(path: str) -> int | None:
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return os.open(f"{path}-wlock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
