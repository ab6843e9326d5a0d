"""Read, vread, create, update, patch, delete and their headers, through HTTP, on both stores."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

NHS = "https://fhir.nhs.uk/Id/nhs-number"
FHIR_JSON = {"content-type": "application/fhir+json"}


def patient(nhs: str = "9990000018", family: str = "Smith") -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": family, "given": ["Ann"]}],
        "gender": "female",
        "birthDate": "1950-02-03",
    }


def create(client: TestClient, resource: dict, **headers: str) -> dict:
    r = client.post(f"/fhir/{resource['resourceType']}", json=resource, headers={**FHIR_JSON, **headers})
    assert r.status_code == 201, r.text
    return r.json()


def test_create_sets_id_meta_and_headers(client: TestClient) -> None:
    r = client.post("/fhir/Patient", json={**patient(), "id": "ignored"}, headers=FHIR_JSON)
    assert r.status_code == 201
    body = r.json()
    assert body["id"] != "ignored"
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("Z")
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["location"].endswith(f"/fhir/Patient/{body['id']}/_history/1")
    assert r.headers["content-type"].startswith("application/fhir+json")
    assert "last-modified" in r.headers


def test_read_returns_exactly_the_stored_bytes(client: TestClient) -> None:
    created = client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)
    pid = created.json()["id"]
    r = client.get(f"/fhir/Patient/{pid}")
    assert r.status_code == 200
    assert r.content == created.content
    assert r.headers["etag"] == 'W/"1"'


def test_head_has_the_headers_of_get_and_no_body(client: TestClient) -> None:
    pid = client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON).json()["id"]
    got = client.get(f"/fhir/Patient/{pid}")
    head = client.head(f"/fhir/Patient/{pid}")
    assert head.status_code == 200 and head.content == b""
    for name in ("content-length", "content-type", "etag", "last-modified"):
        assert head.headers[name] == got.headers[name], name
    assert int(head.headers["content-length"]) == len(got.content) > 0
    assert client.head("/fhir/Patient/missing").status_code == 404


def test_update_versions_and_vread(client: TestClient) -> None:
    pid = create(client, patient())["id"]
    updated = {**patient(family="Jones"), "id": pid}
    r = client.put(f"/fhir/Patient/{pid}", json=updated, headers=FHIR_JSON)
    assert r.status_code == 200
    assert r.json()["meta"]["versionId"] == "2"
    assert client.get(f"/fhir/Patient/{pid}/_history/1").json()["name"][0]["family"] == "Smith"
    assert client.get(f"/fhir/Patient/{pid}/_history/2").json()["name"][0]["family"] == "Jones"
    assert client.get(f"/fhir/Patient/{pid}/_history/3").status_code == 404


def test_update_as_create_with_client_id(client: TestClient) -> None:
    r = client.put("/fhir/Patient/my-id-1", json={**patient(), "id": "my-id-1"}, headers=FHIR_JSON)
    assert r.status_code == 201
    assert client.get("/fhir/Patient/my-id-1").json()["meta"]["versionId"] == "1"


def test_update_id_mismatch_and_missing_id(client: TestClient) -> None:
    r = client.put("/fhir/Patient/a", json={**patient(), "id": "b"}, headers=FHIR_JSON)
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome"
    assert client.put("/fhir/Patient/a", json=patient(), headers=FHIR_JSON).status_code == 400
    assert client.get("/fhir/Patient/a").status_code == 404


def test_if_match_version_aware_update(client: TestClient) -> None:
    pid = create(client, patient())["id"]
    body = {**patient(family="New"), "id": pid}
    stale = client.put(f"/fhir/Patient/{pid}", json=body, headers={**FHIR_JSON, "If-Match": 'W/"7"'})
    assert stale.status_code == 412
    ok = client.put(f"/fhir/Patient/{pid}", json=body, headers={**FHIR_JSON, "If-Match": 'W/"1"'})
    assert ok.status_code == 200
    assert ok.headers["etag"] == 'W/"2"'


def test_conditional_read_304(client: TestClient) -> None:
    created = client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)
    pid = created.json()["id"]
    assert client.get(f"/fhir/Patient/{pid}", headers={"If-None-Match": 'W/"1"'}).status_code == 304
    assert client.get(f"/fhir/Patient/{pid}", headers={"If-None-Match": 'W/"0"'}).status_code == 200
    lm = created.headers["last-modified"]
    assert client.get(f"/fhir/Patient/{pid}", headers={"If-Modified-Since": lm}).status_code == 304
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert client.get(f"/fhir/Patient/{pid}", headers={"If-Modified-Since": old}).status_code == 200


def test_delete_then_read_is_gone_and_history_kept(client: TestClient) -> None:
    pid = create(client, patient())["id"]
    assert client.delete(f"/fhir/Patient/{pid}").status_code == 204
    gone = client.get(f"/fhir/Patient/{pid}")
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    assert client.get(f"/fhir/Patient/{pid}/_history/1").status_code == 200
    assert client.get(f"/fhir/Patient/{pid}/_history/2").status_code == 410
    hist = client.get(f"/fhir/Patient/{pid}/_history").json()
    assert [e["request"]["method"] for e in hist["entry"]] == ["DELETE", "POST"]
    assert client.delete(f"/fhir/Patient/{pid}").status_code == 204  # idempotent
    assert client.delete("/fhir/Patient/never-was").status_code == 404
    # recreating after delete gives the next version
    r = client.put(f"/fhir/Patient/{pid}", json={**patient(), "id": pid}, headers=FHIR_JSON)
    assert r.status_code == 201 and r.json()["meta"]["versionId"] == "3"


def test_json_patch(client: TestClient) -> None:
    pid = create(client, patient())["id"]
    ops = [
        {"op": "replace", "path": "/gender", "value": "male"},
        {"op": "add", "path": "/active", "value": True},
    ]
    r = client.patch(
        f"/fhir/Patient/{pid}",
        content=json.dumps(ops),
        headers={"content-type": "application/json-patch+json", "If-Match": 'W/"1"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["gender"] == "male" and r.json()["active"] is True
    bad = [{"op": "replace", "path": "/gender", "value": "robot"}]
    r = client.patch(
        f"/fhir/Patient/{pid}",
        content=json.dumps(bad),
        headers={"content-type": "application/json-patch+json"},
    )
    assert r.status_code == 400
    assert client.get(f"/fhir/Patient/{pid}").json()["meta"]["versionId"] == "2"
    failing_test = [{"op": "test", "path": "/gender", "value": "female"}]
    r = client.patch(
        f"/fhir/Patient/{pid}",
        content=json.dumps(failing_test),
        headers={"content-type": "application/json-patch+json"},
    )
    assert r.status_code == 422


def test_prefer_return(client: TestClient) -> None:
    r = client.post("/fhir/Patient", json=patient(), headers={**FHIR_JSON, "Prefer": "return=minimal"})
    assert r.status_code == 201 and r.content == b"" and "location" in r.headers
    r = client.post("/fhir/Patient", json=patient(), headers={**FHIR_JSON, "Prefer": "return=OperationOutcome"})
    assert r.status_code == 201 and r.json()["resourceType"] == "OperationOutcome"


def test_summary_and_elements_on_read(client: TestClient) -> None:
    pid = create(
        client,
        {
            **patient(),
            "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Ann</div>'},
        },
    )["id"]
    el = client.get(f"/fhir/Patient/{pid}?_elements=gender").json()
    assert set(el) == {"resourceType", "id", "meta", "gender"}
    assert any(t["code"] == "SUBSETTED" for t in el["meta"]["tag"])
    data = client.get(f"/fhir/Patient/{pid}?_summary=data").json()
    assert "text" not in data and "name" in data
    text = client.get(f"/fhir/Patient/{pid}?_summary=text").json()
    assert "text" in text and "name" not in text
    summary = client.get(f"/fhir/Patient/{pid}?_summary=true").json()
    assert "name" in summary and "text" not in summary


def test_format_negotiation(client: TestClient) -> None:
    assert client.get("/fhir/metadata?_format=json").status_code == 200
    r = client.get("/fhir/metadata?_format=xml")
    assert r.status_code == 406 and r.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"}).status_code == 406
    assert client.get("/fhir/metadata", headers={"Accept": "application/fhir+json"}).status_code == 200
    pretty = client.get("/fhir/metadata?_pretty=true")
    assert b"\n  " in pretty.content
