"""The audit recorder: a repository write hook for writes, a queue and one sealing thread for everything else.

Writes stage their AuditEvent inside the write transaction (`on_write_many`), so data and audit commit together.
Reads, searches and refusals are recorded durably before they are answered (with `sync_reads`): on SQLite the event
loop appends their events to its process's journal and syncs it, and the sealing thread folds the journal into the
chain; on PostgreSQL the sealing thread commits each batch to `audit_pending` (a group commit) and chains what is
staged shortly after. Either way nothing is shown without a durable record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from sharedcare.audit.events import AuditActor, AuditRecord, build
from sharedcare.audit.journal import Journal, read_lines
from sharedcare.audit.log import AuditLog
from sharedcare.types import StoredResource

log = logging.getLogger("sharedcare.audit")
WRITE_KINDS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
WRITE_ACTIONS = {"POST": "C", "PUT": "U", "PATCH": "U", "DELETE": "D"}
FOLD_SECONDS = 0.05  # journaled read events reach the chain within this (sooner when asked, e.g. by an audit search)
FOLD_EVENTS = 2000  # or once this many are waiting


class AuditUnavailable(RuntimeError):
    """The audit trail could not be written; the caller must not show what it was about to show."""


@dataclass
class _Job:
    """One queued record; a thread waits in `wait()`, an event loop awaits `confirmed()`. Both are told under the
    trail's condition lock (`finish`); a thread's Event is made only when a thread does wait (most records are
    reads awaited on an event loop, and an Event costs a Condition each)."""

    trail: AuditTrail
    record: AuditRecord | None
    finished: bool = False
    event: threading.Event | None = None
    error: BaseException | None = None
    waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = field(default_factory=list)

    def finish(self) -> None:
        """Mark it committed (or failed); the caller holds the trail's condition lock."""
        self.finished = True
        if self.event is not None:
            self.event.set()

    def wait_finished(self, timeout: float) -> bool:
        with self.trail._cond:
            if self.finished:
                return True
            if self.event is None:
                self.event = threading.Event()
            event = self.event
        return event.wait(timeout)

    def wait(self) -> None:
        """Return once the record is committed (a thread's wait)."""
        AuditTrail._wait(self)

    async def confirmed(self) -> None:
        """Return once the record is committed (without holding a thread while the group commit runs)."""
        future: asyncio.Future[None] | None = None
        with self.trail._cond:
            if not self.finished:
                loop = asyncio.get_running_loop()
                future = loop.create_future()
                self.waiters.append((loop, future))
        if future is not None:
            try:
                await asyncio.wait_for(future, timeout=60)
            except TimeoutError:
                raise AuditUnavailable("The audit trail did not confirm the record in time") from None
        if self.error is not None:
            raise AuditUnavailable("The audit trail could not be written") from self.error


class AuditTrail:
    def __init__(
        self,
        store: Any,
        log_: AuditLog,
        *,
        context: Callable[[], Any],
        internal_actor: AuditActor,
        sync_reads: bool = True,
        enrich: Callable[[Any, AuditRecord], None] | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.store, self.log, self.enrich = store, log_, enrich
        self.journal = journal  # SQLite: queued events are journaled, answered, then folded into the chain
        self._unfolded: list[tuple[dict[str, Any], bytes]] = []  # journaled, not yet in the chain
        self._unfolded_since = 0.0
        self._journal_lock = threading.Lock()  # appends (event loop, sealing thread) and rotation
        self._loop_jobs: dict[asyncio.AbstractEventLoop, list[_Job]] = {}  # each loop's records, journaled by it
        self._staged_since: float | None = None  # PostgreSQL: read events committed to audit_pending, not chained
        # SQLite runs one writer at a time anyway: a write seals its own events into the chain in its transaction
        # (no staging, no second transaction). Concurrent PostgreSQL writers stage them for the sealing thread, so
        # they do not queue on the chain lock.
        self.seal_inline = store.dialect.name == "sqlite"
        self.context, self.internal_actor, self.sync_reads = context, internal_actor, sync_reads
        self._jobs: list[_Job] = []
        self._cond = threading.Condition()
        self._dirty = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="sharedcare-audit", daemon=True)
        self._thread.start()

    # --- writes: inside the transaction -------------------------------------------------------------------
    @property
    def write_hook(self) -> WriteAudit:
        """The repository write hook: one event per write, or per patient and action for a batch."""
        return WriteAudit(self)

    def on_write_many(self, txn: Any, written: Sequence[tuple[StoredResource, dict[str, Any] | None]]) -> None:
        """Stage the AuditEvents of saved versions: versions that touch the same patients with the same action
        share one event listing them all, so a bulk load is fully audited without an event per resource, and
        each patient's events name only that patient's resources."""
        ctx = self.context()
        actor = ctx.actor if ctx is not None else self.internal_actor
        cur = txn.cur
        patients = self._patients_of(cur, [(s.type, s.id) for s, _ in written])
        groups: dict[tuple[str, str, frozenset[str]], list[str]] = {}
        for stored, _ in written:
            kind = WRITE_KINDS.get(stored.method, "update")
            action = "C" if stored.version == 1 and stored.method != "DELETE" else WRITE_ACTIONS[stored.method]
            key = (kind, action, frozenset(patients.get((stored.type, stored.id), ())))
            groups.setdefault(key, []).append(f"{stored.type}/{stored.id}/_history/{stored.version}")
        events = []
        for (kind, action, who), entities in groups.items():
            record = AuditRecord(
                actor=actor,
                request_id=ctx.request_id if ctx is not None else "internal",
                kind=kind,
                action=action,
                outcome="0",
                recorded=txn.now,
                entities=entities,
                patients=set(who),
            )
            if self.enrich is not None:
                self.enrich(cur, record)  # e.g. the break-glass reason that justified this write
            events.append(build(record))
        self.write_in(cur, events, txn)
        if ctx is not None:
            ctx.writes.extend(stored for stored, _ in written)

    def write_in(self, cur: Any, events: Sequence[dict[str, Any]], txn: Any = None) -> None:
        """Events that must commit with the caller's transaction: sealed in it, or staged for the sealing thread.
        Given the store transaction, the head is signed once, just before it commits, however many writes it holds."""
        if self.seal_inline:
            self.log.seal_in(cur, events, sign=txn is None)
            if txn is not None:
                txn.before_commit("audit-head", lambda: self.log.sign_head(cur))
        else:
            self.log.stage_in(cur, events)
            self._dirty = True  # sealed by the next cycle; `seal_soon()` once the transaction has committed

    # --- everything else: queued -----------------------------------------------------------------------------
    def record(self, record: AuditRecord, *, wait: bool | None = None) -> _Job:
        """Queue a record for the next group commit; with `wait`, return once it is committed (otherwise the
        caller may await the returned job's `confirmed()`)."""
        job = _Job(self, record)
        if wait is False and self.sync_reads and self.journal is not None and not self._closed:
            loop = _running_loop()
            if loop is not None:  # journaled by this event loop itself, once this round of callbacks is done
                batch = self._loop_jobs.setdefault(loop, [])
                batch.append(job)
                if len(batch) == 1:
                    loop.call_soon(self._journal_loop_batch, loop)
                return job
        with self._cond:
            if self._closed:
                self._write_now([job])
                return job
            self._jobs.append(job)
            self._cond.notify()
        if self.sync_reads if wait is None else wait:
            self._wait(job)
        return job

    def seal_soon(self) -> None:
        """Wake the sealing thread for events staged by writes (nothing to do when writes seal their own)."""
        if self.seal_inline:
            return
        with self._cond:
            self._dirty = True
            self._cond.notify()

    def flush(self) -> None:
        """Return once everything recorded so far is sealed into the chain."""
        job = _Job(self, None)
        with self._cond:
            if self._closed:
                self._write_now([job])
                return
            self._jobs.append(job)
            self._dirty = True
            self._cond.notify()
        self._wait(job)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=30)

    @staticmethod
    def _wait(job: _Job) -> None:
        if not job.wait_finished(timeout=60):
            raise AuditUnavailable("The audit trail did not confirm the record in time")
        if job.error is not None:
            raise AuditUnavailable("The audit trail could not be written") from job.error

    # --- the sealing thread -------------------------------------------------------------------------------
    def _run(self) -> None:
        if self.journal is not None:
            self._fold_orphans()
        while True:
            with self._cond:
                if not self._jobs and not self._dirty and not self._closed:
                    self._cond.wait(timeout=self._fold_wait())
                jobs, self._jobs = self._jobs, []
                dirty, self._dirty = self._dirty, False
                closed = self._closed
            if self.journal is None:
                self._stage_or_seal(jobs, dirty)
            else:
                self._journal_now(jobs)
            if closed:
                with self._cond:
                    remaining, self._jobs = self._jobs, []
                if self.journal is None:
                    self._write_now(remaining)
                else:
                    self._journal_now(remaining, fold=True)
                    self.journal.close()
                return

    def _stage_or_seal(self, jobs: list[_Job], dirty: bool) -> None:
        """PostgreSQL: records are staged and released; the chain takes what is staged when a flush asks, when
        writes staged events (`dirty`), or once the oldest staged read is FOLD_SECONDS old."""
        records = [j for j in jobs if j.record is not None]
        flushes = [j for j in jobs if j.record is None]
        if records:
            self._stage_now(records)
        due = self._staged_since is not None and time.monotonic() - self._staged_since >= FOLD_SECONDS
        if flushes or dirty or due:
            self._staged_since = None
            self._write_now(flushes)

    def _stage_now(self, jobs: list[_Job]) -> None:
        """PostgreSQL: commit the records' events to `audit_pending`, then release their requests. Why not seal them
        at once: sealing holds the chain's lock through its commit, so the server processes took turns, each commit
        with about eight round trips; staging takes no lock, and concurrent commits share their WAL flush. The
        events are durable in the database either way."""
        if self._commit_events(jobs, self.log.stage_in) and self._staged_since is None:
            self._staged_since = time.monotonic()
        self._release(jobs)

    def _fold_wait(self) -> float:
        """How long the sealing thread may sleep: until the oldest journaled (or staged) event is due in the chain."""
        if self.journal is None:
            if self._staged_since is None:
                return 1.0
            return max(0.0, self._staged_since + FOLD_SECONDS - time.monotonic())
        with self._journal_lock:
            if not self._unfolded:
                return 1.0
            return max(0.0, self._unfolded_since + FOLD_SECONDS - time.monotonic())

    def _write_now(self, jobs: list[_Job]) -> None:
        """Events sealed into the chain in one transaction, then their requests released (PostgreSQL)."""
        self._commit_events(jobs, self.log.seal_in)
        self._release(jobs)

    def _commit_events(self, jobs: list[_Job], put: Callable[[Any, list[dict[str, Any]]], Any]) -> bool:
        """Build the records' events (resolving patients) and `put` them (stage or seal) in one transaction; False,
        with the error on every job, if that failed."""
        try:
            with self.store.writing() as cur:
                records = [j.record for j in jobs if j.record is not None]
                put(cur, [build(r) for r in self._resolve_all(cur, records)])
        except Exception as exc:  # reported to every waiting request; the trail must not fail silently
            log.exception("audit trail write failed")
            for j in jobs:
                j.error = exc
            return False
        return True

    def _journal_loop_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the event loop: journal the records its requests made in this round, then release them. Doing it here
        rather than in the sealing thread saves two hand-overs of the interpreter lock per batch. (A read is only
        answered once this has run, so a flush need not wait for records still queued here.)"""
        jobs = self._loop_jobs.pop(loop, [])
        self._journal_jobs(jobs)
        self._release(jobs)

    def _journal_now(self, jobs: list[_Job], *, fold: bool = False) -> None:
        """In the sealing thread: journal queued records and release them; fold the journal into the chain when it
        is due, when asked (`flush`), or at close."""
        records = [j for j in jobs if j.record is not None]
        self._journal_jobs(records)
        self._release(records)
        flushes = [j for j in jobs if j.record is None]
        if fold or flushes or self._fold_due():
            error = self._fold()
            for j in flushes:
                j.error = error
        self._release(flushes)

    def _journal_jobs(self, jobs: list[_Job]) -> None:
        """Build the records' events (resolving patients), append them to the journal and sync it."""
        assert self.journal is not None
        if not jobs:
            return
        try:
            with self.store.reading() as cur:
                events = [build(r) for r in self._resolve_all(cur, [j.record for j in jobs])]  # type: ignore[misc]
            encoded = [(e, orjson.dumps(e)) for e in events]
            with self._journal_lock:
                self.journal.append([body for _, body in encoded])
                first = not self._unfolded
                if first:
                    self._unfolded_since = time.monotonic()
                self._unfolded += encoded
        except Exception as exc:  # reported to every waiting request: nothing is shown unrecorded
            log.exception("audit journal write failed")
            for j in jobs:
                j.error = exc
            return
        if first:
            with self._cond:
                self._cond.notify()  # the sealing thread folds them in due course

    def _fold_due(self) -> bool:
        with self._journal_lock:
            return bool(self._unfolded) and (
                len(self._unfolded) >= FOLD_EVENTS or time.monotonic() - self._unfolded_since >= FOLD_SECONDS
            )

    def _fold(self) -> BaseException | None:
        """Chain what is journaled in one transaction. The journal moves to a new file first, so appends go on
        meanwhile; the old file is deleted once its events are committed."""
        assert self.journal is not None
        with self._journal_lock:
            if not self._unfolded:
                return None
            batch, self._unfolded = self._unfolded, []
            done = self.journal.rotate()
        try:
            with self.store.writing() as cur:
                self.log.seal_in(cur, encoded=batch)
        except Exception as exc:  # back in front of the queue, its file kept: the next fold tries again
            log.exception("audit chain fold failed")
            with self._journal_lock:
                self._unfolded = batch + self._unfolded
                self._unfolded_since = time.monotonic()
                self.journal.keep(done)
            return exc
        self.journal.discard(done)
        return None

    def _fold_orphans(self) -> None:
        """Chain what processes that died had journaled but not yet folded (each event once)."""
        assert self.journal is not None
        for path in self.journal.orphans():
            encoded = _parsed(read_lines(path), path.name)
            try:
                with self.store.writing() as cur:
                    fresh = self.log.unchained(cur, encoded)
                    self.log.seal_in(cur, encoded=fresh)
            except Exception:
                log.exception("audit journal %s could not be folded; left for the next start", path.name)
                continue
            log.warning("folded %d audit events journaled by a stopped process (%s)", len(fresh), path.name)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _release(self, jobs: list[_Job]) -> None:
        woken: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        with self._cond:
            for j in jobs:
                j.finish()
                for loop, future in j.waiters:
                    woken.setdefault(loop, []).append(future)
        here = _running_loop()
        for loop, futures in woken.items():  # one wake-up per event loop for the whole group
            if loop is here:
                _resolve(futures)
                continue
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting there any more
                loop.call_soon_threadsafe(_resolve, futures)

    def _resolve_all(self, cur: Any, records: list[AuditRecord]) -> list[AuditRecord]:
        """Add to each record the resources a response Bundle showed, the patients of every resource involved (in one
        lookup per type for the batch), and (through `enrich`) facts such as the break-glass reason that justified
        the access."""
        keys: list[list[tuple[str, str]]] = []
        for record in records:
            if record.response is not None:
                record.entities = [*record.entities, *_bundle_refs(record.response)]
                record.response = None
            keys.append([(p[0], p[1]) for e in record.entities if len(p := e.split("/")) >= 2])
        found = self._patients_of(cur, {k for ks in keys for k in ks})
        for record, ks in zip(records, keys, strict=True):
            record.patients = record.patients.union(*(found.get(k, ()) for k in ks))
            if self.enrich is not None:
                self.enrich(cur, record)
        return records

    def _patients_of(self, cur: Any, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
        """The patients of each resource: its Patient compartments now and every one it was ever in."""
        by_type: dict[str, list[str]] = {}
        out: dict[tuple[str, str], set[str]] = {}
        for type, id in keys:
            if type == "Patient":
                out[(type, id)] = {id}
            else:
                by_type.setdefault(type, []).append(id)
        d = self.store.dialect
        for type, ids in by_type.items():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                cur.execute(
                    d.sql(
                        "SELECT r.id, c.comp_id FROM resources r JOIN compartment c ON c.rid = r.rid "
                        f"WHERE r.type = ? AND r.id IN ({marks}) AND c.comp_type = 'Patient' "
                        "UNION ALL SELECT r.id, m.patient FROM resources r JOIN access_member m ON m.rid = r.rid "
                        f"WHERE r.type = ? AND r.id IN ({marks})"
                    ),
                    [type, *chunk, type, *chunk],
                )
                for id, patient in cur.fetchall():
                    out.setdefault((type, id), set()).add(patient)
        return out


class WriteAudit:
    """The trail as a repository write hook (`many` for batches)."""

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    def __call__(self, txn: Any, stored: StoredResource, resource: dict[str, Any] | None) -> None:
        self.trail.on_write_many(txn, [(stored, resource)])

    def many(self, txn: Any, written: Sequence[tuple[StoredResource, dict[str, Any] | None]]) -> None:
        self.trail.on_write_many(txn, written)


def _parsed(lines: list[bytes], name: str) -> list[tuple[dict[str, Any], bytes]]:
    """A journal's events. A line that is not one (bytes of a write that failed half-way, then the next event after
    them) was never acknowledged as written: it is reported and skipped, and the rest is folded."""
    out = []
    for line in lines:
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            log.error("audit journal %s: skipped a line that is not an event (%d bytes)", name, len(line))
            continue
        if isinstance(event, dict) and isinstance(event.get("id"), str):
            out.append((event, line))
    return out


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _resolve(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


def _bundle_refs(body: bytes) -> list[str]:
    try:
        bundle = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    out = []
    for entry in bundle.get("entry") or []:
        res = entry.get("resource") or {}
        if res.get("resourceType") and res.get("id") and res.get("resourceType") != "OperationOutcome":
            version = (res.get("meta") or {}).get("versionId")
            ref = f"{res['resourceType']}/{res['id']}"
            out.append(f"{ref}/_history/{version}" if version else ref)
    return out
