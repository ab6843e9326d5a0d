"""`$export`, `$import` and their status endpoints, following the FHIR Bulk Data Access IG v2
(https://hl7.org/fhir/uv/bulkdata/export.html) and the draft Bulk Import ($import with a Parameters body).

Kick-off answers 202 with `Content-Location: [base]/$export-poll-status?_jobId=...`. Polling answers 202 with
`X-Progress` and `Retry-After` while the job runs, 200 with the JSON manifest when it is done, 500 with an
OperationOutcome when it failed; DELETE cancels a job and removes its files (202), after which polling gives 404.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson

from sharedcare.access.actor import current
from sharedcare.bulk.export import ExportSpec
from sharedcare.bulk.jobs import BulkJobs
from sharedcare.capability import OperationInfo
from sharedcare.errors import InvalidRequest, MethodNotAllowed, NotFound, NotSupported
from sharedcare.fhir.outcome import information, outcome_bytes
from sharedcare.fhir.resource import check_id, parse_json
from sharedcare.request_params import parse_instant
from sharedcare.types import FhirRequest, FhirResponse, Issue

EXPORT_DEFINITION = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
PATIENT_EXPORT_DEFINITION = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"
GROUP_EXPORT_DEFINITION = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"
IMPORT_DEFINITION = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/import"
NDJSON_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
UNSUPPORTED = ("_elements", "includeAssociatedData", "organizeOutputBy")

BULK_OPERATIONS = (
    OperationInfo("export", EXPORT_DEFINITION, ("system",)),
    OperationInfo("export", PATIENT_EXPORT_DEFINITION, ("type",), ("Patient",)),
    OperationInfo("export", GROUP_EXPORT_DEFINITION, ("instance",), ("Group",)),
    OperationInfo("import", IMPORT_DEFINITION, ("system",)),
)

Handler = Callable[[FhirRequest], FhirResponse]


def bulk_handlers(jobs: BulkJobs) -> dict[str, Handler]:
    return {
        "$export": lambda req: export_kickoff(jobs, req),
        "$export-poll-status": lambda req: poll_status(jobs, req),
        "$import": lambda req: import_kickoff(jobs, req),
        "$import-poll-status": lambda req: poll_status(jobs, req),
    }


# --- $export ---------------------------------------------------------------------------------------------------
def export_kickoff(jobs: BulkJobs, req: FhirRequest) -> FhirResponse:
    if req.method not in ("GET", "POST"):
        raise MethodNotAllowed("$export is started with GET or POST")
    require_async(req)
    params = _parameters(req)
    spec = export_spec(req.path, params, lenient="handling=lenient" in (req.header("prefer") or "").replace(" ", ""))
    ctx = current()
    bound = getattr(ctx, "export_access", None)
    if bound is not None:  # a restricted caller: the job runs under its restriction (set by the boundary)
        spec = replace(spec, access=bound["access"], pseudonymise=bound["pseudonymise"], owner=bound["owner"])
    job_id = jobs.start_export(spec, _request_url(req), req.base_url)
    return accepted(req, "$export-poll-status", job_id)


def export_spec(path: list[str], params: list[tuple[str, str]], *, lenient: bool = False) -> ExportSpec:
    """The kick-off's level and parameters, checked (unknown formats and unsupported parameters are errors)."""
    level, group = _level(path)
    for name, value in params:
        if name == "_outputFormat" and value not in NDJSON_FORMATS:
            raise InvalidRequest(f"_outputFormat '{value}' is not supported; use application/fhir+ndjson")
        if name in UNSUPPORTED and not lenient:
            raise NotSupported(f"{name} is not supported (send Prefer: handling=lenient to ignore it)")
    types = tuple(t.strip() for name, v in params if name == "_type" for t in v.split(",") if t.strip())
    filters = []
    for name, value in params:
        if name == "_typeFilter":
            for part in _split_filters(value):
                rtype, sep, query = part.partition("?")
                if not sep or not query:
                    raise InvalidRequest(f"_typeFilter '{part}' must look like Type?param=value")
                filters.append((rtype, query))
    patients = tuple(v.removeprefix("Patient/") for name, v in params if name == "patient")
    if patients and level == "system":
        raise InvalidRequest("The patient parameter applies to Patient and Group level exports")
    since = next((v for name, v in params if name == "_since"), None)
    return ExportSpec(level, group, types, parse_instant(since, "_since") if since else None, tuple(filters), patients)


def may_use_job(jobs: BulkJobs, job_id: str, actor: Any) -> bool:
    """The operator may use any job; anyone else only an export they started (no request context: in process)."""
    if actor is None or getattr(actor, "unrestricted", False):
        return True
    from sharedcare.service.boundary import export_owner

    owner = jobs.requester(job_id)
    return owner is not None and owner == export_owner(actor)


def _level(path: list[str]) -> tuple[str, str | None]:
    if path == ["$export"]:
        return "system", None
    if path == ["Patient", "$export"]:
        return "patient", None
    if len(path) == 3 and path[0] == "Group":
        check_id(path[1])
        return "group", path[1]
    raise NotSupported(f"$export is offered at [base], [base]/Patient and [base]/Group/[id], not /{'/'.join(path)}")


def _split_filters(value: str) -> list[str]:
    """`_typeFilter` values are comma-separated; commas inside a query are escaped as %2C by clients."""
    return [p.strip() for p in value.split(",") if p.strip()]


# --- $import ---------------------------------------------------------------------------------------------------
def import_kickoff(jobs: BulkJobs, req: FhirRequest) -> FhirResponse:
    if req.method != "POST":
        raise MethodNotAllowed("$import is started with POST and a Parameters resource")
    require_async(req)
    body = req.parsed if req.parsed is not None else parse_json(req.body)
    inputs = import_inputs(body)
    job_id = jobs.start_import(inputs, _request_url(req), req.base_url)
    return accepted(req, "$import-poll-status", job_id)


def import_inputs(body: object) -> list[dict[str, str]]:
    """`input` parts of a Parameters body: each with a `url` (http or https) and optionally a `type`."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidRequest("$import takes a Parameters resource with input parts (type, url)")
    inputs = []
    for p in body.get("parameter") or []:
        if p.get("name") == "inputFormat" and _value(p) not in (*NDJSON_FORMATS, None):
            raise InvalidRequest(f"inputFormat '{_value(p)}' is not supported; use application/fhir+ndjson")
        if p.get("name") != "input":
            continue
        parts = {q.get("name"): _value(q) for q in p.get("part") or []}
        url = parts.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidRequest("Each input needs a url part with an http(s) URL of an NDJSON file")
        inputs.append({"type": str(parts.get("type") or ""), "url": url})
    if not inputs:
        raise InvalidRequest("$import needs at least one input part")
    return inputs


def _value(part: dict[str, object]) -> object:
    return next((v for k, v in part.items() if k.startswith("value")), None)


# --- status ----------------------------------------------------------------------------------------------------
def poll_status(jobs: BulkJobs, req: FhirRequest) -> FhirResponse:
    job_id = req.param("_jobId") or ""
    if not may_use_job(jobs, job_id, getattr(current(), "actor", None)):
        raise NotFound(f"No bulk job {job_id!r} (unknown, cancelled or expired)")
    if req.method == "DELETE":
        if not jobs.cancel(job_id):
            raise NotFound(f"No bulk job {job_id!r}")
        return FhirResponse(202, outcome_bytes([Issue("information", "informational", f"Job {job_id} cancelled")]))
    if req.method not in ("GET", "HEAD"):
        raise MethodNotAllowed("Poll a bulk job with GET, cancel it with DELETE")
    status = jobs.status(job_id)
    if status is None:
        raise NotFound(f"No bulk job {job_id!r} (unknown, cancelled or expired)")
    if status.status == "completed":
        body = orjson.dumps(status.result)
        return FhirResponse(200, body, {"content-type": "application/json"})
    if status.status == "error":
        issue = Issue("error", "exception", f"The job failed: {status.error}")
        return FhirResponse(500, outcome_bytes([issue]))
    progress = status.progress or status.status
    return FhirResponse(202, None, {"x-progress": progress[:100], "retry-after": "1"})


# --- shared ----------------------------------------------------------------------------------------------------
def require_async(req: FhirRequest) -> None:
    prefer = (req.header("prefer") or "").replace(" ", "")
    if "respond-async" not in prefer.split(","):
        raise InvalidRequest("Bulk data operations run asynchronously: send the header Prefer: respond-async")


def accepted(req: FhirRequest, status_op: str, job_id: str) -> FhirResponse:
    location = f"{req.base_url}/{status_op}?_jobId={job_id}"
    body = orjson.dumps(information(f"Job {job_id} accepted; poll {location}"))
    return FhirResponse(202, body, {"content-location": location})


def _parameters(req: FhirRequest) -> list[tuple[str, str]]:
    """Query parameters, plus those of a POSTed Parameters resource (valueString/valueInstant/valueReference...)."""
    params = list(req.query)
    if req.method == "POST" and (req.body or req.parsed is not None):
        body = req.parsed if req.parsed is not None else parse_json(req.body)
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise InvalidRequest("A POSTed $export takes a Parameters resource")
        for p in body.get("parameter") or []:
            value = _value(p)
            if isinstance(value, dict):
                value = value.get("reference")
            if isinstance(p.get("name"), str) and isinstance(value, str):
                params.append((p["name"], value))
    return params


def _request_url(req: FhirRequest) -> str:
    from urllib.parse import urlencode

    query = f"?{urlencode(req.query)}" if req.query else ""
    return f"{req.base_url}/{'/'.join(req.path)}{query}"
