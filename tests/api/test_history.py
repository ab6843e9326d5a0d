"""History at instance, type and system level, with _since, _at, _count and stable paging."""

from __future__ import annotations

import time

from starlette.testclient import TestClient
from test_crud import FHIR_JSON, create, patient


def test_instance_type_and_system_history(client: TestClient) -> None:
    pid = create(client, patient())["id"]
    client.put(f"/fhir/Patient/{pid}", json={**patient(family="B"), "id": pid}, headers=FHIR_JSON)
    create(client, {"resourceType": "Organization", "name": "GP"})
    inst = client.get(f"/fhir/Patient/{pid}/_history").json()
    assert inst["type"] == "history" and inst["total"] == 2
    assert [e["resource"]["meta"]["versionId"] for e in inst["entry"]] == ["2", "1"]
    assert client.get("/fhir/Patient/_history").json()["total"] == 2
    assert client.get("/fhir/_history").json()["total"] == 4  # and the Person the MPI linked the Patient to
    assert client.get("/fhir/Patient/nope/_history").status_code == 404


def test_since_and_at(client: TestClient) -> None:
    pid = create(client, patient())["id"]
    time.sleep(0.01)
    mid = client.get(f"/fhir/Patient/{pid}").json()["meta"]["lastUpdated"]
    time.sleep(0.01)
    client.put(f"/fhir/Patient/{pid}", json={**patient(family="B"), "id": pid}, headers=FHIR_JSON)
    since = client.get("/fhir/_history", params={"_since": mid}).json()
    assert since["total"] == 3  # inclusive of the versions written at `mid` (the Patient and its MPI Person)
    later = client.get(f"/fhir/Patient/{pid}").json()["meta"]["lastUpdated"]
    assert client.get("/fhir/_history", params={"_since": later}).json()["total"] == 1
    at = client.get(f"/fhir/Patient/{pid}/_history", params={"_at": mid}).json()
    assert [e["resource"]["meta"]["versionId"] for e in at["entry"]] == ["1"]
    assert client.get("/fhir/_history", params={"_since": "yesterday"}).status_code == 400


def test_paging_is_stable_while_writes_happen(client: TestClient) -> None:
    for n in range(5):
        create(client, {"resourceType": "Organization", "name": f"Org {n}"})
    page1 = client.get("/fhir/_history", params={"_count": 2}).json()
    names1 = [e["resource"]["name"] for e in page1["entry"]]
    create(client, {"resourceType": "Organization", "name": "Late"})
    nxt = next(link["url"] for link in page1["link"] if link["relation"] == "next")
    page2 = client.get(nxt.replace("http://testserver", "")).json()
    names2 = [e["resource"]["name"] for e in page2["entry"]]
    assert names1 == ["Org 4", "Org 3"] and names2 == ["Org 2", "Org 1"]
    assert page2["total"] == 5
