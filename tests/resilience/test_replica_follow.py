"""The replica's follower, in process, against a primary on each backend: it copies every version verbatim
(through the feed's wire format), its copy passes `check` and has the primary's manifest, and it refuses to
follow a primary whose feed was renumbered."""

from __future__ import annotations

from pathlib import Path

import orjson
from starlette.testclient import TestClient

from sharedcare.api.ops import feed_bytes
from sharedcare.app import Server, build
from sharedcare.resilience.backup import compute_manifest
from sharedcare.resilience.check import check_store
from sharedcare.resilience.feedclient import parse_page
from sharedcare.resilience.metrics import Registry
from sharedcare.resilience.replica import Follower
from sharedcare.settings import Settings
from sharedcare.store.changes import ChangeFeed, ChangePage

FHIR_JSON = {"content-type": "application/fhir+json"}


class WireClient:
    """The FeedClient's interface, going through the exact bytes the HTTP feed sends, without a socket."""

    def __init__(self, feed: ChangeFeed) -> None:
        self.feed = feed

    def get(self, since: int, count: int, wait: float) -> ChangePage:
        return parse_page(orjson.loads(feed_bytes(self.feed.read(since, count), as_base64=True)))

    def close(self) -> None:
        pass


def _content(server: Server) -> dict:
    with server.store.reading() as cur:
        return compute_manifest(cur, server.store.dialect.name).content()


def _follower(primary: Server, replica: Server, batch: int = 7) -> Follower:
    client = WireClient(ChangeFeed(primary.store))
    follower = Follower(replica.store, replica.repo.indexer, client, Registry(), batch=batch, wait=0)  # type: ignore[arg-type]
    follower.load()
    return follower


def _catch_up(follower: Follower) -> None:
    while follower.poll_once() or follower.state.position < follower.state.primary_head:
        pass


def test_follower_copies_every_version_verbatim(server: Server, client: TestClient, tmp_path: Path) -> None:
    ids = [
        client.post(
            "/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": f"R{n}"}]}, headers=FHIR_JSON
        ).json()["id"]
        for n in range(12)
    ]
    client.put(
        f"/fhir/Patient/{ids[0]}", json={"resourceType": "Patient", "id": ids[0], "gender": "other"}, headers=FHIR_JSON
    )
    client.delete(f"/fhir/Patient/{ids[1]}")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}] * 9,
    }
    assert client.post("/fhir", json=bundle, headers=FHIR_JSON).status_code == 200
    replica = build(Settings(db=f"sqlite:///{tmp_path / 'replica.db'}", replica_primary="http://primary.invalid"))
    try:
        follower = _follower(server, replica)
        _catch_up(follower)
        assert _content(replica) == _content(server)
        assert check_store(replica.store, replica.repo.indexer).ok
        assert replica.store.read("Patient", ids[0]) == server.store.read("Patient", ids[0])
        assert replica.store.search_ids("Patient", [("family", "R5")]) == [ids[5]]  # indexed like the primary
        assert follower.lag() is not None and follower.lag() < 5  # type: ignore[operator]

        client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON)
        _catch_up(follower)
        assert _content(replica) == _content(server)

        restarted = _follower(server, replica)  # a restarted replica resumes from its saved position
        assert restarted.state.position == follower.state.position and restarted.poll_once() == 0
    finally:
        replica.close()


def test_follower_stops_when_the_primary_feed_is_renumbered(server: Server, client: TestClient, tmp_path: Path) -> None:
    client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON)
    replica = build(Settings(db=f"sqlite:///{tmp_path / 'replica.db'}", replica_primary="http://primary.invalid"))
    try:
        follower = _follower(server, replica)
        _catch_up(follower)
        with server.store.writing() as cur:  # what a restore does to the primary
            cur.execute("UPDATE meta SET value = 'another-epoch' WHERE key = 'feed_epoch'")
        client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON)
        assert follower.poll_once() == 0
        assert "renumbered" in follower.status()["stopped"]
    finally:
        replica.close()


def test_follower_will_not_merge_into_a_store_that_has_its_own_data(server: Server, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    own = build(Settings(db=url))
    own.repo.create("Patient", {"resourceType": "Patient"})
    own.close()
    replica = build(Settings(db=url, replica_primary="http://primary.invalid"))
    try:
        assert "already holds data" in _follower(server, replica).status()["stopped"]
    finally:
        replica.close()
