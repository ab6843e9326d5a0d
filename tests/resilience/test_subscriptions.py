"""R4 Subscription rest-hook notifications from the change feed: criteria matched through the search compiler,
payload or ping, channel headers sent, endpoints outside the allowed prefixes never called."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sharedcare.app import build
from sharedcare.settings import Settings

FHIR_JSON = {"content-type": "application/fhir+json"}
LOINC_BILIRUBIN = "http://loinc.org|1975-2"


class Receiver:
    """A rest-hook endpoint that records what it is sent."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                calls.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            do_POST = do_PUT = _record  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.calls) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.calls


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.httpd.shutdown()
    r.httpd.server_close()


def subscription(criteria: str, endpoint: str, payload: str | None = None, header: list[str] | None = None) -> dict:
    channel: dict[str, Any] = {"type": "rest-hook", "endpoint": endpoint}
    if payload:
        channel["payload"] = payload
    if header:
        channel["header"] = header
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "test",
        "criteria": criteria,
        "channel": channel,
    }


def observation(code: str) -> dict:
    system, _, value = code.partition("|")
    return {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": system, "code": value}]}}


def test_rest_hook_notifications(tmp_path: Path, receiver: Receiver) -> None:
    settings = Settings(
        db=f"sqlite:///{tmp_path / 's.db'}", subscription_endpoints=receiver.url + "/", auth_required=False
    )
    server = build(settings)
    try:
        with TestClient(server.asgi) as c:
            subs = [
                subscription(
                    f"Observation?code={LOINC_BILIRUBIN}",
                    receiver.url + "/hook",
                    "application/fhir+json",
                    ["Authorization: Bearer abc"],
                ),
                subscription("Patient?family=Smith", receiver.url + "/ping"),
                subscription(f"Observation?code={LOINC_BILIRUBIN}", "http://169.254.169.254/latest"),  # not allowed
            ]
            for s in subs:
                assert c.post("/fhir/Subscription", json=s, headers=FHIR_JSON).status_code == 201
            time.sleep(0.6)  # the dispatcher loads the Subscriptions from the feed
            matching = c.post("/fhir/Observation", json=observation(LOINC_BILIRUBIN), headers=FHIR_JSON)
            c.post("/fhir/Observation", json=observation("http://loinc.org|8867-4"), headers=FHIR_JSON)
            c.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": "Smith"}]}, headers=FHIR_JSON)
            c.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": "Jones"}]}, headers=FHIR_JSON)
            calls = receiver.wait_for(2)
            time.sleep(0.5)  # and nothing more arrives
            metrics = c.get("/metrics").text
    finally:
        server.close()
    assert len(calls) == 2, [(x["method"], x["path"]) for x in calls]
    put = next(x for x in calls if x["method"] == "PUT")
    oid = matching.json()["id"]
    assert put["path"] == f"/hook/Observation/{oid}" and put["body"] == matching.content
    assert put["headers"]["Authorization"] == "Bearer abc"
    assert put["headers"]["content-type"] == "application/fhir+json"
    ping = next(x for x in calls if x["method"] == "POST")
    assert ping["path"] == "/ping" and ping["body"] == b""
    assert 'sharedcare_subscription_notifications_total{outcome="delivered"} 2' in metrics
    assert 'outcome="endpoint-not-allowed"' in metrics


def test_no_dispatcher_without_allowed_endpoints(tmp_path: Path) -> None:
    server = build(Settings(db=f"sqlite:///{tmp_path / 's.db'}"))
    try:
        assert server.ops is not None and server.ops.dispatcher is None and not server.ops.workers
    finally:
        server.close()
