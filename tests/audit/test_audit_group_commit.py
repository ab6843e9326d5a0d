"""Synchronous read audit is group-committed: concurrent readers share one journal write and fsync per batch
(SQLite; the events then reach the hash chain in larger folds), and each read returns only once its own event is
on disk."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
from support.security import operator_token, secure_settings, token

from sharedcare.app import build
from sharedcare.types import FhirRequest

READERS, READS = 8, 25


def test_concurrent_read_audits_share_commits(tmp_path: Path) -> None:
    server = build(secure_settings(f"sqlite:///{tmp_path / 'g.db'}", audit_sync_reads=True))
    try:
        security = server.security
        assert security is not None and security.boundary is not None
        boundary, trail = security.boundary, security.trail

        def call(actor: Any, method: str, path: str, body: Any = None) -> int:
            req = FhirRequest(method, path.split("/"), [], orjson.dumps(body) if body else None,
                              {"content-type": "application/fhir+json"}, "http://t/fhir", body, actor)
            resp = boundary.handle_http(req)
            if resp.pending_audit is not None:  # as the HTTP edge does, before it sends anything
                resp.pending_audit.wait()
            return resp.status

        op = security.tokens.actor(operator_token(server))
        patient = {"resourceType": "Patient", "id": "p1", "generalPractitioner": [{"reference": "Organization/A1"}]}
        assert call(op, "PUT", "Patient/p1", patient) in (200, 201)
        doc = security.tokens.actor(token(server, role="clinician", org="A1", subject="doc"))
        trail.flush()
        batches: list[int] = []
        journal = trail.journal
        assert journal is not None
        append = journal.append

        def counting(lines: list[bytes]) -> None:
            batches.append(len(lines))
            append(lines)

        journal.append = counting  # type: ignore[method-assign]
        errors: list[int] = []

        def reader() -> None:
            for _ in range(READS):
                status = call(doc, "GET", "Patient/p1")
                if status != 200:
                    errors.append(status)

        threads = [threading.Thread(target=reader) for _ in range(READERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        events = READERS * READS
        assert sum(batches) >= events  # every read's event was written before its read returned
        commits = len([b for b in batches if b])
        assert commits < events * 0.75, (commits, events)  # shared: far fewer syncs than events
        trail.flush()  # folded into the chain: all there, and the chain holds together
        with server.store.reading() as cur:
            cur.execute("SELECT COUNT(*) FROM audit_index WHERE kind = 'subtype' AND value = 'read'")
            assert cur.fetchone()[0] >= events
            assert server.security.audit.verify(cur).ok
    finally:
        server.close()


def test_a_read_is_not_sent_before_its_audit_record_is_committed(tmp_path: Path) -> None:
    """The HTTP edge awaits the read's audit record (without holding a thread): while the trail cannot commit,
    the response is held back; once it commits, the response goes out."""
    from starlette.testclient import TestClient

    server = build(secure_settings(f"sqlite:///{tmp_path / 'h.db'}", audit_sync_reads=True))
    try:
        security = server.security
        assert security is not None
        trail = security.trail
        with TestClient(server.asgi) as http:
            headers = {"Authorization": f"Bearer {operator_token(server)}"}
            patient = {"resourceType": "Patient", "id": "p1"}
            assert http.put("/fhir/Patient/p1", json=patient, headers=headers).is_success
            trail.flush()
            release = threading.Event()
            assert trail.journal is not None
            append = trail.journal.append

            def held(lines: list[bytes]) -> None:
                release.wait(30)
                append(lines)

            trail.journal.append = held  # type: ignore[method-assign]
            statuses: list[int] = []

            def read() -> None:
                statuses.append(http.get("/fhir/Patient/p1", headers=headers).status_code)

            reader = threading.Thread(target=read)
            reader.start()
            reader.join(0.5)
            assert reader.is_alive() and not statuses  # held back: its audit record is not committed yet
            release.set()
            reader.join(30)
            assert statuses == [200]
    finally:
        server.close()


def test_postgresql_reads_are_staged_then_chained(pg_url: str) -> None:
    """PostgreSQL: a read's event is committed to `audit_pending` before the read returns (no chain lock, so the
    server's processes commit side by side); the chain takes it within FOLD_SECONDS, or at once when asked, and
    every staged event is chained exactly once."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    server = build(secure_settings(pg_url, audit_sync_reads=True))
    try:
        security = server.security
        assert security is not None and security.boundary is not None
        boundary, trail = security.boundary, security.trail
        op = security.tokens.actor(operator_token(server))
        body = {"resourceType": "Patient", "id": "p1"}
        put = FhirRequest("PUT", ["Patient", "p1"], [], orjson.dumps(body), {"content-type": "application/fhir+json"},
                          "http://t/fhir", body, op)
        assert boundary.handle_http(put).status in (200, 201)
        trail.flush()
        sealed: list[int] = []
        seal_in = trail.log.seal_in

        def counting(cur: Any, *a: Any, **k: Any) -> int:
            n = seal_in(cur, *a, **k)
            sealed.append(n)
            return n

        trail.log.seal_in = counting  # type: ignore[method-assign]
        errors: list[int] = []

        def reader() -> None:
            for _ in range(READS):
                resp = boundary.handle_http(FhirRequest("GET", ["Patient", "p1"], [], None, {}, "http://t/fhir",
                                                        None, op))
                assert resp.pending_audit is not None
                resp.pending_audit.wait()
                with server.store.reading() as cur:  # durable before the read is shown: staged or chained
                    cur.execute("SELECT COUNT(*) FROM audit_pending")
                    staged = cur.fetchone()[0]
                if resp.status != 200 or (staged == 0 and not sealed):
                    errors.append(resp.status)

        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        trail.flush()
        with server.store.reading() as cur:
            cur.execute("SELECT COUNT(*) FROM audit_pending")
            assert cur.fetchone()[0] == 0
            cur.execute("SELECT COUNT(*) FROM audit_index WHERE kind = 'subtype' AND value = 'read'")
            assert cur.fetchone()[0] == 4 * READS  # each once
            assert security.audit.verify(cur).ok
        assert sum(sealed) == 4 * READS and len(sealed) < 4 * READS  # chained in batches, not read by read
    finally:
        server.close()
