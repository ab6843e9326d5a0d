"""The security edge, one pure ASGI middleware in front of everything:

1. a request id: the caller's `X-Request-ID` if well-formed, else a new one; echoed on the response;
2. authentication of `/fhir/*` (except `metadata`): a valid bearer token, else 401 with an OperationOutcome and
   `WWW-Authenticate` (RFC 6750); the Actor is handed on in the ASGI scope (`sharedcare.actor`);
   in the development open mode every request gets the open-mode actor and the response says so loudly;
3. rate limiting per client (token bucket; 429 with Retry-After and an OperationOutcome);
4. security headers on every response: nosniff, no referrer, no framing, a CSP, HSTS over https, and
   `Cache-Control: no-store` on FHIR responses (they carry personal data).
Refusals (401, 429) are audited like any other request.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sharedcare.access.actor import DEV_OPEN, Actor, new_request_id
from sharedcare.access.policy import now_instant
from sharedcare.audit.events import OUTCOME_MINOR, AuditRecord
from sharedcare.auth.ratelimit import RateLimiter, retry_after
from sharedcare.auth.tokens import InvalidToken, TokenService

ACTOR_KEY = "sharedcare.actor"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
PUBLIC_FHIR = ("/fhir/metadata", "/fhir/.well-known/smart-configuration")
OPERATOR_PATHS = ("/fhir/_bulk/", "/fhir/_changes", "/fhir/$import")  # outside the boundary
OWNED_PATHS = ("/fhir/_bulk/",)  # files of a bound export: its requester may fetch them (the route checks who)
OPEN_WARNING = "open development mode: NO AUTHENTICATION, NO ACCESS CONTROL"
BASE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
OWN_HEADERS = frozenset({*(k for k, _ in BASE_HEADERS), b"content-security-policy", b"cache-control"})  # kept if set
HSTS = b"max-age=31536000; includeSubDomains"


class SecurityEdge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: TokenService | None,
        limiter: RateLimiter,
        record: Callable[[AuditRecord], None],
        client_rate: Callable[[str], float | None] = lambda client_id: None,
        own_bearer_paths: tuple[str, ...] = (),
    ) -> None:
        self.app, self.tokens, self.limiter, self.record = app, tokens, limiter, record
        self.own_bearer_paths = own_bearer_paths  # endpoints that check a bearer of their own (the change feed)
        self.client_rate = client_rate
        self.open = tokens is None
        self._last_throttle_audit: dict[str, float] = {}
        self._tails = {(p, h): self._tail(p, h) for p in (False, True) for h in (False, True)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = self._request_id(given)
        rid = (b"x-request-id", request_id.encode())
        scope = dict(scope)
        if given is None:
            scope["headers"] = [*scope["headers"], rid]
        else:  # the caller's, replaced by the one in use (the same when it was well-formed)
            scope["headers"] = [*(h for h in scope["headers"] if h[0] != b"x-request-id"), rid]
        send = self._secured_send(scope, send, rid)
        path: str = scope["path"]
        if not path.startswith("/fhir") or path in PUBLIC_FHIR:
            await self.app(scope, receive, send)
            return
        address = scope["client"][0] if scope.get("client") else "unknown"
        actor, problem = self._authenticate(scope, address)
        if actor is None and path in self.own_bearer_paths:
            await self.app(scope, receive, send)  # not one of our tokens: the endpoint checks its own
            return
        if actor is None:
            self._audit_refusal(_anonymous(address), request_id, "Authentication failed: " + problem[1])
            await _outcome(send, 401, "login", problem[1], [(b"www-authenticate", problem[0].encode())])
            return
        wait = self._rate(actor)
        if wait:
            self._audit_throttle(actor, request_id)
            headers = [(b"retry-after", retry_after(wait).encode())]
            await _outcome(send, 429, "throttled", "Too many requests from this client; slow down", headers)
            return
        if path.startswith(OPERATOR_PATHS) and not actor.unrestricted and not _may_fetch_owned(path, scope):
            self._audit_refusal(actor, request_id, "Operator-only endpoint refused")
            await _outcome(send, 403, "forbidden", "This endpoint is for the store's operator only", [])
            return
        scope[ACTOR_KEY] = actor
        await self.app(scope, receive, send)

    # --- authentication -----------------------------------------------------------------------------------
    def _authenticate(self, scope: Scope, address: str) -> tuple[Actor | None, tuple[str, str]]:
        if self.tokens is None:
            return _dev_actor(address), ("", "")
        header = _header(scope, b"authorization")
        if not header or not header.lower().startswith("bearer "):
            return None, ('Bearer realm="sharedcare"', "A bearer access token is required")
        try:
            actor = self.tokens.actor(header[7:].strip(), address)
        except InvalidToken as exc:
            message = str(exc)
            return None, (f'Bearer realm="sharedcare", error="invalid_token", error_description="{message}"', message)
        return actor, ("", "")

    def _rate(self, actor: Actor) -> float:
        if self.open or not self.limiter.enabled or actor.unrestricted:
            return 0.0
        return self.limiter.take(f"client:{actor.client_id}", self.client_rate(actor.client_id))

    # --- audit of refusals --------------------------------------------------------------------------------
    def _audit_refusal(self, actor: Actor, request_id: str, desc: str) -> None:
        self.record(AuditRecord(actor, request_id, "rest", "E", OUTCOME_MINOR, now_instant(), outcome_desc=desc))

    def _audit_throttle(self, actor: Actor, request_id: str) -> None:
        """At most one audit record per client per ten seconds of throttling, so a flood cannot flood the trail."""
        now = time.monotonic()
        if now - self._last_throttle_audit.get(actor.client_id, 0.0) < 10:
            return
        self._last_throttle_audit[actor.client_id] = now
        self._audit_refusal(actor, request_id, "Rate limit exceeded (429); further refusals in 10 s not recorded")

    # --- responses ----------------------------------------------------------------------------------------
    def _request_id(self, given: str | None) -> str:
        return given if given and REQUEST_ID.match(given) else new_request_id()

    def _secured_send(self, scope: Scope, send: Send, rid: tuple[bytes, bytes]) -> Send:
        path: str = scope["path"]
        personal = path.startswith("/fhir") and path not in PUBLIC_FHIR
        https = scope.get("scheme") == "https"
        added = [*BASE_HEADERS, rid, *self._tails[personal, https]]  # when the response sets none of them

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if names.isdisjoint(OWN_HEADERS):
                    headers += added
                else:
                    headers += [h for h in BASE_HEADERS if h[0] not in names]
                    headers.append(rid)
                    if b"content-security-policy" not in names:
                        headers.append((b"content-security-policy", API_CSP))
                    if personal and b"cache-control" not in names:
                        headers.append((b"cache-control", b"no-store"))
                    if https:
                        headers.append((b"strict-transport-security", HSTS))
                    if self.open:
                        headers.append((b"x-sharedcare-security", OPEN_WARNING.encode()))
                message = {**message, "headers": headers}
            await send(message)

        return secured

    def _tail(self, personal: bool, https: bool) -> tuple[tuple[bytes, bytes], ...]:
        """The headers after the request id, for a response that sets none of its own."""
        tail = [(b"content-security-policy", API_CSP)]
        if personal:
            tail.append((b"cache-control", b"no-store"))
        if https:
            tail.append((b"strict-transport-security", HSTS))
        if self.open:
            tail.append((b"x-sharedcare-security", OPEN_WARNING.encode()))
        return tuple(tail)


@functools.lru_cache(maxsize=1024)
def _dev_actor(address: str) -> Actor:
    return replace(DEV_OPEN, address=address)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _anonymous(address: str) -> Actor:
    return Actor("anonymous", "unauthenticated", "none", "unknown", address=address)


async def _outcome(send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = orjson.dumps(
        {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": message}]}
    )
    all_headers = [
        (b"content-type", b"application/fhir+json; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


def client_rate_cache(
    lookup: Callable[[str], Any], ttl: float = 60.0, share: float = 1.0
) -> Callable[[str], float | None]:
    """Per-client rate overrides from the registry, cached briefly so the edge does not query per request;
    `share` is this process's part of the rate when several serve the port."""
    cache: dict[str, tuple[float | None, float]] = {}

    def rate(client_id: str) -> float | None:
        now = time.monotonic()
        hit = cache.get(client_id)
        if hit is not None and now - hit[1] < ttl:
            return hit[0]
        client = lookup(client_id)
        value = float(client.rate_limit) * share if client is not None and client.rate_limit else None
        cache[client_id] = (value, now)
        return value

    return rate


def _may_fetch_owned(path: str, scope: Any) -> bool:
    """GET of a bulk export file by a non-operator: let the route decide (only the export's requester may)."""
    return path.startswith(OWNED_PATHS) and scope.get("method") in ("GET", "HEAD") and path.count("/") == 4
