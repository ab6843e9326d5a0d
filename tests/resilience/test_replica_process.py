"""A primary and a continuity replica as real processes: write under load, kill -9 the primary, read from the
replica everything acknowledged before the moment the replica says its data is complete to; then the primary comes
back and the replica catches up."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

import httpx2 as httpx
import orjson
from crashkit import FHIR_JSON, Ledger, Proc, free_port, join, observation, run_writers, serve, wait_until


def replica_status(base: str) -> dict:
    return httpx.get(base + "/readyz", timeout=5).json()["replica"]


def test_replica_serves_everything_acknowledged_when_the_primary_dies(tmp_path: Path) -> None:
    primary = serve(f"sqlite:///{tmp_path / 'primary.db'}", tmp_path / "primary.log").start()
    replica_db = f"sqlite:///{tmp_path / 'replica.db'}"
    replica = Proc(["replica", "--primary", primary.base, "--db", replica_db], free_port(), tmp_path / "replica.log")
    replica.env["SHAREDCARE_REPLICA_WAIT_MS"] = "500"
    replica.start()
    try:
        ledger, stop = Ledger(), threading.Event()
        writers = run_writers(primary.base, ledger, 3, stop, seed=1)
        time.sleep(2.5)
        primary.kill()
        killed_at = time.time()
        stop.set()
        join(writers)

        # the replica keeps answering at once; it can no longer learn anything, so its "as of" stops moving
        first = httpx.get(replica.base + "/readyz", timeout=5)
        assert first.status_code == 200, first.text
        time.sleep(1.0)
        status = replica_status(replica.base)
        assert status["primary_reachable"] is False
        as_of = datetime.fromisoformat(status["as_of"].replace("Z", "+00:00")).timestamp()
        assert killed_at - as_of < 2.0, f"replica data only complete to {killed_at - as_of:.2f} s before the kill"

        covered = {k: v for k, v in ledger.acked.items() if ledger.ack_times[k] < as_of}
        assert len(covered) > 50 and len(covered) >= 0.8 * len(ledger.acked)
        with httpx.Client(base_url=replica.base + "/fhir", timeout=10) as client:
            for (rtype, rid, version), body in covered.items():
                r = client.get(f"/{rtype}/{rid}/_history/{version}")
                assert r.status_code == 200 and r.content == body, f"{rtype}/{rid}/{version} on the replica"
            _assert_read_only_continuity(client)

        primary.start()  # the primary returns; the replica catches up from where it was
        with httpx.Client(base_url=primary.base + "/fhir", timeout=10) as client:
            later = [
                client.post("/Observation", content=orjson.dumps(observation(n)), headers=FHIR_JSON) for n in range(20)
            ]
        assert all(r.status_code == 201 for r in later)
        last = orjson.loads(later[-1].content)["id"]
        wait_until(lambda: httpx.get(f"{replica.base}/fhir/Observation/{last}").status_code == 200, 10, "no catch-up")
        assert replica_status(replica.base)["primary_reachable"] is True
    finally:
        replica.stop()
        primary.stop()


def _assert_read_only_continuity(client: httpx.Client) -> None:
    r = client.post("/Patient", content=b'{"resourceType":"Patient"}', headers=FHIR_JSON)
    assert r.status_code == 503
    assert "read-only continuity mode" in r.json()["issue"][0]["diagnostics"]
    assert r.headers["retry-after"]
    search = client.get("/Patient", params={"_count": "5"})
    assert search.status_code == 200 and search.json()["resourceType"] == "Bundle"
    assert float(search.headers["x-sharedcare-replica-lag"]) >= 0
    assert search.headers["x-sharedcare-replica-as-of"]
