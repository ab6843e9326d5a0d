"""`sharedcare check` passes on a sound store and names each kind of damage it is there to find."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from sharedcare.app import Server, build
from sharedcare.cli import main
from sharedcare.resilience.check import check_store
from sharedcare.settings import Settings

OBS = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Heart rate"},
    "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    "effectiveDateTime": "2024-05-01T10:00:00Z",
}


def _seed(server: Server) -> dict[str, str]:
    pid = server.repo.create("Patient", {"resourceType": "Patient", "name": [{"family": "Check"}]}).stored.id
    oid = server.repo.create("Observation", {**OBS, "subject": {"reference": f"Patient/{pid}"}}).stored.id
    server.repo.update("Observation", oid, {**OBS, "id": oid, "status": "amended"})
    gone = server.repo.create("Patient", {"resourceType": "Patient", "name": [{"family": "Gone"}]}).stored.id
    server.repo.delete("Patient", gone)
    return {"patient": pid, "observation": oid, "gone": gone}


def _rid(cur: Any, server: Server, rtype: str, id: str) -> int:
    cur.execute(server.store.dialect.sql("SELECT rid FROM resources WHERE type = ? AND id = ?"), (rtype, id))
    return int(cur.fetchone()[0])


def _sql(server: Server, sql: str, *args: Any) -> None:
    with server.store.writing() as cur:
        cur.execute(server.store.dialect.sql(sql), args)


Damage = Callable[[Server, dict[str, str], int, int], None]

DAMAGE: dict[str, tuple[Damage, str]] = {
    "bytes with a wrong versionId": (
        lambda s, ids, obs, gone: _sql(
            s,
            "UPDATE versions SET body = ? WHERE rid = ? AND version = 1",
            b'{"resourceType":"Observation","id":"' + ids["observation"].encode() + b'","meta":{"versionId":"7"}}',
            obs,
        ),
        "meta.versionId",
    ),
    "bytes that are not JSON": (
        lambda s, ids, obs, gone: _sql(s, "UPDATE versions SET body = ? WHERE rid = ? AND version = 2", b"{oops", obs),
        "not valid JSON",
    ),
    "a missing index row": (
        lambda s, ids, obs, gone: _sql(s, "DELETE FROM idx_token WHERE rid = ? AND param = 'code'", obs),
        "index rows in idx_token",
    ),
    "index rows for a deleted resource": (
        lambda s, ids, obs, gone: _sql(
            s, "INSERT INTO idx_string (rid, type, param, value, exact) VALUES (?, 'Patient', 'family', 'x', 'x')", gone
        ),
        "index rows in idx_string",
    ),
    "a gap in the versions": (
        lambda s, ids, obs, gone: _sql(s, "UPDATE versions SET version = 3 WHERE rid = ? AND version = 2", obs),
        "not 1..2",
    ),
    "a version without a feed position": (
        lambda s, ids, obs, gone: _sql(
            s, "DELETE FROM changes WHERE seq = (SELECT seq FROM versions WHERE rid = ? AND version = 1)", obs
        ),
        "no feed position",
    ),
    "resources pointing at an old version": (
        lambda s, ids, obs, gone: _sql(s, "UPDATE resources SET version = 1 WHERE rid = ?", obs),
        "resources row says version 1",
    ),
}


def test_a_sound_store_passes(server: Server) -> None:
    _seed(server)
    report = check_store(server.store, server.repo.indexer)
    assert report.ok, report.problems
    assert report.resources >= 3 and report.versions >= 5 and report.indexed >= 2


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_check_finds_damage(server: Server, damage: str) -> None:
    ids = _seed(server)
    with server.store.reading() as cur:
        obs, gone = _rid(cur, server, "Observation", ids["observation"]), _rid(cur, server, "Patient", ids["gone"])
    harm, expected = DAMAGE[damage]
    harm(server, ids, obs, gone)
    report = check_store(server.store, server.repo.indexer)
    assert not report.ok
    assert any(expected in p for p in report.problems), report.problems
    assert not any("Check" in p or "Gone" in p for p in report.problems), "problems must not quote content"


def test_check_command_exit_status(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    server = build(Settings(db=url))
    ids = _seed(server)
    server.close()
    runner = CliRunner()
    result = runner.invoke(main, ["check", "--db", url])
    assert result.exit_code == 0 and '"ok": true' in result.output
    server = build(Settings(db=url))
    with server.store.writing() as cur:
        cur.execute("DELETE FROM idx_token WHERE rid = ?", (_rid(cur, server, "Observation", ids["observation"]),))
    server.close()
    result = runner.invoke(main, ["check", "--db", url])
    assert result.exit_code == 1 and "idx_token" in result.output
    assert runner.invoke(main, ["check", "--no-index", "--db", url]).exit_code == 0
