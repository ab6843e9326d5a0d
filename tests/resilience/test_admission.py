"""Admission control: bounded in-flight and queue; beyond them a fast 503 with Retry-After and an
OperationOutcome; probes bypass it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from sharedcare.api.admission import Admission
from sharedcare.resilience.metrics import Registry


async def slow_app(scope: Any, receive: Any, send: Any) -> None:
    await asyncio.sleep(0.3)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def call(app: Any, path: str = "/fhir/Patient") -> tuple[int, dict[str, str], bytes, float]:
    scope = {"type": "http", "method": "GET", "path": path, "headers": []}
    messages: list[dict[str, Any]] = []
    started = time.monotonic()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    headers = {k.decode(): v.decode() for k, v in messages[0].get("headers", [])}
    return messages[0]["status"], headers, messages[1]["body"], time.monotonic() - started


def test_beyond_capacity_requests_are_refused_at_once_with_retry_after() -> None:
    metrics = Registry()
    gate = Admission(slow_app, max_in_flight=2, max_queue=3, queue_timeout=5.0, retry_after=2, metrics=metrics)

    async def burst() -> list[tuple[int, dict[str, str], bytes, float]]:
        return await asyncio.gather(*(call(gate) for _ in range(10)))

    results = asyncio.run(burst())
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 503]
    assert len(ok) == 5 and len(refused) == 5  # 2 running + 3 queued are served; the rest refused
    for _, headers, body, elapsed in refused:
        assert headers["retry-after"] == "2" and elapsed < 0.1
        outcome = orjson.loads(body)
        assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "throttled"
    assert max(r[3] for r in ok) < 1.0  # the queued ones waited about one service time, not forever
    assert metrics.metrics["sharedcare_http_rejected_total"].value("queue-full") == 5  # type: ignore[attr-defined]
    assert gate.in_flight == 0 and gate.waiting == 0


def test_queued_requests_give_up_after_the_queue_timeout() -> None:
    gate = Admission(slow_app, max_in_flight=1, max_queue=5, queue_timeout=0.1)

    async def two() -> list[tuple[int, dict[str, str], bytes, float]]:
        return await asyncio.gather(call(gate), call(gate))

    statuses = sorted(r[0] for r in asyncio.run(two()))
    assert statuses == [200, 503] and gate.in_flight == 0


def test_probes_bypass_the_gate() -> None:
    gate = Admission(slow_app, max_in_flight=1, max_queue=0, queue_timeout=0.1)

    async def busy() -> list[tuple[int, dict[str, str], bytes, float]]:
        return await asyncio.gather(call(gate), call(gate), call(gate, "/healthz"))

    statuses = [r[0] for r in asyncio.run(busy())]
    assert statuses[1] == 503 and statuses[2] == 200


def test_a_client_that_goes_away_while_queued_gives_its_slot_back() -> None:
    gate = Admission(slow_app, max_in_flight=1, max_queue=5, queue_timeout=5.0)

    async def scenario() -> int:
        first = asyncio.ensure_future(call(gate))
        await asyncio.sleep(0.01)
        waiting = asyncio.ensure_future(call(gate))
        await asyncio.sleep(0.01)
        waiting.cancel()
        await first
        status = (await call(gate))[0]
        return status

    assert asyncio.run(scenario()) == 200 and gate.in_flight == 0 and gate.waiting == 0
