"""The Starlette adapter: HTTP ⇄ FhirRequest/FhirResponse. The only module that knows about HTTP."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sharedcare.api.negotiation import check_accept, check_content_type
from sharedcare.errors import FhirError, InvalidRequest, PayloadTooLarge
from sharedcare.fhir.outcome import outcome_bytes
from sharedcare.fhir.resource import json_depth_exceeds
from sharedcare.types import FhirRequest, FhirResponse, Issue

log = logging.getLogger("sharedcare.api")
FHIR_JSON = "application/fhir+json; charset=utf-8"
BODY_METHODS = ("POST", "PUT", "PATCH")


def build_asgi(
    route: Callable[[FhirRequest], FhirResponse],
    *,
    max_body_bytes: int,
    max_json_depth: int,
    extra_routes: Sequence[BaseRoute] = (),
    middleware: Sequence[Middleware] = (),
    lifespan: Any = None,
) -> Starlette:
    async def fhir(request: Request) -> Response:
        try:
            req = await to_fhir_request(request, max_body_bytes, max_json_depth)
            resp = route(req) if _is_read(req) else await run_in_threadpool(route, req)
            if resp.pending_audit is not None:  # nothing is shown before its audit record is committed
                await resp.pending_audit.confirmed()
        except FhirError as err:
            resp = FhirResponse(err.status, outcome_bytes(err.issues))
        except Exception:  # the edge: anything unexpected is still an OperationOutcome, and is logged
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            resp = FhirResponse(500, outcome_bytes([Issue("fatal", "exception", "Internal server error")]))
        return to_http(request, resp)

    async def root(request: Request) -> Response:
        return RedirectResponse("/fhir/metadata")

    under_fhir = [r for r in extra_routes if getattr(r, "path", "").startswith("/fhir/")]
    routes = [
        *under_fhir,  # the change feed, bulk files and the like, ahead of the /fhir catch-all
        Route("/fhir", fhir, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
        Route("/fhir/{rest:path}", fhir, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
        *[r for r in extra_routes if r not in under_fhir],  # web pages and ops endpoints: not tried for /fhir
        Route("/", root, methods=["GET"]),
    ]
    return Starlette(routes=routes, middleware=list(middleware), lifespan=lifespan)


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


async def to_fhir_request(request: Request, max_body: int, max_depth: int) -> FhirRequest:
    query = parse_qsl(request.url.query, keep_blank_values=True)
    headers = {k.lower(): v for k, v in request.headers.items()}
    check_accept(next((v for k, v in query if k == "_format"), None), headers.get("accept"))
    body, parsed = None, None
    if request.method in BODY_METHODS:
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body:
            raise PayloadTooLarge(f"The body is {declared} bytes; the limit is {max_body}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise PayloadTooLarge(f"The body exceeds the limit of {max_body} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        if body and _is_form_search(request, headers):
            pass  # POST [base]/[type]/_search: a form body of search parameters, read by the search handler
        elif body:
            check_content_type(request.method, headers.get("content-type"))
            parsed = parse_checked(body, max_depth)
    rest = request.path_params.get("rest", "")
    path = [seg for seg in rest.split("/") if seg]
    base = f"{request.url.scheme}://{request.url.netloc}/fhir"
    return FhirRequest(request.method, path, query, body, headers, base, parsed, request.scope.get("sharedcare.actor"))


def _is_form_search(request: Request, headers: dict[str, str]) -> bool:
    """POST `_search` with application/x-www-form-urlencoded (http://hl7.org/fhir/R4/http.html#search)."""
    ctype = (headers.get("content-type") or "").split(";")[0].strip().lower()
    return (
        request.method == "POST"
        and ctype == "application/x-www-form-urlencoded"
        and request.path_params.get("rest", "").rstrip("/").endswith("_search")
    )


def parse_checked(body: bytes, max_depth: int) -> object:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if json_depth_exceeds(parsed, max_depth):
        raise InvalidRequest(f"The request body nests deeper than {max_depth} levels")
    return parsed


def to_http(request: Request, resp: FhirResponse) -> Response:
    body = resp.body
    if body is None and resp.resource is not None:
        body = orjson.dumps(resp.resource)
    if body is not None and request.query_params.get("_pretty") == "true":
        body = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)
    headers = dict(resp.headers)
    if request.method == "HEAD":
        body = None
    if body is None:
        return Response(status_code=resp.status, headers=headers)
    return Response(body, status_code=resp.status, headers=headers, media_type=FHIR_JSON)
