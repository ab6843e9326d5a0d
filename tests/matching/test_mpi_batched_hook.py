"""The matcher's write hook over a batch (bulk import, deferred hooks): fact fingerprints in one statement per
batch, Patients matched one by one in order, with the same outcome as single writes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from conftest import make_patient

from sharedcare.app import Server
from sharedcare.fhir.resource import stamp
from sharedcare.matching.duplicates import fingerprint
from sharedcare.matching.service import MatchHook, MatchService
from sharedcare.resilience.check import check_store
from sharedcare.store.mpi import MpiSql
from sharedcare.types import StoredResource

NHS_A = "9990000018"


def observation(id: str, patient: str, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2024-03-01",
        "valueQuantity": {"value": value, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
    }


def batch() -> list[tuple[dict[str, Any], int]]:
    """(resource, version) in the order a bulk load saves them: one Observation saved twice, with a new value."""
    return [
        (make_patient("A81001", nhs=NHS_A, id="gp"), 1),
        (observation("o1", "gp", 128), 1),
        (make_patient("RX1", nhs=NHS_A, id="trust"), 1),
        (observation("o2", "trust", 131), 1),
        (observation("o1", "gp", 131), 2),
        (make_patient("LA1", id="council"), 1),
    ]


def test_a_batch_writes_prints_at_once_and_links_like_single_writes(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    matcher: MatchService = next(h for h in server.repo.write_hooks if isinstance(h, MatchHook)).service
    statements: list[int] = []
    monkeypatch.setattr(MpiSql, "put_fact", lambda *a, **k: pytest.fail("a batch writes no print one at a time"))
    put_many = MpiSql.put_facts_many
    monkeypatch.setattr(MpiSql, "put_facts_many", lambda self, *a: statements.append(1) or put_many(self, *a))

    server.store.transact(lambda txn: save_batch(server, txn))
    assert statements == [1]
    with matcher.mpi.reading() as sql:
        facts = sql.facts_of([("Observation", "o1"), ("Observation", "o2")])
        persons = {pid: person for pid, person, _, _ in sql.records(["gp", "trust", "council"])}
    assert facts == {("Observation", k): fingerprint(observation(k, "x", 131)) for k in ("o1", "o2")}
    assert len(set(persons.values())) == 1 and len(persons) == 3  # linked as single writes would link them


def save_batch(server: Server, txn: Any) -> None:
    """Save `batch()` in one transaction and run the write hooks once over all of it, as the bulk loader does."""
    written: list[tuple[StoredResource, Any]] = []
    for resource, version in batch():
        stamped, body = stamp(resource, resource["id"], version, txn.now)
        rtype = resource["resourceType"]
        stored = txn.save(rtype, resource["id"], version, "PUT", body, server.repo.indexer.index(stamped))
        written.append((stored, stamped))
    server.repo.run_hooks_many(txn, written)


def persons(server: Server) -> list[tuple[tuple[str, ...], list[tuple[int, str, bytes]]]]:
    """Each Person keyed by its members (ids are random), with its versions (number, method, body without id and
    meta), and how many index rows its current version has."""
    out = []
    sql = server.store.dialect.sql
    with server.store.reading() as cur:
        cur.execute("SELECT rid, id FROM resources WHERE type = 'Person'")
        for rid, pid in cur.fetchall():
            cur.execute(sql("SELECT version, method, body FROM versions WHERE rid = ? ORDER BY version"), (rid,))
            versions = []
            for version, method, body in cur.fetchall():
                person = orjson.loads(bytes(body))
                members = tuple(sorted(link["target"]["reference"] for link in person.get("link", [])))
                person.pop("meta")
                versions.append((version, method, orjson.dumps(person).replace(pid.encode(), b"<id>")))
            cur.execute(sql("SELECT COUNT(*) FROM idx_token WHERE rid = ?"), (rid,))
            out.append((members, versions, cur.fetchone()[0]))
    return sorted(out)


def test_a_batch_saves_persons_as_single_writes_do(server: Server, tmp_path: Any) -> None:
    """Persons made while a batch is matched are written together at its end: the same versions, bodies and index
    rows as single writes make, and a store `check` finds consistent."""
    from support.bulk_data import build_server

    server.store.transact(lambda txn: save_batch(server, txn))
    single = build_server(f"sqlite:///{tmp_path / 'single.db'}")
    try:
        for resource, _ in batch():
            single.repo.update(resource["resourceType"], resource["id"], resource)
        assert persons(server) == persons(single)
    finally:
        single.close()
    found = persons(server)
    assert [len(v) for _, v, _ in found] == [3]  # founded by the first record, joined by the other two
    report = check_store(server.store, server.repo.indexer)
    assert report.ok, report.problems
