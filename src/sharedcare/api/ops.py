"""Operational endpoints, outside the FHIR router: `/healthz`, `/readyz`, `/metrics` and the change feed.

- `/healthz`: the process is alive and its event loop answers (never touches storage).
- `/readyz`: storage answers within a few seconds and its schema is current; 503 with the reason otherwise. The
  body is JSON with the details (on a replica: how current its data is).
- `/metrics`: Prometheus text format.
- `GET /fhir/_changes?since=POS&_count=N&_wait=S[&_body=base64]`: every committed change after position POS, in
  commit order, as JSON: `{"epoch", "since", "position", "head", "complete", "asOf", "entries": [{"position",
  "type", "id", "version", "lastUpdated", "method", "resource" | "body" | "deleted"}]}`. Resume with
  `since=<position>`. `_wait` long-polls up to S seconds (max 30) for something new. `_body=base64` carries each
  version's stored bytes base64-encoded instead of spliced in as JSON, for consumers that must keep them exact.
  When `feed_token` is set, the feed asks for `Authorization: Bearer <token>`: it exposes every record.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sharedcare.errors import FhirError, InvalidRequest, Unauthorized
from sharedcare.fhir.outcome import outcome_bytes

MAX_WAIT = 30.0
MAX_COUNT = 5000
POLL_INTERVAL = 0.05
FHIR_JSON = "application/fhir+json; charset=utf-8"


class ChangeLike(Protocol):
    position: int
    type: str
    id: str
    version: int
    last_updated: str
    method: str
    body: bytes | None


class PageLike(Protocol):
    epoch: str
    since: int
    head: int

    @property
    def entries(self) -> Sequence[ChangeLike]: ...

    @property
    def position(self) -> int: ...

    @property
    def complete(self) -> bool: ...


@dataclass
class OpsHooks:
    """What the endpoints need, as plain callables (blocking ones run on worker threads)."""

    readiness: Callable[[], tuple[bool, dict[str, Any]]]
    metrics: Callable[[], bytes]
    feed: Callable[[int, int], PageLike] | None = None
    feed_head: Callable[[], int] | None = None
    feed_token: str = ""
    readiness_timeout: float = 3.0


def ops_routes(hooks: OpsHooks) -> list[BaseRoute]:
    async def healthz(request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            ok, info = await asyncio.wait_for(run_in_threadpool(hooks.readiness), hooks.readiness_timeout)
        except TimeoutError:
            ok, info = False, {"storage": f"no answer within {hooks.readiness_timeout} s"}
        except Exception as exc:  # storage down: say so, never a stack trace
            ok, info = False, {"storage": f"unreachable: {type(exc).__name__}"}
        return _json({"status": "ready" if ok else "unavailable", **info}, 200 if ok else 503)

    async def metrics(request: Request) -> Response:
        body = await run_in_threadpool(hooks.metrics)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def changes(request: Request) -> Response:
        try:
            return await _changes(request, hooks)
        except FhirError as err:
            headers = {"www-authenticate": "Bearer"} if err.status == 401 else {}
            return Response(outcome_bytes(err.issues), err.status, headers, media_type=FHIR_JSON)

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if hooks.feed is not None:
        routes.append(Route("/fhir/_changes", changes, methods=["GET"]))
    return routes


async def _changes(request: Request, hooks: OpsHooks) -> Response:
    assert hooks.feed is not None and hooks.feed_head is not None
    _authorise(request, hooks.feed_token)
    since = _number(request, "since", 0, int)
    count = min(_number(request, "_count", 1000, int), MAX_COUNT) or 1
    wait = min(_number(request, "_wait", 0.0, float), MAX_WAIT)
    page = await run_in_threadpool(hooks.feed, since, count)
    deadline = asyncio.get_running_loop().time() + wait
    while not page.entries and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(POLL_INTERVAL)
        if await run_in_threadpool(hooks.feed_head) > since:
            page = await run_in_threadpool(hooks.feed, since, count)
    as_base64 = request.query_params.get("_body") == "base64"
    return Response(feed_bytes(page, as_base64), media_type="application/json")


def feed_bytes(page: PageLike, as_base64: bool = False) -> bytes:
    """The page as JSON; stored bytes are spliced in unchanged (or base64-encoded), never re-serialised."""
    head = {
        "epoch": page.epoch,
        "since": page.since,
        "position": page.position,
        "head": page.head,
        "complete": page.complete,
        "asOf": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    parts = [orjson.dumps(head)[:-1], b',"entries":[']
    for n, c in enumerate(page.entries):
        envelope: dict[str, Any] = {
            "position": c.position,
            "type": c.type,
            "id": c.id,
            "version": c.version,
            "lastUpdated": c.last_updated,
            "method": c.method,
        }
        if c.body is None:
            envelope["deleted"] = True
        elif as_base64:
            envelope["body"] = base64.b64encode(c.body).decode()
        parts.append(b"," if n else b"")
        if c.body is None or as_base64:
            parts.append(orjson.dumps(envelope))
        else:
            parts += [orjson.dumps(envelope)[:-1], b',"resource":', c.body, b"}"]
    parts.append(b"]}")
    return b"".join(parts)


def _authorise(request: Request, token: str) -> None:
    if not token:
        return
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise Unauthorized("The change feed needs an Authorization: Bearer token")


def _number(request: Request, name: str, default: Any, kind: type) -> Any:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be a non-negative number, got '{raw[:40]}'") from None
    if value < 0:
        raise InvalidRequest(f"{name} must be a non-negative number, got '{raw[:40]}'")
    return value


def _json(data: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")
