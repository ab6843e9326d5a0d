"""The audit trail is append-only and hash-chained: `sharedcare audit verify` detects any change."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient
from support.security import bearer, operator_token, token

from sharedcare.app import Server
from sharedcare.cli import main


def _fill(server: Server, client: TestClient, n: int = 6) -> None:
    op = operator_token(server)
    for i in range(n):
        client.post(
            "/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": f"P{i}"}]}, headers=bearer(op)
        )
    doc = token(server, role="clinician", org="A1")
    client.get("/fhir/Patient", headers=bearer(doc))
    assert server.security is not None
    server.security.trail.flush()


def _verify(server: Server) -> list[str]:
    assert server.security is not None
    with server.store.reading() as cur:
        return server.security.audit.verify(cur).problems


def _tamper(server: Server, *statements: str | tuple[str, list[Any]]) -> None:
    """What someone with write access to the database does: drop the guards, then change rows."""
    pg = server.store.dialect.name == "postgresql"
    with server.store.writing() as cur:
        for table in ("audit_log", "audit_index"):
            if pg:
                cur.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            else:
                cur.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
                cur.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        for stmt in statements:
            sql, args = (stmt, []) if isinstance(stmt, str) else stmt
            cur.execute(server.store.dialect.sql(sql), args)


def _rows(server: Server) -> list[tuple[int, str, bytes]]:
    with server.store.reading() as cur:
        cur.execute("SELECT seq, hash, body FROM audit_log ORDER BY seq")
        return [(int(r[0]), r[1], bytes(r[2])) for r in cur.fetchall()]


def test_an_untouched_trail_verifies(secure_server: Server, secure_client: TestClient) -> None:
    _fill(secure_server, secure_client)
    assert _verify(secure_server) == []
    assert len(_rows(secure_server)) >= 7


def test_the_database_refuses_updates_and_deletes(secure_server: Server, secure_client: TestClient) -> None:
    _fill(secure_server, secure_client, 1)
    for stmt in ("UPDATE audit_log SET recorded = 'x'", "DELETE FROM audit_log", "DELETE FROM audit_index"):
        with pytest.raises(Exception, match="append-only"), secure_server.store.writing() as cur:
            cur.execute(stmt)
    assert _verify(secure_server) == []


def _modify_body(server: Server) -> None:
    seq, _, body = _rows(server)[2]
    event = orjson.loads(body)
    event["outcome"] = "0" if event["outcome"] != "0" else "4"
    _tamper(server, ("UPDATE audit_log SET body = ? WHERE seq = ?", [orjson.dumps(event), seq]))


def _modify_and_rehash(server: Server) -> None:
    rows = _rows(server)
    seq, _, body = rows[2]
    changed = body.replace(b'"action":"C"', b'"action":"R"')
    prev = rows[1][1]
    digest = hashlib.sha256(f"{seq}|{prev}|".encode() + changed).hexdigest()
    _tamper(server, ("UPDATE audit_log SET body = ?, hash = ? WHERE seq = ?", [changed, digest, seq]))


def _delete_middle(server: Server) -> None:
    _tamper(server, "DELETE FROM audit_log WHERE seq = 3", "DELETE FROM audit_index WHERE seq = 3")


def _truncate_tail(server: Server) -> None:
    last = _rows(server)[-1][0]
    _tamper(
        server, f"DELETE FROM audit_log WHERE seq >= {last - 1}", f"DELETE FROM audit_index WHERE seq >= {last - 1}"
    )


def _reorder(server: Server) -> None:
    rows = _rows(server)
    a, b = rows[1][0], rows[2][0]
    _tamper(
        server,
        ("UPDATE audit_log SET seq = -1 WHERE seq = ?", [a]),
        ("UPDATE audit_log SET seq = ? WHERE seq = ?", [a, b]),
        ("UPDATE audit_log SET seq = ? WHERE seq = -1", [b]),
    )


def _hide_a_patient(server: Server) -> None:
    _tamper(server, "DELETE FROM audit_index WHERE kind = 'patient'")


def _rewrite_everything(server: Server) -> None:
    """Recompute the whole chain after a change: only the signed head can tell."""
    rows = _rows(server)
    prev = "0" * 64
    statements: list[str | tuple[str, list[Any]]] = []
    for seq, _, body in rows:
        if seq == 2:
            body = body.replace(b'"outcome":"0"', b'"outcome":"8"')
        digest = hashlib.sha256(f"{seq}|{prev}|".encode() + body).hexdigest()
        statements.append(
            ("UPDATE audit_log SET body = ?, hash = ?, prev_hash = ? WHERE seq = ?", [body, digest, prev, seq])
        )
        prev = digest
    statements.append(("UPDATE audit_state SET value = ? WHERE key = 'head'", [f"{rows[-1][0]}:{prev}"]))
    _tamper(server, *statements)


TAMPERS: dict[str, Callable[[Server], None]] = {
    "modified body": _modify_body,
    "modified body with its hash recomputed": _modify_and_rehash,
    "deleted row": _delete_middle,
    "truncated tail": _truncate_tail,
    "reordered rows": _reorder,
    "search index edited": _hide_a_patient,
    "whole chain rewritten": _rewrite_everything,
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_verify_detects(secure_server: Server, secure_client: TestClient, tamper: str) -> None:
    _fill(secure_server, secure_client)
    assert _verify(secure_server) == []
    TAMPERS[tamper](secure_server)
    problems = _verify(secure_server)
    assert problems, f"{tamper} went unnoticed"


def test_cli_verify_exit_codes(secure_server: Server, secure_client: TestClient) -> None:
    _fill(secure_server, secure_client)
    url = secure_server.settings.db
    ok = CliRunner().invoke(main, ["audit", "verify", "--db", url])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    head = ok.output.split("head ")[1].split()[0]
    _modify_body(secure_server)
    bad = CliRunner().invoke(main, ["audit", "verify", "--db", url, "--anchor", head])
    assert bad.exit_code == 1 and "PROBLEM" in bad.output and "modified" in bad.output
