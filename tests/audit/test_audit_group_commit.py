"""Synchronous read audit is group-committed: concurrent readers share write transactions (one fsync per batch),
and each read returns only once its own event is sealed."""

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
            return boundary.handle_http(req).status

        op = security.tokens.actor(operator_token(server))
        patient = {"resourceType": "Patient", "id": "p1", "generalPractitioner": [{"reference": "Organization/A1"}]}
        assert call(op, "PUT", "Patient/p1", patient) in (200, 201)
        doc = security.tokens.actor(token(server, role="clinician", org="A1", subject="doc"))
        trail.flush()
        batches: list[int] = []
        write_now = trail._write_now

        def counting(jobs: list[Any]) -> None:
            batches.append(len(jobs))
            write_now(jobs)

        trail._write_now = counting  # type: ignore[method-assign]
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
        assert commits < events * 0.75, (commits, events)  # shared: far fewer transactions than events
        with server.store.reading() as cur:
            assert server.security.audit.verify(cur).ok
    finally:
        server.close()
