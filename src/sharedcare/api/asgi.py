"""The Starlette adapter: HTTP ⇄ FhirRequest/FhirResponse. The only module that knows about HTTP.

FHIR requests are answered by `FhirEndpoint`, a plain ASGI app working from the scope. `FhirLane`, the innermost
middleware, hands it `/fhir` requests directly: Starlette's router (a regex match per route), its Request and
Response objects and its exception layers do nothing for them but cost a large share of a read's time. Whatever
the lane is not certain of (another route under `/fhir`, a method the catch-all does not take, a root path, an odd
path) goes through the router as before and reaches the same endpoint, so both ways answer alike.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL, QueryParams
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sharedcare.api.negotiation import check_accept, check_content_type
from sharedcare.errors import FhirError, InvalidRequest, PayloadTooLarge
from sharedcare.fhir.outcome import outcome_bytes
from sharedcare.fhir.resource import json_depth_exceeds
from sharedcare.types import FhirRequest, FhirResponse, Issue

log = logging.getLogger("sharedcare.api")
FHIR_JSON = "application/fhir+json; charset=utf-8"
FHIR_JSON_BYTES = FHIR_JSON.encode("latin-1")
BODY_METHODS = ("POST", "PUT", "PATCH")
FHIR_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
ACTOR_KEY = "sharedcare.actor"  # set by the security edge (sharedcare.auth.middleware)
RawHeaders = list[tuple[bytes, bytes]]


def build_asgi(
    route: Callable[[FhirRequest], FhirResponse],
    *,
    max_body_bytes: int,
    max_json_depth: int,
    extra_routes: Sequence[BaseRoute] = (),
    middleware: Sequence[Middleware] = (),
    lifespan: Any = None,
) -> Starlette:
    fhir = FhirEndpoint(route, max_body_bytes, max_json_depth)

    async def root(request: Request) -> Response:
        return RedirectResponse("/fhir/metadata")

    under_fhir = [r for r in extra_routes if getattr(r, "path", "").startswith("/fhir/")]
    routes = [
        *under_fhir,  # the change feed, bulk files and the like, ahead of the /fhir catch-all
        Route("/fhir", fhir, methods=list(FHIR_METHODS), name="fhir"),
        Route("/fhir/{rest:path}", fhir, methods=list(FHIR_METHODS), name="fhir"),
        *[r for r in extra_routes if r not in under_fhir],  # web pages and ops endpoints: not tried for /fhir
        Route("/", root, methods=["GET"]),
    ]
    lane = Middleware(FhirLane, endpoint=fhir, routed=tuple(_static_prefix(r.path) for r in under_fhir))
    return Starlette(routes=routes, middleware=[*middleware, lane], lifespan=lifespan)


class FhirLane:
    """Innermost middleware: a request the `/fhir` catch-all route would get goes straight to the endpoint."""

    def __init__(self, app: ASGIApp, *, endpoint: FhirEndpoint, routed: tuple[str, ...]) -> None:
        self.app, self.endpoint, self.routed = app, endpoint, routed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rest = self._rest(scope) if scope["type"] == "http" else None
        if rest is None:
            await self.app(scope, receive, send)
        else:
            await self.endpoint.serve(scope, receive, send, rest)

    def _rest(self, scope: Scope) -> str | None:
        """The catch-all's `rest` path parameter, or None where the router must decide."""
        path: str = scope["path"]
        if path.startswith("/fhir/"):
            rest = path[6:]
        elif path == "/fhir":
            rest = ""
        else:
            return None
        if (
            scope["method"] not in FHIR_METHODS  # the router answers 405 with Allow
            or scope.get("root_path")  # the router strips it before matching
            or "\n" in path  # the route's pattern treats a newline specially
            or path.startswith(self.routed)  # may be one of the other routes under /fhir
        ):
            return None
        return rest


class FhirEndpoint:
    """Every FHIR interaction over HTTP: read the request, route it, wait for its audit record, answer."""

    def __init__(self, route: Callable[[FhirRequest], FhirResponse], max_body: int, max_depth: int) -> None:
        self.route, self.max_body, self.max_depth = route, max_body, max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As the endpoint of a Starlette route: `rest` comes from the matched path."""
        await self.serve(scope, receive, send, scope.get("path_params", {}).get("rest", ""))

    async def serve(self, scope: Scope, receive: Receive, send: Send, rest: str) -> None:
        try:
            req = await read_request(scope, _chunks(receive), rest, self.max_body, self.max_depth)
            resp = self.route(req) if _is_read(req) else await run_in_threadpool(self.route, req)
            if resp.pending_audit is not None:  # nothing is shown before its audit record is committed
                await resp.pending_audit.confirmed()
        except FhirError as err:
            resp = FhirResponse(err.status, outcome_bytes(err.issues))
        except Exception:  # the edge: anything unexpected is still an OperationOutcome, and is logged
            log.exception("unhandled error on %s %s", scope["method"], URL(scope=scope).path)
            resp = FhirResponse(500, outcome_bytes([Issue("fatal", "exception", "Internal server error")]))
        status, headers, body = http_parts(scope, resp)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _is_read(req: FhirRequest) -> bool:
    """A read or vread by id: a primary-key lookup, cheaper to run on the event loop than to hand to a thread
    (the handoff costs more than the read). Anything that can scan (search, history, operations) goes to a thread."""
    n = len(req.path)
    return (
        req.method in ("GET", "HEAD")
        and (n == 2 or (n == 4 and req.path[2] == "_history"))
        and not req.path[1].startswith(("$", "_"))
        and not req.path[0].startswith(("$", "_"))
    )


# --- request ------------------------------------------------------------------------------------------------------
async def to_fhir_request(request: Request, max_body: int, max_depth: int) -> FhirRequest:
    """For Starlette routes of their own (bulk import): the request as the router sees it."""
    rest = request.path_params.get("rest", "")
    return await read_request(request.scope, request.stream(), rest, max_body, max_depth)


async def read_request(
    scope: Scope, chunks: AsyncIterator[bytes], rest: str, max_body: int, max_depth: int
) -> FhirRequest:
    """The FhirRequest for an HTTP request; `rest` is the path below `/fhir`."""
    method: str = scope["method"]
    scheme, netloc, query_text = _url_parts(scope)
    query = parse_qsl(query_text, keep_blank_values=True) if query_text else []
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    check_accept(next((v for k, v in query if k == "_format"), None), headers.get("accept"))
    body, parsed = None, None
    if method in BODY_METHODS:
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body:
            raise PayloadTooLarge(f"The body is {declared} bytes; the limit is {max_body}")
        parts, size = [], 0
        async for chunk in chunks:
            size += len(chunk)
            if size > max_body:
                raise PayloadTooLarge(f"The body exceeds the limit of {max_body} bytes")
            parts.append(chunk)
        body = b"".join(parts)
        if body and _is_form_search(method, headers, rest):
            pass  # POST [base]/[type]/_search: a form body of search parameters, read by the search handler
        elif body:
            check_content_type(method, headers.get("content-type"))
            parsed = parse_checked(body, max_depth)
    path = [seg for seg in rest.split("/") if seg]
    base = f"{scheme}://{netloc}/fhir"
    return FhirRequest(method, path, query, body, headers, base, parsed, scope.get(ACTOR_KEY))


def _url_parts(scope: Scope) -> tuple[str, str, str]:
    """Scheme, netloc and query of the request URL, exactly as Starlette's `request.url` gives them."""
    if scope.get("query_string"):
        url = URL(scope=scope)
        return url.scheme, url.netloc, url.query
    host = next((v for k, v in scope["headers"] if k == b"host"), None)
    server = scope.get("server")
    scheme, netloc = _origin(scope.get("scheme", "http"), host, tuple(server) if server is not None else None)
    return scheme, netloc, ""


@functools.lru_cache(maxsize=256)
def _origin(scheme: str, host: bytes | None, server: tuple[str, int] | None) -> tuple[str, str]:
    """Scheme and netloc do not depend on the path (Starlette escapes `?`, `#` and `\\` in it), so one URL per
    origin will do."""
    headers = [(b"host", host)] if host is not None else []
    url = URL(scope={"scheme": scheme, "server": server, "path": "/", "headers": headers})
    return url.scheme, url.netloc


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body as Starlette's `Request.stream()` yields it."""
    while True:
        message = await receive()
        if message["type"] == "http.request":
            body = message.get("body", b"")
            if body:
                yield body
            if not message.get("more_body", False):
                return
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


def _is_form_search(method: str, headers: dict[str, str], rest: str) -> bool:
    """POST `_search` with application/x-www-form-urlencoded (http://hl7.org/fhir/R4/http.html#search)."""
    ctype = (headers.get("content-type") or "").split(";")[0].strip().lower()
    return method == "POST" and ctype == "application/x-www-form-urlencoded" and rest.rstrip("/").endswith("_search")


def parse_checked(body: bytes, max_depth: int) -> object:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if json_depth_exceeds(parsed, max_depth):
        raise InvalidRequest(f"The request body nests deeper than {max_depth} levels")
    return parsed


# --- response -----------------------------------------------------------------------------------------------------
def to_http(request: Request, resp: FhirResponse) -> Response:
    """For Starlette routes of their own: the same answer as a Starlette Response."""
    status, headers, body = http_parts(request.scope, resp)
    out = Response(body, status_code=status)
    out.raw_headers = headers
    return out


def http_parts(scope: Scope, resp: FhirResponse) -> tuple[int, RawHeaders, bytes]:
    """Status, raw headers and body, as a Starlette `Response(body, headers=..., media_type=FHIR_JSON)` has them
    (content-length unless given or a 1xx/204/304; content-type with a body, unless given)."""
    body: Any = resp.body
    if body is None and resp.resource is not None:
        body = orjson.dumps(resp.resource)
    if body is not None and _pretty(scope):
        body = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)
    status = resp.status
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers.items()]
    given = {k for k, _ in headers} if headers else ()
    content = b"" if body is None else body.encode() if isinstance(body, str) else body
    if b"content-length" not in given and not (status < 200 or status in (204, 304)):
        headers.append((b"content-length", str(len(content)).encode("latin-1")))
    if body is not None and b"content-type" not in given:
        headers.append((b"content-type", FHIR_JSON_BYTES))
    if scope["method"] == "HEAD":  # the headers a GET would have, its length included (RFC 9110 9.3.2); no body
        return status, headers, b""
    return status, headers, content


def _pretty(scope: Scope) -> bool:
    """`_pretty=true` (the last `_pretty` wins, as in Starlette's query_params)."""
    query_string = scope["query_string"]
    return bool(query_string) and QueryParams(query_string).get("_pretty") == "true"


def _static_prefix(path: str) -> str:
    """The part of a route path before its first parameter: every path the route matches starts with it."""
    return path.split("{", 1)[0]
