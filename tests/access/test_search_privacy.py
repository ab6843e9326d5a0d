"""Issue 7 part 2 beyond the matrix: the withheld notice, conditional interactions, $match, and finding a patient
by exact NHS number to break glass (banner fields only)."""

from __future__ import annotations

import time
from typing import Any

from starlette.testclient import TestClient
from support.security import bearer, operator_token, token

from sharedcare.app import Server

A, B = "A81001", "B82002"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
HIV = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}


def _patient(client: TestClient, op: str, nhs: str, gp: str) -> str:
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": "Okafor", "given": ["Sam"]}],
        "birthDate": "1970-01-02",
        "gender": "male",
        "address": [{"postalCode": "LS1 1AA"}],
        "telecom": [{"system": "phone", "value": "0113 000 0000"}],
        "generalPractitioner": [{"reference": f"Organization/{gp}"}],
    }
    resp = client.post("/fhir/Patient", json=body, headers=bearer(op))
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _obs(client: TestClient, op: str, pid: str, text: str, security: dict[str, str] | None = None) -> str:
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": text},
        "subject": {"reference": f"Patient/{pid}"},
        "identifier": [{"system": "urn:test", "value": text}],
    }
    if security:
        body["meta"] = {"security": [security]}
    resp = client.post("/fhir/Observation", json=body, headers=bearer(op))
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _outcomes(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        i
        for e in bundle.get("entry") or []
        if e["resource"]["resourceType"] == "OperationOutcome"
        for i in e["resource"]["issue"]
    ]


def test_a_search_says_something_is_withheld_but_never_what(secure_server: Server, secure_client: TestClient) -> None:
    op = operator_token(secure_server)
    pid = _patient(secure_client, op, "9434765900", A)
    _obs(secure_client, op, pid, "plain-reading")
    _obs(secure_client, op, pid, "hidden-finding", HIV)
    doc = token(secure_server, role="clinician", org=B)  # B is not the source: the HIV-labelled item is withheld
    other = token(secure_server, role="clinician", org=B, subject="someone")
    secure_client.put(
        f"/fhir/Patient/{pid}",
        json={**secure_client.get(f"/fhir/Patient/{pid}", headers=bearer(op)).json(),
              "generalPractitioner": [{"reference": f"Organization/{A}"}, {"reference": f"Organization/{B}"}]},
        headers=bearer(op),
    )
    for path in (f"/fhir/Patient/{pid}/Observation", f"/fhir/Observation?subject=Patient/{pid}&_total=accurate",
                 f"/fhir/Patient/{pid}/$everything"):
        bundle = secure_client.get(path, headers=bearer(doc)).json()
        shown = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
        assert [o["code"]["text"] for o in shown] == ["plain-reading"], path
        issues = _outcomes(bundle)
        assert [i["code"] for i in issues] == ["suppressed"], path
        assert issues[0]["diagnostics"] == "Some information is withheld"
        assert "hidden-finding" not in str(bundle) and "HIV" not in str(bundle)
        if "total" in bundle and "Observation?" in path:
            assert bundle["total"] == 1
    # the operator sees both, and no notice
    full = secure_client.get(f"/fhir/Patient/{pid}/Observation", headers=bearer(op)).json()
    assert len(full["entry"]) == 2 and not _outcomes(full)
    assert other  # another clinician of B sees the same (no per-person difference)


def test_conditional_interactions_do_not_reveal_hidden_resources(
    secure_server: Server, secure_client: TestClient
) -> None:
    op = operator_token(secure_server)
    pid = _patient(secure_client, op, "9434765919", A)
    _obs(secure_client, op, pid, "secret-x", HIV)
    doc = token(secure_server, role="clinician", org=B)  # no relationship with this patient at all
    body = {"resourceType": "Observation", "status": "final", "code": {"text": "q"},
            "subject": {"reference": f"Patient/{pid}"}}
    created = secure_client.post(
        "/fhir/Observation", json=body, headers=bearer(doc, **{"if-none-exist": "identifier=urn:test|secret-x"})
    )
    # never "200 OK, here is the existing (hidden) resource": matching is among what the caller may see
    assert created.status_code != 200 and "secret-x" not in created.text
    deleted = secure_client.delete("/fhir/Observation?identifier=urn:test|secret-x", headers=bearer(doc))
    assert deleted.status_code in (200, 204, 403, 404) and "secret-x" not in deleted.text
    still = secure_client.get("/fhir/Observation?identifier=urn:test|secret-x", headers=bearer(op)).json()
    assert len(still["entry"]) == 1  # the hidden resource was not deleted
    chained = secure_client.get(
        "/fhir/Observation?identifier=urn:test|secret-x&subject.identifier=" + f"{NHS}|9434765919",
        headers=bearer(doc),
    ).json()
    assert not [e for e in chained.get("entry") or [] if e["resource"]["resourceType"] == "Observation"]


def test_a_clinician_finds_a_patient_by_nhs_number_to_break_glass(
    secure_server: Server, secure_client: TestClient
) -> None:
    op = operator_token(secure_server)
    pid = _patient(secure_client, op, "9434765927", A)
    _obs(secure_client, op, pid, "anything")
    doc = token(secure_server, role="clinician", org=B, subject="dr-b")  # no relationship
    found = secure_client.get(f"/fhir/Patient?identifier={NHS}|9434765927", headers=bearer(doc))
    assert found.status_code == 200, found.text
    bundle = found.json()
    patients = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert [p["id"] for p in patients] == [pid]
    banner = patients[0]
    assert banner["meta"]["tag"][0]["code"] == "SUBSETTED"
    assert banner["name"][0]["family"] == "Okafor" and banner["birthDate"] == "1970-01-02"
    assert "address" not in banner and "telecom" not in banner and "generalPractitioner" not in banner
    assert any("break glass" in i["diagnostics"] for i in _outcomes(bundle))
    assert secure_client.get(f"/fhir/Patient/{pid}", headers=bearer(doc)).status_code == 403
    # only an exact NHS number: a name search finds nothing, and analysts or patients get no banner
    assert not secure_client.get("/fhir/Patient?family=Okafor", headers=bearer(doc)).json().get("entry")
    analyst = token(secure_server, role="analyst", purpose="secondary-use")
    other = token(secure_server, role="patient", patient="nobody", subject="nobody", scopes="patient/*.rs")
    for tok in (analyst, other):
        resp = secure_client.get(f"/fhir/Patient?identifier={NHS}|9434765927", headers=bearer(tok))
        assert resp.status_code in (200, 403)
        assert "Okafor" not in resp.text and "SUBSETTED" not in resp.text
    # after break glass, the full record
    grant = {"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "Collapsed in clinic"}]}
    assert secure_client.post(f"/fhir/Patient/{pid}/$break-glass", json=grant, headers=bearer(doc)).status_code == 200
    full = secure_client.get(f"/fhir/Patient?identifier={NHS}|9434765927", headers=bearer(doc)).json()
    assert [e["resource"].get("address") for e in full["entry"]] == [[{"postalCode": "LS1 1AA"}]]


def test_match_leaves_out_candidates_the_caller_may_not_see(secure_server: Server, secure_client: TestClient) -> None:
    op = operator_token(secure_server)
    pid = _patient(secure_client, op, "9434765935", A)
    doc = token(secure_server, role="clinician", org=B)
    query = {
        "resourceType": "Parameters",
        "parameter": [{"name": "resource", "resource": {
            "resourceType": "Patient", "identifier": [{"system": NHS, "value": "9434765935"}],
            "name": [{"family": "Okafor", "given": ["Sam"]}], "birthDate": "1970-01-02", "gender": "male"}}],
    }
    mine = secure_client.post("/fhir/Patient/$match", json=query, headers=bearer(op))
    assert mine.status_code == 200 and pid in mine.text
    theirs = secure_client.post("/fhir/Patient/$match", json=query, headers=bearer(doc))
    assert theirs.status_code == 200, theirs.text
    assert pid not in theirs.text and "Okafor" not in theirs.text


def _export(client: TestClient, tok: str) -> tuple[str, dict[str, Any]]:
    kick = client.get("/fhir/Patient/$export", headers=bearer(tok, prefer="respond-async"))
    assert kick.status_code == 202, kick.text
    status = kick.headers["content-location"].split("/fhir", 1)[1]
    for _ in range(300):
        done = client.get(f"/fhir{status}", headers=bearer(tok))
        if done.status_code == 200:
            return status, done.json()
        assert done.status_code == 202, done.text
        time.sleep(0.05)
    raise AssertionError("the export did not finish")


def test_an_analyst_export_applies_opt_outs_and_pseudonymises(
    secure_server: Server, secure_client: TestClient
) -> None:
    op = operator_token(secure_server)
    kept = _patient(secure_client, op, "9434765943", A)
    opted = _patient(secure_client, op, "9434765951", A)
    _obs(secure_client, op, kept, "kept-reading")
    _obs(secure_client, op, kept, "hiv-finding", HIV)
    _obs(secure_client, op, opted, "opted-reading")
    reason = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
    ndoo = {
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{opted}"},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
        "provision": {"type": "deny", "purpose": [{"system": reason, "code": "HRESCH"},
                                                  {"system": reason, "code": "HOPERAT"}]},
    }
    assert secure_client.post("/fhir/Consent", json=ndoo, headers=bearer(op)).status_code == 201
    analyst = token(secure_server, role="analyst", subject="ann")
    status, manifest = _export(secure_client, analyst)
    text = b""
    for item in manifest["output"]:
        resp = secure_client.get(item["url"].split("testserver", 1)[1], headers=bearer(analyst))
        assert resp.status_code == 200, resp.text
        text += resp.content
    assert b"kept-reading" in text  # the analyst's data
    assert b"opted-reading" not in text and opted.encode() not in text  # National Data Opt-out applied
    assert b"hiv-finding" not in text  # sensitive categories withheld as for the API
    assert b"Okafor" not in text and b"9434765943" not in text and b"LS1 1AA" not in text  # pseudonymised
    # nobody else may poll it or fetch its files; a clinician may not start one
    other = token(secure_server, role="analyst", subject="bob")
    assert secure_client.get(f"/fhir{status}", headers=bearer(other)).status_code == 404
    first = manifest["output"][0]["url"].split("testserver", 1)[1]
    assert secure_client.get(first, headers=bearer(other)).status_code == 404
    assert secure_client.get(first, headers=bearer(op)).status_code == 200
    doc = token(secure_server, role="clinician", org=A)
    refused = secure_client.get("/fhir/Patient/$export", headers=bearer(doc, prefer="respond-async"))
    assert refused.status_code == 403
