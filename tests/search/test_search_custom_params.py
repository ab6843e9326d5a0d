"""Custom SearchParameters: posting one starts a reindex job; the parameter is usable once the job is done."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from sharedcare.app import Server
from sharedcare.store import reindex
from sharedcare.store.reindex import Reindexer

FHIR_JSON = {"content-type": "application/fhir+json"}
COLOUR = "http://example.org/fhir/StructureDefinition/favourite-colour"


def colour_param(code: str = "favourite-colour") -> dict:
    return {
        "resourceType": "SearchParameter",
        "url": f"http://example.org/fhir/SearchParameter/{code}",
        "name": "FavouriteColour",
        "status": "active",
        "description": "A patient's favourite colour",
        "code": code,
        "base": ["Patient"],
        "type": "token",
        "expression": f"Patient.extension.where(url='{COLOUR}').value",
    }


def patient(name: str, colour: str | None) -> dict:
    res: dict = {"resourceType": "Patient", "name": [{"family": name}]}
    if colour:
        res["extension"] = [{"url": COLOUR, "valueCode": colour}]
    return res


def create(client: TestClient, resource: dict) -> str:
    r = client.post(f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def wait_done(client: TestClient, sp_id: str, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while True:
        r = client.get(f"/fhir/SearchParameter/{sp_id}/$reindex")
        assert r.status_code == 200, r.text
        job = {p["name"]: next(iter(v for k, v in p.items() if k.startswith("value")))
               for p in r.json()["parameter"][-1]["part"]}
        if job["status"] in ("done", "failed") or time.time() > deadline:
            return job
        time.sleep(0.2)


def match_ids(client: TestClient, query: str) -> tuple[list[str], list[str]]:
    body = client.get(f"/fhir/Patient?{query}").json()
    matches = [e["resource"]["id"] for e in body.get("entry", []) if e["search"]["mode"] == "match"]
    notes = [i["diagnostics"] for e in body.get("entry", []) if e["search"]["mode"] == "outcome"
             for i in e["resource"]["issue"]]
    return matches, notes


def test_posted_parameter_is_usable_after_its_reindex_job(client: TestClient) -> None:
    blue = [create(client, patient(f"Blue{n}", "blue")) for n in range(3)]
    create(client, patient("Red", "red"))
    create(client, patient("None", None))
    before, notes = match_ids(client, "favourite-colour=blue")
    assert len(before) == 5 and any("favourite-colour" in n for n in notes)  # unknown: reported and left out
    sp = create(client, colour_param())
    job = wait_done(client, sp)
    assert job["status"] == "done", job
    assert job["processed"] >= 5 and job["alive"] <= job["processed"]
    found, notes = match_ids(client, "favourite-colour=blue")
    assert sorted(found) == sorted(blue) and notes == []
    later = create(client, patient("Later", "blue"))  # written after the job: indexed on write
    assert later in match_ids(client, "favourite-colour=blue")[0]
    assert match_ids(client, "favourite-colour:missing=true")[0] != []
    strict = client.get("/fhir/Patient?favourite-colour=red", headers={"prefer": "handling=strict"})
    assert strict.status_code == 200 and len(strict.json()["entry"]) == 1


def test_unusable_search_parameter_is_stored_with_a_failed_job(client: TestClient) -> None:
    bad = colour_param("broken")
    bad["expression"] = "Patient.extension.where(("
    sp = create(client, bad)
    job = wait_done(client, sp, timeout=5)
    assert job["status"] == "failed" and "not registered" in job["message"]


def test_job_resumes_after_a_crash_and_checks_its_count(server: Server, client: TestClient,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert server.reindexer is not None
    server.reindexer.stop()  # run the job by hand, as two successive "processes"
    monkeypatch.setattr(reindex, "BATCH", 2)
    made = [create(client, patient(f"P{n}", "green" if n % 2 else "blue")) for n in range(7)]
    sp = create(client, colour_param("colour2"))
    first = Reindexer(server.store, server.repo.indexer.registry, server.repo.indexer, grace_seconds=0)
    job = first._claim()
    assert job is not None
    first.sync()  # registers the parameter
    # the first process takes its snapshot and does one batch, then "dies" holding the lease
    job.t_reg = reindex.utc_now()
    with server.store.reading() as cur:
        cur.execute("SELECT MAX(rid), (SELECT MAX(seq) FROM versions) FROM resources")
        job.snapshot_rid, job.snapshot_seq = (int(x) for x in cur.fetchone())
    job.expected = len(made)
    first._update(job)
    assert first._batch(job)
    assert 0 < job.processed <= 2
    with server.store.writing() as cur:
        cur.execute(server.store.dialect.sql("UPDATE reindex_jobs SET lease = ? WHERE id = ?"),
                    ["2000-01-01T00:00:00.000000Z", job.id])
    second = Reindexer(server.store, server.repo.indexer.registry, server.repo.indexer, grace_seconds=0)
    assert second.run_pending() == 1
    (final,) = second.jobs(sp)
    assert final.status == "done" and final.processed >= len(made) and final.alive == len(made)
    server.reindexer.sync()
    assert sorted(match_ids(client, "colour2=green")[0]) == sorted(made[1::2])
