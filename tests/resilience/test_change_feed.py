"""The change feed: one total order, commit-ordered, resumable, never splitting a transaction; and over HTTP."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

import orjson
from starlette.testclient import TestClient

from sharedcare.app import Server, build
from sharedcare.settings import Settings
from sharedcare.store.changes import ChangeFeed

FHIR_JSON = {"content-type": "application/fhir+json"}


def _patient(n: int) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": f"Feed{n}"}]}


def _slow_writer(server: Server, stop: threading.Event, out: list[str], lock: threading.Lock, delay: float) -> None:
    """Creates, some holding their transaction open a moment after taking a sequence number, as a slow commit would."""
    n = 0
    while not stop.is_set():
        n += 1

        def work(txn: Any, n: int = n) -> str:
            result = server.repo.create_in(txn, "Patient", _patient(n), None)
            if n % 3 == 0:
                time.sleep(delay)  # others take later seq numbers and commit first
            return result.stored.id

        rid = server.store.transact(work)
        with lock:
            out.append(rid)


def test_a_consumer_that_resumes_from_its_position_misses_nothing_under_concurrent_writers(server: Server) -> None:
    feed, stop, lock = ChangeFeed(server.store), threading.Event(), threading.Lock()
    created: list[str] = []
    writers = [
        threading.Thread(target=_slow_writer, args=(server, stop, created, lock, 0.01 * (k + 1))) for k in range(6)
    ]
    for w in writers:
        w.start()
    seen: list[tuple[int, str]] = []
    position, deadline = 0, time.monotonic() + 2.0
    while time.monotonic() < deadline:  # read small pages while the writers run, resuming from each position
        page = feed.read(position, 5)
        seen += [(c.position, c.id) for c in page.entries if c.type == "Patient"]
        position = page.position
    stop.set()
    for w in writers:
        w.join()
    while (page := feed.read(position, 100)).entries:
        seen += [(c.position, c.id) for c in page.entries if c.type == "Patient"]  # hooks may add other types
        position = page.position
    positions = [p for p, _ in seen]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert sorted(rid for _, rid in seen) == sorted(created), "the consumer skipped or repeated changes"
    assert len(created) > 20


def test_a_page_never_splits_a_transaction(client: TestClient, server: Server) -> None:
    client.post("/fhir/Patient", json=_patient(0), headers=FHIR_JSON)
    entries = [{"resource": _patient(k), "request": {"method": "POST", "url": "Patient"}} for k in range(10)]
    r = client.post(
        "/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}, headers=FHIR_JSON
    )
    assert r.status_code == 200
    feed = ChangeFeed(server.store)
    head = feed.read(0, 1)  # the single create (and whatever its write hooks added in its transaction)
    page = feed.read(head.position, 3)
    patients = [c for c in page.entries if c.type == "Patient"]
    assert len(patients) == 10 and page.complete  # asked for 3; got all of the Bundle's transaction
    assert len({c.last_updated for c in page.entries}) == 1


def test_http_feed_pages_resumes_and_keeps_bytes_exact(client: TestClient) -> None:
    bodies = [client.post("/fhir/Patient", json=_patient(k), headers=FHIR_JSON).content for k in range(5)]
    pid = orjson.loads(bodies[0])["id"]
    assert client.delete(f"/fhir/Patient/{pid}").status_code == 204
    page = client.get("/fhir/_changes", params={"since": 0, "_count": 1}).json()
    assert page["entries"][0]["position"] == 1 and page["position"] >= 1 and not page["complete"]
    assert page["entries"][0]["resource"]["id"] == pid
    rest = client.get("/fhir/_changes", params={"since": page["position"], "_body": "base64"}).json()
    exact = [base64.b64decode(e["body"]) for e in rest["entries"] if e["type"] == "Patient" and "body" in e]
    assert exact == bodies[1:]
    assert rest["head"] == rest["position"] == rest["entries"][-1]["position"]
    deletion = [e for e in rest["entries"] if e["type"] == "Patient"][-1]
    assert deletion["deleted"] is True and deletion["method"] == "DELETE" and "resource" not in deletion
    assert rest["complete"] and rest["epoch"] == page["epoch"]
    bad = client.get("/fhir/_changes", params={"since": "x"})
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"


def test_http_feed_long_polls_until_something_changes(client: TestClient) -> None:
    head = client.get("/fhir/_changes").json()["head"]
    threading.Timer(0.3, lambda: client.post("/fhir/Patient", json=_patient(1), headers=FHIR_JSON)).start()
    started = time.monotonic()
    page = client.get("/fhir/_changes", params={"since": head, "_wait": 10}).json()
    assert page["entries"][0]["type"] == "Patient" and time.monotonic() - started < 5


def test_feed_token_is_required_when_configured(tmp_path: Any) -> None:
    server = build(Settings(db=f"sqlite:///{tmp_path / 'f.db'}", feed_token="s3cret", auth_required=False))
    try:
        with TestClient(server.asgi) as c:
            denied = c.get("/fhir/_changes")
            assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
            assert c.get("/fhir/_changes", headers={"authorization": "Bearer wrong"}).status_code == 401
            assert c.get("/fhir/_changes", headers={"authorization": "Bearer s3cret"}).status_code == 200
    finally:
        server.close()
