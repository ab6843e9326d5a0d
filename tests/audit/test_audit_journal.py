"""The read-audit journal: a read is answered once its event is synced to the journal; a process that dies before
folding its journal into the chain loses nothing, and a journal folded twice chains each event once."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import orjson
from support.security import operator_token, secure_settings

from sharedcare.app import build
from sharedcare.audit.journal import SUFFIX, read_lines
from sharedcare.types import FhirRequest

READS = 30


def _call(boundary: Any, actor: Any, method: str, path: str, body: Any = None) -> int:
    req = FhirRequest(method, path.split("/"), [], orjson.dumps(body) if body else None,
                      {"content-type": "application/fhir+json"}, "http://t/fhir", body, actor)
    resp = boundary.handle_http(req)
    if resp.pending_audit is not None:
        resp.pending_audit.wait()
    return resp.status


def _reads_in_chain(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM audit_index WHERE kind = 'subtype' AND value = 'read'").fetchone()[0]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_journal_left_by_a_dead_process_is_folded_once(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    first = build(secure_settings(f"sqlite:///{db}", audit_sync_reads=True))
    security = first.security
    assert security is not None and security.boundary is not None and security.trail.journal is not None
    trail = security.trail
    op = security.tokens.actor(operator_token(first))
    assert _call(security.boundary, op, "PUT", "Patient/p1", {"resourceType": "Patient", "id": "p1"}) in (200, 201)
    trail.flush()
    before = _reads_in_chain(db)
    trail._fold = lambda: None  # type: ignore[method-assign]  # as if the process died before folding
    for _ in range(READS):
        assert _call(security.boundary, op, "GET", "Patient/p1") == 200
    journal = trail.journal.path
    assert len(read_lines(journal)) == READS  # every answered read is on disk
    assert _reads_in_chain(db) == before  # but not yet in the chain
    orphan = journal.with_name(f"{_dead_pid()}-1{SUFFIX}")
    journal.rename(orphan)  # the journal of a process that has gone
    spare = tmp_path / "spare"
    shutil.copy(orphan, spare)
    first.close()

    second = build(secure_settings(f"sqlite:///{db}", audit_sync_reads=True))  # folds it on start
    try:
        assert second.security is not None
        second.security.trail.flush()
        assert _reads_in_chain(db) == before + READS
        assert not orphan.exists()
    finally:
        second.close()

    shutil.copy(spare, orphan)  # the same journal again (a crash between the fold's commit and the delete)
    third = build(secure_settings(f"sqlite:///{db}", audit_sync_reads=True))
    try:
        assert third.security is not None
        third.security.trail.flush()
        assert _reads_in_chain(db) == before + READS  # nothing chained twice
        with third.store.reading() as cur:
            assert third.security.audit.verify(cur).ok
    finally:
        third.close()


def test_a_garbled_line_does_not_stop_the_rest_being_folded(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    server = build(secure_settings(f"sqlite:///{db}", audit_sync_reads=True))
    assert server.security is not None and server.security.trail.journal is not None
    server.security.trail.flush()
    before = _reads_in_chain(db)
    folder = server.security.trail.journal.folder
    server.close()
    events = [_read_event(f"r{k}") for k in range(3)]
    garbled = b'{"resourceType":"AuditEvent","id":"half' + _read_event("r-half")  # a failed write
    (folder / f"{_dead_pid()}-2{SUFFIX}").write_bytes(b"\n".join([events[0], garbled, events[1], events[2]]) + b"\n")
    again = build(secure_settings(f"sqlite:///{db}", audit_sync_reads=True))
    try:
        assert again.security is not None
        again.security.trail.flush()
        assert _reads_in_chain(db) == before + 3
        with again.store.reading() as cur:
            assert again.security.audit.verify(cur).ok
    finally:
        again.close()


def _read_event(id: str) -> bytes:
    from sharedcare.access.actor import INTERNAL
    from sharedcare.audit.events import AuditRecord
    from sharedcare.audit.events import build as build_event

    record = AuditRecord(INTERNAL, "req-1", "read", "R", "0", "2026-11-22T10:00:00.000000Z", entities=["Patient/p1"])
    return orjson.dumps({**build_event(record), "id": id})


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / f"1{SUFFIX}"
    path.write_bytes(b'{"id":"a"}\n{"id":"b"}\n{"id":"c", "tr')
    assert read_lines(path) == [b'{"id":"a"}', b'{"id":"b"}']
    assert read_lines(tmp_path / "missing") == []
