"""Conditional create, update and delete, and the race a conditional create must survive."""

from __future__ import annotations

import threading

from starlette.testclient import TestClient
from test_crud import FHIR_JSON, NHS, create, patient


def test_conditional_create(client: TestClient) -> None:
    first = client.post(
        "/fhir/Patient",
        json=patient(),
        headers={**FHIR_JSON, "If-None-Exist": f"identifier={NHS}|9990000018"},
    )
    assert first.status_code == 201
    again = client.post(
        "/fhir/Patient",
        json=patient(),
        headers={**FHIR_JSON, "If-None-Exist": f"identifier={NHS}|9990000018"},
    )
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    create(client, patient(nhs="9990000026"))
    create(client, patient(nhs="9990000034", family="Smith"))
    multi = client.post("/fhir/Patient", json=patient(), headers={**FHIR_JSON, "If-None-Exist": "family=smith"})
    assert multi.status_code == 412


def test_conditional_update(client: TestClient) -> None:
    r = client.put(f"/fhir/Patient?identifier={NHS}|9990000018", json=patient(), headers=FHIR_JSON)
    assert r.status_code == 201
    pid = r.json()["id"]
    r = client.put(f"/fhir/Patient?identifier={NHS}|9990000018", json=patient(family="Jones"), headers=FHIR_JSON)
    assert r.status_code == 200 and r.json()["id"] == pid and r.json()["meta"]["versionId"] == "2"
    wrong_id = {**patient(), "id": "other"}
    assert client.put(f"/fhir/Patient?identifier={NHS}|9990000018", json=wrong_id, headers=FHIR_JSON).status_code == 400


def test_conditional_delete(client: TestClient) -> None:
    pid = create(client, patient())["id"]
    r = client.delete(f"/fhir/Patient?identifier={NHS}|9990000018")
    assert r.status_code == 204
    assert client.get(f"/fhir/Patient/{pid}").status_code == 410
    assert client.delete(f"/fhir/Patient?identifier={NHS}|9990000018").status_code == 200  # nothing matched
    create(client, patient(nhs="9990000026"))
    create(client, patient(nhs="9990000034"))
    assert client.delete("/fhir/Patient?family=smith").status_code == 412


def test_unknown_search_parameter_in_condition_is_rejected(client: TestClient) -> None:
    r = client.post("/fhir/Patient", json=patient(), headers={**FHIR_JSON, "If-None-Exist": "nonsense=1"})
    assert r.status_code == 400
    assert client.get("/fhir/Patient").json().get("total") == 0


def test_concurrent_conditional_creates_make_one_resource(client: TestClient) -> None:
    barrier = threading.Barrier(16)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        r = client.post(
            "/fhir/Patient",
            json=patient(nhs="9990000042"),
            headers={**FHIR_JSON, "If-None-Exist": f"identifier={NHS}|9990000042"},
        )
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 15 + [201]
    found = client.get(f"/fhir/Patient?identifier={NHS}|9990000042").json()
    assert found["total"] == 1
