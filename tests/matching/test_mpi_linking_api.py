"""The MPI through the FHIR API on both stores: linking on arrival, never-link rules, the review queue,
merge and unmerge with Provenance, and $match."""

from __future__ import annotations

from typing import Any

from conftest import make_patient
from starlette.testclient import TestClient

NHS_A, NHS_B = "9990000018", "9434765919"


def create(client: TestClient, resource: dict[str, Any]) -> str:
    r = client.post("/fhir/Patient", json=resource)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def person_of(client: TestClient, patient_id: str) -> dict[str, Any]:
    bundle = client.get(f"/fhir/Patient/{patient_id}/$everything?_type=Person").json()
    persons = [e["resource"] for e in bundle.get("entry", [])]
    assert len(persons) == 1, bundle
    return persons[0]


def linked(person: dict[str, Any]) -> dict[str, str]:
    return {link["target"]["reference"]: link["assurance"] for link in person.get("link", [])}


def params(**values: str) -> dict[str, Any]:
    out = []
    for name, value in values.items():
        key = "valueReference" if "/" in value else "valueString"
        out.append({"name": name, key: {"reference": value} if key == "valueReference" else value})
    return {"resourceType": "Parameters", "parameter": out}


def answer(response: Any, name: str) -> str:
    assert response.status_code == 200, response.text
    for p in response.json()["parameter"]:
        if p["name"] == name:
            return p.get("valueReference", {}).get("reference") or p.get("valueString")
    raise AssertionError(response.text)


def test_records_from_two_organisations_link_to_one_person_on_arrival(client: TestClient) -> None:
    gp = create(client, make_patient("A81001", nhs=NHS_A))
    trust = create(client, make_patient("RX1", nhs=NHS_A, line="12 Mill St"))
    person = person_of(client, gp)
    assert person["resourceType"] == "Person" and person["active"] is True
    assert linked(person) == {f"Patient/{gp}": "level4", f"Patient/{trust}": "level4"}
    assert person["identifier"][0]["value"] == NHS_A
    assert person_of(client, trust)["id"] == person["id"]
    stored = client.get(f"/fhir/Patient/{trust}").json()  # the source record is kept as its organisation sent it
    assert stored["managingOrganization"]["identifier"]["value"] == "RX1" and "link" not in stored


def test_a_record_without_nhs_number_links_on_demographics(client: TestClient) -> None:
    gp = create(client, make_patient(nhs=NHS_A))
    council = create(client, make_patient("LA1", nhs=None))
    assert linked(person_of(client, gp)).get(f"Patient/{council}") in ("level2", "level3")


def test_different_verified_nhs_numbers_are_never_linked(client: TestClient) -> None:
    a = create(client, make_patient(nhs=NHS_A))
    b = create(client, make_patient("RX1", nhs=NHS_B))
    assert person_of(client, a)["id"] != person_of(client, b)["id"]
    queue = client.get("/fhir/Person/$review-queue").json()
    assert queue["total"] == 0  # nothing to review: the rule is absolute


def test_twins_are_not_linked(client: TestClient) -> None:
    jack = create(client, make_patient(nhs=NHS_A, given="Jack", gender="male", dob="2015-06-01"))
    jacob = create(client, make_patient("RX1", given="Jacob", gender="male", dob="2015-06-01"))
    assert person_of(client, jack)["id"] != person_of(client, jacob)["id"]


def test_updating_a_patient_rematches_it(client: TestClient) -> None:
    a = create(client, make_patient(nhs=NHS_A))
    b_body = make_patient("RX1", nhs=NHS_B)
    b = create(client, b_body)
    assert person_of(client, a)["id"] != person_of(client, b)["id"]
    b_body.update(id=b, identifier=make_patient(nhs=NHS_A)["identifier"])  # the trust corrects the number
    assert client.put(f"/fhir/Patient/{b}", json=b_body).status_code == 200
    assert person_of(client, a)["id"] == person_of(client, b)["id"]
    assert client.delete(f"/fhir/Patient/{b}").status_code == 204
    assert linked(person_of(client, a)) == {f"Patient/{a}": "level4"}


def review_pair(client: TestClient) -> tuple[str, str, dict[str, Any]]:
    """Two records of one person whose evidence falls between the thresholds: married and moved, no NHS number."""
    a = create(client, make_patient(nhs=NHS_A, given="Emily", family="Hughes"))
    b = create(
        client, make_patient("RX1", given="Emily", family="Walker", line="9 Elm Way", postcode="SX9 1ZZ", phone=None)
    )
    queue = client.get("/fhir/Person/$review-queue").json()
    assert queue["total"] == 1, queue
    return a, b, queue["entry"][0]["resource"]


def test_review_queue_lists_a_task_per_possible_match(client: TestClient) -> None:
    a, b, task = review_pair(client)
    assert task["resourceType"] == "Task" and task["status"] == "requested"
    assert {task["focus"]["reference"], task["input"][0]["valueReference"]["reference"]} == {
        f"Patient/{a}",
        f"Patient/{b}",
    }
    grade = next(i["valueCode"] for i in task["input"] if i["type"]["text"] == "match-grade")
    assert grade in ("probable", "possible")
    assert person_of(client, a)["id"] != person_of(client, b)["id"]


def test_accepting_a_review_links_and_records_provenance(client: TestClient) -> None:
    a, b, task = review_pair(client)
    r = client.post("/fhir/Person/$review-accept", json=params(task=f"Task/{task['id']}", performer="Dr Who"))
    prov = client.get(f"/fhir/{answer(r, 'provenance')}").json()
    assert prov["activity"]["coding"][0]["code"] == "review-accept" and prov["agent"][0]["who"]["display"] == "Dr Who"
    person = person_of(client, a)
    assert person["id"] == person_of(client, b)["id"]
    assert linked(person)[f"Patient/{b}"] == "level4"
    assert client.get(f"/fhir/Task/{task['id']}").json()["status"] == "completed"
    assert client.get("/fhir/Person/$review-queue").json()["total"] == 0
    again = client.post("/fhir/Person/$review-accept", json=params(task=f"Task/{task['id']}"))
    assert again.status_code == 409


def test_rejecting_a_review_keeps_them_apart_for_good(client: TestClient) -> None:
    a, b, task = review_pair(client)
    r = client.post("/fhir/Person/$review-reject", json=params(task=f"Task/{task['id']}"))
    assert answer(r, "provenance").startswith("Provenance/")
    assert client.get(f"/fhir/Task/{task['id']}").json()["status"] == "rejected"
    body = client.get(f"/fhir/Patient/{b}").json()
    body["telecom"] = [{"system": "phone", "value": "01134960123"}]  # new evidence arrives: still apart
    assert client.put(f"/fhir/Patient/{b}", json=body).status_code == 200
    assert person_of(client, a)["id"] != person_of(client, b)["id"]
    assert client.get("/fhir/Person/$review-queue").json()["total"] == 0


def test_merge_and_unmerge_are_recorded_and_reversible(client: TestClient) -> None:
    a = create(client, make_patient(nhs=NHS_A, given="Emily", family="Hughes"))
    b = create(
        client,
        make_patient(
            "RX1", given="Emma", family="Walker", dob="1979-01-01", line="1 Oak Avenue", postcode="SX3 2AB", phone=None
        ),
    )
    pa, pb = person_of(client, a)["id"], person_of(client, b)["id"]
    assert pa != pb
    r = client.post("/fhir/Person/$merge", json=params(source=f"Person/{pb}", target=f"Person/{pa}", reason="same"))
    merge_prov = answer(r, "provenance")
    assert person_of(client, b)["id"] == pa
    retired = client.get(f"/fhir/Person/{pb}").json()
    assert retired["active"] is False and retired["link"][0]["target"]["reference"] == f"Person/{pa}"
    via_old_id = client.get(f"/fhir/Person/{pb}/$everything?_type=Patient").json()
    assert {e["resource"]["id"] for e in via_old_id["entry"]} == {a, b}  # the merged Person's id still finds all
    prov = client.get(f"/fhir/{merge_prov}").json()
    assert {e["what"]["reference"].rsplit("/", 2)[0] for e in prov["entity"]} == {f"Person/{pa}", f"Person/{pb}"}
    audits = client.get("/fhir/AuditEvent?_count=500").json().get("entry", [])
    audited = {x["what"].get("reference", "") for e in audits for x in e["resource"].get("entity", []) if "what" in x}
    assert any(ref.startswith(merge_prov + "/") or ref == merge_prov for ref in audited)  # the audit trail saw it

    r = client.post("/fhir/Person/$unmerge", json=params(provenance=merge_prov, reason="wrong"))
    undo = client.get(f"/fhir/{answer(r, 'provenance')}").json()
    assert undo["activity"]["coding"][0]["code"] == "unmerge"
    assert person_of(client, a)["id"] == pa and person_of(client, b)["id"] == pb
    assert client.get(f"/fhir/Person/{pb}").json()["active"] is True


def test_unmerge_takes_a_wrongly_linked_record_out(client: TestClient) -> None:
    a = create(client, make_patient(nhs=NHS_A))
    b = create(client, make_patient("RX1"))
    person = person_of(client, a)["id"]
    assert person_of(client, b)["id"] == person
    r = client.post("/fhir/Person/$unmerge", json=params(patient=f"Patient/{b}", performer="MPI team"))
    assert answer(r, "provenance").startswith("Provenance/")
    assert person_of(client, b)["id"] != person
    assert linked(person_of(client, a)) == {f"Patient/{a}": "level4"}
    body = client.get(f"/fhir/Patient/{b}").json()
    body["birthDate"] = "1980-03-04"  # an update does not undo a person's decision
    client.put(f"/fhir/Patient/{b}", json=body)
    assert person_of(client, b)["id"] != person


def test_merge_refuses_two_verified_nhs_numbers(client: TestClient) -> None:
    a = create(client, make_patient(nhs=NHS_A))
    b = create(client, make_patient("RX1", nhs=NHS_B))
    r = client.post(
        "/fhir/Person/$merge",
        json=params(source=f"Person/{person_of(client, b)['id']}", target=f"Person/{person_of(client, a)['id']}"),
    )
    assert r.status_code == 422
    assert "verified NHS" in r.json()["issue"][0]["diagnostics"]


def test_match_operation_grades_candidates(client: TestClient) -> None:
    a = create(client, make_patient(nhs=NHS_A))
    create(client, make_patient("RX1", given="Sarah", dob="1990-05-14"))  # her daughter? no: a different person
    body = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": make_patient("X")}]}
    bundle = client.post("/fhir/Patient/$match", json=body).json()
    assert bundle["type"] == "searchset"
    top = bundle["entry"][0]
    assert top["resource"]["id"] == a
    assert top["search"]["mode"] == "match" and 0.99 < top["search"]["score"] <= 1
    grade = top["search"]["extension"][0]
    assert grade["url"] == "http://hl7.org/fhir/StructureDefinition/match-grade" and grade["valueCode"] == "certain"
    certain = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "resource",
                "resource": make_patient(
                    "X", given="Emily", family="Walker", phone=None, line="9 Elm Way", postcode="SX9 1ZZ"
                ),
            },
            {"name": "onlyCertainMatches", "valueBoolean": True},
        ],
    }
    assert client.post("/fhir/Patient/$match", json=certain).json().get("entry", []) == []
    assert client.post("/fhir/Patient/$match", json={"resourceType": "Parameters"}).status_code == 400


def test_the_capability_statement_lists_the_operations(client: TestClient) -> None:
    statement = client.get("/fhir/metadata").json()
    ops = {r["type"]: {o["name"] for o in r.get("operation", [])} for r in statement["rest"][0]["resource"]}
    assert {"match", "everything"} <= ops["Patient"]
    assert {"everything", "review-queue", "review-accept", "review-reject", "merge", "unmerge"} <= ops["Person"]
