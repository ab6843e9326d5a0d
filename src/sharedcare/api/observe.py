"""Request metrics and the access log, as one pure ASGI middleware around everything else.

Each request is counted and timed under a route template (`/fhir/{type}/{id}`), never its concrete path or query:
label values stay bounded, and ids or search values (which can be personal data) never reach metrics or logs.
`extra_headers` lets the continuity replica stamp every response with how current its data is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sharedcare.resilience.logs import event
from sharedcare.resilience.metrics import Registry

log = logging.getLogger("sharedcare.access")
OPS_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics"})
KNOWN_SEGMENTS = frozenset({"metadata", "_history", "_search", "_changes"})


def route_template(path: str) -> str:
    """The shape of a path: `/fhir/Patient/123/_history/2` → `/fhir/{type}/{id}/_history/{vid}`."""
    if path in OPS_PATHS:
        return path
    segs = [s for s in path.split("/") if s]
    if not segs or segs[0] != "fhir":
        return "other"
    shape = ["fhir"]
    for n, seg in enumerate(segs[1:5]):
        if seg.startswith("$"):
            shape.append("{operation}")
        elif seg in KNOWN_SEGMENTS:
            shape.append(seg)
        elif n == 3 or shape[-1] == "_history":
            shape.append("{vid}")
        else:
            shape.append(("{type}", "{id}", "{type}")[n])
    if len(segs) > 5:
        shape.append("...")
    return "/" + "/".join(shape)


class Observe:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Registry,
        access_log: bool = True,
        extra_headers: Callable[[], list[tuple[bytes, bytes]]] | None = None,
    ) -> None:
        self.app, self.access_log, self.extra_headers = app, access_log, extra_headers
        self.requests = metrics.counter(
            "sharedcare_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
        )
        self.latency = metrics.histogram(
            "sharedcare_http_request_duration_seconds", "Time to answer, by route", ["method", "route"]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if self.extra_headers is not None:
                    message["headers"] = [*message.get("headers", []), *self.extra_headers()]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        method, route = scope["method"], route_template(scope["path"])
        self.requests.inc(method, route, str(status))
        self.latency.observe(elapsed, method, route)
        if self.access_log:
            event(log, logging.INFO, "request", method=method, route=route, status=status, ms=round(elapsed * 1000, 2))
