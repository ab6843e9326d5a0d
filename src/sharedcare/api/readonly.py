"""Read-only continuity mode: the replica serves every read and refuses every write with a clear answer.

A refused write gets 503 (the service the client wants, writing, is unavailable here for now), `Retry-After`, and
an OperationOutcome that says why, so a clinician's system can tell "try again on the primary later" from a fault.
POSTs that only read (`_search`, `$validate`) still pass.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from sharedcare.fhir.outcome import outcome_bytes
from sharedcare.types import Issue

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MESSAGE = (
    "read-only continuity mode: this server is a continuity replica and keeps serving the record while the "
    "primary is unavailable, but it cannot accept changes. Send this change to the primary server."
)


def is_read(method: str, path: str) -> bool:
    if method not in WRITE_METHODS:
        return True
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return method == "POST" and (last == "_search" or last == "$validate")


class ReadOnly:
    def __init__(self, app: ASGIApp, *, retry_after: int = 30) -> None:
        self.app, self.retry_after = app, retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_read(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        body = outcome_bytes([Issue("error", "transient", MESSAGE)])
        headers = [
            (b"content-type", b"application/fhir+json; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(self.retry_after).encode()),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
