"""A second process starting beside a busy PostgreSQL server (an import, a CLI command) takes no table lock for the
schema it finds already there: before, `CREATE INDEX IF NOT EXISTS` waited on the writers' locks and could deadlock
with them (seen as a bulk import dying at start in the crash test)."""

from __future__ import annotations

import threading

import psycopg

from sharedcare.app import build
from sharedcare.settings import Settings
from sharedcare.store.schema import pending_ddl


def _fresh(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def test_pending_ddl_keeps_only_what_is_missing(pg_url: str) -> None:
    _fresh(pg_url)
    server = build(Settings(db=pg_url))
    try:
        d = server.store.dialect
        wanted = [
            "CREATE TABLE IF NOT EXISTS mpi_block (key TEXT)",
            "CREATE INDEX IF NOT EXISTS mpi_block_patient ON mpi_block (patient_id)",
            "CREATE INDEX IF NOT EXISTS not_there_yet ON mpi_block (key)",
            "CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log FOR EACH ROW EXECUTE "
            "FUNCTION audit_append_only()",
        ]
        with server.store.reading() as cur:
            assert pending_ddl(cur, d, wanted) == ["CREATE INDEX IF NOT EXISTS not_there_yet ON mpi_block (key)"]
    finally:
        server.close()


def test_starting_beside_an_open_write_transaction_does_not_wait(pg_url: str) -> None:
    _fresh(pg_url)
    first = build(Settings(db=pg_url))
    try:
        with psycopg.connect(pg_url) as writer:  # a server's writer mid-transaction on the MPI and audit tables
            writer.execute("INSERT INTO mpi_block (key, patient_id) VALUES ('k', 'p')")
            writer.execute("INSERT INTO audit_pending (body) VALUES ('{}')")
            started: list[object] = []
            thread = threading.Thread(target=lambda: started.append(build(Settings(db=pg_url))), daemon=True)
            thread.start()
            thread.join(20)
            assert started, "a second process's start waited on the writer's locks"
            started[0].close()  # type: ignore[attr-defined]
            writer.rollback()
    finally:
        first.close()
