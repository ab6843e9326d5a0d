"""Real FHIR client libraries (fhirclient, fhirpy) against the running server, over HTTP."""

from __future__ import annotations

import threading

import httpx2 as httpx
from fhirclient import client as smart_client
from fhirclient.models.patient import Patient
from fhirpy import SyncFHIRClient

NHS = "https://fhir.nhs.uk/Id/nhs-number"


def test_fhirclient_crud(live_base: str) -> None:
    smart = smart_client.FHIRClient(settings={"app_id": "test", "api_base": live_base})
    created = Patient(
        {
            "name": [{"family": "Smith", "given": ["Ann"]}],
            "gender": "female",
            "identifier": [{"system": NHS, "value": "9990000018"}],
        }
    ).create(smart.server)
    assert created is not None
    pid = created["id"]
    got = Patient.read(pid, smart.server)
    assert got.name[0].family == "Smith"
    got.gender = "male"
    assert got.update(smart.server)["meta"]["versionId"] == "2"
    assert Patient.read(pid, smart.server).gender == "male"
    found = list(Patient.where({"identifier": f"{NHS}|9990000018"}).perform_resources_iter(smart.server))
    assert [p.id for p in found] == [pid]
    got.delete(smart.server)
    assert httpx.get(f"{live_base}/Patient/{pid}").status_code == 410


def test_fhirpy_crud_history_and_transaction(live_base: str) -> None:
    fhir = SyncFHIRClient(live_base)
    pat = fhir.resource("Patient", name=[{"family": "Jones"}], gender="male")
    pat.save()
    pat["gender"] = "female"
    pat.save()
    assert fhir.reference("Patient", pat.id).to_resource()["gender"] == "female"
    history = fhir.execute(f"Patient/{pat.id}/_history", method="get")
    assert history["total"] == 2
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0f9b4d8e-4a54-4b63-9f1b-6a1c2f3e4d5a",
                "resource": {"resourceType": "Patient"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "BP"},
                    "subject": {"reference": "urn:uuid:0f9b4d8e-4a54-4b63-9f1b-6a1c2f3e4d5a"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    out = fhir.execute("", method="post", data=bundle)
    assert [e["response"]["status"] for e in out["entry"]] == ["201 Created", "201 Created"]
    assert out["entry"][1]["resource"]["subject"]["reference"].startswith("Patient/")


def test_sixteen_http_clients_conditional_create_once(live_base: str) -> None:
    barrier = threading.Barrier(16)
    statuses: list[int] = []
    body = {"resourceType": "Patient", "identifier": [{"system": NHS, "value": "9990000026"}]}

    def worker() -> None:
        with httpx.Client() as http:
            barrier.wait()
            r = http.post(
                f"{live_base}/Patient",
                json=body,
                headers={"If-None-Exist": f"identifier={NHS}|9990000026", "Content-Type": "application/fhir+json"},
            )
            statuses.append(r.status_code)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 15 + [201]
    found = httpx.get(f"{live_base}/Patient", params={"identifier": f"{NHS}|9990000026"}).json()
    assert found["total"] == 1
