"""The /fhir fast lane answers exactly as the Starlette route it bypasses: same status, headers and body."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient
from test_crud import FHIR_JSON, patient

from sharedcare.api.asgi import FhirLane
from sharedcare.app import Server

VOLATILE = {"date", "x-request-id"}
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # a Bundle's own id


def _lane(server: Server) -> FhirLane:
    app: Any = server.asgi.middleware_stack
    while not isinstance(app, FhirLane):
        app = app.app
    return app


def _answer(client: TestClient, method: str, url: str, headers: dict[str, str]) -> tuple[int, list, bytes]:
    r = client.request(method, url, headers=headers)
    return r.status_code, [(k, v) for k, v in r.headers.multi_items() if k not in VOLATILE], UUID.sub(b"-", r.content)


REQUESTS = [
    ("GET", "/fhir/Patient/{id}", {}),
    ("HEAD", "/fhir/Patient/{id}", {}),
    ("GET", "/fhir/Patient/{id}?_pretty=true", {}),
    ("GET", "/fhir/Patient/{id}?_pretty=false&_pretty=true", {}),
    ("GET", "/fhir/Patient/{id}?_format=json", {}),
    ("GET", "/fhir/Patient/{id}?_format=xml", {}),
    ("GET", "/fhir/Patient/{id}", {"accept": "application/fhir+xml"}),
    ("GET", "/fhir/Patient/{id}", {"if-none-match": 'W/"1"'}),
    ("GET", "/fhir/Patient/{id}/_history/1", {}),
    ("GET", "/fhir/Patient/{id}/_history/9", {}),
    ("GET", "/fhir/Patient/nope", {}),
    ("GET", "/fhir/Patient/bad$id", {}),
    ("GET", "/fhir/Spaceship/1", {}),
    ("GET", "/fhir/Patient/{id}/", {}),
    ("GET", "/fhir//Patient//{id}", {}),
    ("GET", "/fhir/Patient/{id}/$everything?_count=1&_pretty=true", {}),
    ("DELETE", "/fhir/Patient", {}),
    ("PUT", "/fhir/Patient/{id}", {"content-type": "text/plain"}),
    ("OPTIONS", "/fhir/Patient/{id}", {}),
    ("GET", "/fhir/metadata?_pretty=true", {}),
    ("GET", "/fhir/_bulk/nojob/nofile", {}),
    ("GET", "/fhirish", {}),
]


@pytest.mark.parametrize(("method", "url", "headers"), REQUESTS)
def test_lane_answers_as_the_router(
    client: TestClient, server: Server, monkeypatch: pytest.MonkeyPatch, method: str, url: str, headers: dict
) -> None:
    pid = client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON).json()["id"]
    url = url.format(id=pid)
    fast = _answer(client, method, url, headers)
    monkeypatch.setattr(_lane(server), "_rest", lambda scope: None)  # every request through the router
    assert _answer(client, method, url, headers) == fast


def test_lane_takes_fhir_requests_only(client: TestClient, server: Server) -> None:
    client.get("/fhir/metadata")
    lane = _lane(server)

    def scope(path: str, method: str = "GET", **extra: Any) -> dict:
        return {"type": "http", "method": method, "path": path, "root_path": "", **extra}

    assert lane._rest(scope("/fhir")) == ""
    assert lane._rest(scope("/fhir/")) == ""
    assert lane._rest(scope("/fhir/Patient/1")) == "Patient/1"
    assert lane._rest(scope("/fhir/Patient/1", "DELETE")) == "Patient/1"
    assert lane._rest(scope("/fhir/Patient/1", "OPTIONS")) is None
    assert lane._rest(scope("/fhir/Patient/1", root_path="/api")) is None
    assert lane._rest(scope("/fhir/Patient/1\n")) is None
    assert lane._rest(scope("/fhirish")) is None
    assert lane._rest(scope("/healthz")) is None
    for routed in ("/fhir/_changes", "/fhir/_bulk/job/file", "/fhir/$import", "/fhir/.well-known/smart-configuration"):
        assert lane._rest(scope(routed)) is None


def test_unexpected_error_is_an_outcome_on_both_ways(
    client: TestClient, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON).json()["id"]
    lane = _lane(server)

    def boom(req: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(lane.endpoint, "route", boom)
    fast = _answer(client, "GET", f"/fhir/Patient/{pid}", {})
    monkeypatch.setattr(lane, "_rest", lambda scope: None)
    assert _answer(client, "GET", f"/fhir/Patient/{pid}", {}) == fast
    status, headers, body = fast
    assert status == 500 and b'"exception"' in body
    assert ("content-type", "application/fhir+json; charset=utf-8") in headers
