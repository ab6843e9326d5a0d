"""The two bulk endpoints that are not FHIR JSON in, FHIR JSON out, so they bypass the generic /fhir route:

- `GET /fhir/_bulk/{job}/{file}`: an export's (or import's error) NDJSON file, streamed from disk in chunks;
- `POST /fhir/$import` with an NDJSON body (`application/fhir+ndjson`): the body is streamed to a file and an
  import job started on it (202 + Content-Location). Any other `POST /fhir/$import` (a Parameters body naming URLs)
  takes the ordinary FHIR path.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from sharedcare.api.asgi import to_fhir_request, to_http
from sharedcare.auth.middleware import ACTOR_KEY
from sharedcare.bulk.jobs import BulkJobs
from sharedcare.errors import FhirError
from sharedcare.fhir.outcome import outcome_bytes
from sharedcare.operations.bulk_data import accepted, may_use_job, require_async
from sharedcare.types import FhirRequest, FhirResponse, Issue

NDJSON_TYPES = ("application/fhir+ndjson", "application/ndjson", "application/x-ndjson")


def bulk_routes(
    jobs: BulkJobs, route: Callable[[FhirRequest], FhirResponse], *, max_body_bytes: int, max_json_depth: int
) -> list[BaseRoute]:
    async def download(request: Request) -> Response:
        actor = request.scope.get(ACTOR_KEY)
        allowed = may_use_job(jobs, request.path_params["job"], actor)
        path = jobs.file(request.path_params["job"], request.path_params["name"]) if allowed else None
        if path is None:
            issue = Issue("error", "not-found", "No such bulk data file (unknown, cancelled or expired job)")
            return Response(outcome_bytes([issue]), 404, media_type="application/fhir+json")
        kind = "application/json" if path.suffix == ".json" else "application/fhir+ndjson"
        return FileResponse(path, media_type=kind)

    async def import_kickoff(request: Request) -> Response:
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        try:
            if ctype in NDJSON_TYPES:
                return await upload(request)
            req = await to_fhir_request(request, max_body_bytes, max_json_depth)
            req.path = ["$import"]  # this route has no {rest} path parameter to take it from
            resp = await run_in_threadpool(route, req)
        except FhirError as err:
            resp = FhirResponse(err.status, outcome_bytes(err.issues))
        return to_http(request, resp)

    async def upload(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        base = f"{request.url.scheme}://{request.url.netloc}/fhir"
        req = FhirRequest("POST", ["$import"], list(request.query_params.multi_items()), None, headers, base)
        require_async(req)
        job_id, path = jobs.new_upload()
        with path.open("wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
        await run_in_threadpool(jobs.start_upload_import, job_id, path, str(request.url), base)
        return to_http(request, accepted(req, "$import-poll-status", job_id))

    return [
        Route("/fhir/_bulk/{job}/{name}", download, methods=["GET", "HEAD"]),
        Route("/fhir/$import", import_kickoff, methods=["POST"]),
    ]
