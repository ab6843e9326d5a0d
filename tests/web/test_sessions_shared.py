"""Browser sessions kept in the store: what one server process saves, another (its own connections) finds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sharedcare.access.actor import Actor
from sharedcare.access.scopes import ScopeSet
from sharedcare.fhir.search_parameters import SearchParameterRegistry
from sharedcare.store.searchsql import ConditionCompiler
from sharedcare.store.sqlite import SQLiteStore
from sharedcare.store.web_sessions import SessionTable
from sharedcare.web.sessions import SessionStore


@pytest.fixture
def two_processes(tmp_path: Path):
    registry = SearchParameterRegistry.load()
    stores = [SQLiteStore(str(tmp_path / "s.db"), ConditionCompiler(registry)) for _ in range(2)]
    yield [SessionStore(table=SessionTable(s)) for s in stores]
    for s in stores:
        s.close()


def test_a_signed_in_session_is_known_to_every_process(two_processes: list[SessionStore]) -> None:
    a, b = two_processes
    session = a.new()
    session.username = "gp.smith"
    session.actor = Actor("user", "gp.smith", "gp", "web", organisation="A81001",
                          scopes=ScopeSet.parse("user/*.rs openid"), fhir_user="Practitioner/p1")
    session.actor_expires = time.time() + 600
    session.flash.append(("success", "Signed in"))
    session.data["grants"] = {"p9": {"kind": "break-glass", "reason": "unconscious"}}
    a.save(session)

    seen = b.get(session.id)
    assert seen is not None and seen.signed_in
    assert seen.actor == session.actor and seen.actor.scopes.text() == session.actor.scopes.text()
    assert seen.csrf == session.csrf and seen.check_csrf(session.csrf)
    assert seen.pop_flash() == [("success", "Signed in")]
    assert seen.data["grants"]["p9"]["reason"] == "unconscious"
    b.save(seen)  # the flash was shown: gone for the next page, whichever process serves it
    assert a.get(session.id).flash == []  # type: ignore[union-attr]

    b.end(session.id)  # signing out in one process ends the session everywhere
    assert a.get(session.id) is None


def test_idle_and_old_sessions_end(two_processes: list[SessionStore]) -> None:
    a, b = two_processes
    b.idle_seconds = 60
    session = a.new()
    a.save(session)
    assert b.get(session.id) is not None
    session.seen -= 120  # as if the browser had been away two minutes
    session.stored = None  # changed: written again with the older time
    a.save(session)
    assert b.get(session.id) is None
    assert a.get("no-such-session") is None and a.get(None) is None


def test_the_table_holds_no_usable_session_id(two_processes: list[SessionStore], tmp_path: Path) -> None:
    a, _ = two_processes
    session = a.new()
    a.save(session)
    assert session.id.encode() not in (tmp_path / "s.db").read_bytes() + _wal(tmp_path)


def _wal(tmp_path: Path) -> bytes:
    wal = tmp_path / "s.db-wal"
    return wal.read_bytes() if wal.exists() else b""
