"""$everything across organisations: every linked source record's resources, with paging, _since and _type, the
source organisation on each entry, and likely duplicates flagged rather than dropped."""

from __future__ import annotations

from typing import Any

from conftest import make_patient
from starlette.testclient import TestClient

NHS_A = "9990000018"
BASE = "https://sharedcare.example/fhir/StructureDefinition/"


def create(client: TestClient, resource: dict[str, Any]) -> str:
    r = client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def observation(patient: str, code: str = "8480-6", value: float = 128, day: str = "2024-03-01") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": day,
        "valueQuantity": {"value": value, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
    }


def medication(patient: str, kind: str = "MedicationRequest") -> dict[str, Any]:
    drug = {"coding": [{"system": "http://snomed.info/sct", "code": "319283006", "display": "Amlodipine 5mg tablets"}]}
    resource: dict[str, Any] = {
        "resourceType": kind,
        "status": "active",
        "subject": {"reference": f"Patient/{patient}"},
        "medicationCodeableConcept": drug,
    }
    if kind == "MedicationRequest":
        resource.update(intent="order", authoredOn="2024-02-02")
    else:
        resource["effectiveDateTime"] = "2024-02-02"
    return resource


def everything(client: TestClient, url: str) -> list[dict[str, Any]]:
    """All entries, following `next` links."""
    entries: list[dict[str, Any]] = []
    while url:
        bundle = client.get(url.removeprefix("http://testserver")).json()
        assert bundle["type"] == "searchset", bundle
        entries += bundle.get("entry", [])
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), "")
    return entries


def ext(entry: dict[str, Any], name: str) -> list[Any]:
    return [e["valueReference"] for e in entry.get("extension", []) if e["url"] == BASE + name]


def region(client: TestClient) -> dict[str, str]:
    ids = {
        "gp": create(client, make_patient("A81001", nhs=NHS_A)),
        "trust": create(client, make_patient("RX1", nhs=NHS_A)),
        "stranger": create(
            client,
            make_patient(
                "RX1",
                given="Olivia",
                family="Khan",
                dob="1950-01-01",
                line="1 Park Lane",
                postcode="SX7 1AA",
                phone=None,
            ),
        ),
    }
    ids["bp_gp"] = create(client, observation(ids["gp"]))
    ids["bp_trust"] = create(client, observation(ids["trust"]))  # the same result sent by the trust
    ids["other_bp"] = create(client, observation(ids["trust"], value=141, day="2024-05-05"))
    ids["med_gp"] = create(client, medication(ids["gp"]))
    ids["med_trust"] = create(client, medication(ids["trust"], "MedicationStatement"))
    ids["stranger_bp"] = create(client, observation(ids["stranger"]))
    return ids


def test_everything_spans_linked_records_of_every_organisation(client: TestClient) -> None:
    ids = region(client)
    entries = everything(client, f"/fhir/Patient/{ids['gp']}/$everything")
    got = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in entries}
    for key in ("gp", "trust"):
        assert ("Patient", ids[key]) in got
    for key in ("bp_gp", "bp_trust", "other_bp"):
        assert ("Observation", ids[key]) in got
    assert ("MedicationRequest", ids["med_gp"]) in got and ("MedicationStatement", ids["med_trust"]) in got
    assert sum(1 for t, _ in got if t == "Person") == 1
    assert ("Patient", ids["stranger"]) not in got and ("Observation", ids["stranger_bp"]) not in got
    from_trust = everything(client, f"/fhir/Patient/{ids['trust']}/$everything")
    person = next(e["resource"]["id"] for e in entries if e["resource"]["resourceType"] == "Person")
    from_person = everything(client, f"/fhir/Person/{person}/$everything")
    assert {e["fullUrl"] for e in from_trust} == {e["fullUrl"] for e in entries} == {e["fullUrl"] for e in from_person}


def test_every_entry_names_its_source_organisation_and_record(client: TestClient) -> None:
    ids = region(client)
    for e in everything(client, f"/fhir/Patient/{ids['gp']}/$everything"):
        r = e["resource"]
        if r["resourceType"] == "Person":
            continue
        org = ext(e, "source-organization")[0]["identifier"]
        patient = ext(e, "source-patient")[0]["reference"]
        owner = r["id"] if r["resourceType"] == "Patient" else r["subject"]["reference"].split("/")[1]
        assert patient == f"Patient/{owner}"
        assert org == {
            "system": "https://fhir.nhs.uk/Id/ods-organization-code",
            "value": "A81001" if owner == ids["gp"] else "RX1",
        }


def test_the_same_fact_from_two_organisations_is_flagged_not_dropped(client: TestClient) -> None:
    ids = region(client)
    by_id = {e["resource"]["id"]: e for e in everything(client, f"/fhir/Patient/{ids['gp']}/$everything")}
    assert ext(by_id[ids["bp_gp"]], "possible-duplicate") == [{"reference": f"Observation/{ids['bp_trust']}"}]
    assert ext(by_id[ids["bp_trust"]], "possible-duplicate") == [{"reference": f"Observation/{ids['bp_gp']}"}]
    assert ext(by_id[ids["other_bp"]], "possible-duplicate") == []
    assert ext(by_id[ids["med_gp"]], "possible-duplicate") == [{"reference": f"MedicationStatement/{ids['med_trust']}"}]


def test_paging_type_and_since(client: TestClient) -> None:
    ids = region(client)
    url = f"/fhir/Patient/{ids['gp']}/$everything"
    whole = everything(client, url)
    paged = everything(client, url + "?_count=2")
    assert [e["fullUrl"] for e in paged] == [e["fullUrl"] for e in whole]
    first = client.get(url + "?_count=2").json()
    assert first["total"] == len(whole) and len(first["entry"]) == 2
    only = everything(client, url + "?_type=Observation,MedicationStatement")
    assert {e["resource"]["resourceType"] for e in only} == {"Observation", "MedicationStatement"}
    assert len(only) == 4
    since = client.get(f"/fhir/Observation/{ids['other_bp']}").json()["meta"]["lastUpdated"]
    later = everything(client, url + f"?_since={since}&_type=Observation")
    assert [e["resource"]["id"] for e in later] == [ids["other_bp"]]
    assert client.get(url + "?_count=abc").status_code == 400
    assert client.get("/fhir/Patient/nope/$everything").status_code == 404


def test_paging_is_stable_while_the_record_grows(client: TestClient) -> None:
    ids = region(client)
    url = f"/fhir/Patient/{ids['gp']}/$everything?_count=3"
    first = client.get(url).json()
    create(client, observation(ids["trust"], code="8462-4", value=80))  # arrives between pages
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    rest = everything(client, next_url)
    seen = [e["fullUrl"] for e in first["entry"]] + [e["fullUrl"] for e in rest]
    assert len(seen) == len(set(seen))
