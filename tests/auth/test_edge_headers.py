"""The security edge's response headers, in order: with and without headers of the response's own, over http and
https, for FHIR and other paths, with a request id of the caller's or a new one."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sharedcare.auth.middleware import API_CSP, HSTS, OPEN_WARNING, SecurityEdge
from sharedcare.auth.ratelimit import RateLimiter

BASE = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]


def _run(own: list, path: str, scheme: str, request_id: bytes | None) -> tuple[list, list]:
    seen: dict[str, Any] = {}

    async def app(scope: dict, receive: Any, send: Any) -> None:
        seen["headers"] = scope["headers"]
        await send({"type": "http.response.start", "status": 200, "headers": own})
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    edge = SecurityEdge(app, tokens=None, limiter=RateLimiter(0, 1), record=lambda r: None)
    headers = [(b"host", b"x")] + ([(b"x-request-id", request_id)] if request_id is not None else [])
    scope = {"type": "http", "method": "GET", "path": path, "scheme": scheme, "headers": headers, "client": ("1", 1)}
    with ThreadPoolExecutor(1) as pool:  # a loop of its own, even when the test process already runs one
        pool.submit(asyncio.run, edge(scope, None, send)).result()
    return sent[0]["headers"], seen["headers"]


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("path", ["/fhir/Patient/1", "/fhir/metadata", "/patients"])
@pytest.mark.parametrize("own", [[], [(b"cache-control", b"max-age=60")], [(b"Content-Security-Policy", b"x")]])
def test_headers_in_order(own: list, path: str, scheme: str) -> None:
    out, _ = _run(list(own), path, scheme, b"caller-id-1")
    names = {k.lower() for k, _ in own}
    expected = [*own, *[h for h in BASE if h[0] not in names], (b"x-request-id", b"caller-id-1")]
    if b"content-security-policy" not in names:
        expected.append((b"content-security-policy", API_CSP))
    if path.startswith("/fhir/Patient") and b"cache-control" not in names:
        expected.append((b"cache-control", b"no-store"))
    if scheme == "https":
        expected.append((b"strict-transport-security", HSTS))
    expected.append((b"x-sharedcare-security", OPEN_WARNING.encode()))
    assert out == expected


@pytest.mark.parametrize("given", [None, b"", b"bad id!", b"good-id"])
def test_request_id_reaches_the_app_once(given: bytes | None) -> None:
    out, seen = _run([], "/fhir/Patient/1", "http", given)
    ids = [v for k, v in seen if k == b"x-request-id"]
    assert len(ids) == 1 and (b"x-request-id", ids[0]) in out
    assert ids[0] == b"good-id" if given == b"good-id" else ids[0] != given
