"""/healthz, /readyz, /metrics and the structured access log."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest
from starlette.testclient import TestClient

from sharedcare.api.observe import route_template
from sharedcare.app import build
from sharedcare.resilience.logs import JsonFormatter
from sharedcare.settings import Settings


def test_ready_when_storage_answers_and_schema_is_current(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready" and r.json()["schema_version"] == 2


def test_not_ready_while_migrations_are_pending(tmp_path: Path) -> None:
    server = build(Settings(db=f"sqlite:///{tmp_path / 'old.db'}", auto_migrate=False))
    try:
        with TestClient(server.asgi) as c:
            r = c.get("/readyz")
            assert r.status_code == 503 and "migrate" in r.json()["schema"]
            assert c.get("/healthz").status_code == 200
    finally:
        server.close()


def test_not_ready_when_storage_fails(tmp_path: Path) -> None:
    server = build(Settings(db=f"sqlite:///{tmp_path / 'x.db'}"))
    try:
        with TestClient(server.asgi) as c:
            server.store.reading = _broken  # type: ignore[method-assign]
            r = c.get("/readyz")
            assert r.status_code == 503 and r.json()["storage"].startswith("unreachable")
    finally:
        del server.store.reading
        server.close()


def _broken() -> None:
    raise OSError("disk gone")


def test_metrics_count_requests_by_route_template_never_by_id(client: TestClient) -> None:
    created = client.post(
        "/fhir/Patient", json={"resourceType": "Patient"}, headers={"content-type": "application/fhir+json"}
    )
    pid = created.json()["id"]
    client.get(f"/fhir/Patient/{pid}")
    client.get("/fhir/Patient", params={"family": "Secret-Surname"})
    text = client.get("/metrics").text
    assert 'sharedcare_http_requests_total{method="GET",route="/fhir/{type}/{id}",status="200"} 1' in text
    assert 'sharedcare_http_request_duration_seconds_bucket{method="POST",route="/fhir/{type}",le="+Inf"} 1' in text
    assert "sharedcare_store_resources" in text and "sharedcare_feed_head_position" in text
    assert "sharedcare_http_in_flight" in text
    assert pid not in text and "Secret" not in text


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/fhir/Patient/123/_history/2", "/fhir/{type}/{id}/_history/{vid}"),
        ("/fhir/Patient/123", "/fhir/{type}/{id}"),
        ("/fhir/Patient/123/Observation", "/fhir/{type}/{id}/{type}"),
        ("/fhir/Patient/$validate", "/fhir/{type}/{operation}"),
        ("/fhir/metadata", "/fhir/metadata"),
        ("/fhir/_changes", "/fhir/_changes"),
        ("/fhir", "/fhir"),
        ("/readyz", "/readyz"),
        ("/wp-admin/x", "other"),
    ],
)
def test_route_templates(path: str, template: str) -> None:
    assert route_template(path) == template


def test_access_log_is_json_without_queries_or_ids(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sharedcare.access")
    client.get("/fhir/Patient/some-id-123", params={"name": "Jones"})
    record = next(r for r in caplog.records if r.name == "sharedcare.access")
    line = orjson.loads(JsonFormatter().format(record))
    assert line["route"] == "/fhir/{type}/{id}" and line["status"] == 404 and line["level"] == "info"
    assert "some-id-123" not in str(line) and "Jones" not in str(line)
