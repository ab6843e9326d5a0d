"""`$validate` at type and instance level (http://hl7.org/fhir/R4/resource-operation-validate.html).

The body is the resource itself or a Parameters resource with a `resource` parameter. The answer is always an
OperationOutcome with status 200 when validation ran: its issues say whether the resource is valid.
"""

from __future__ import annotations

from typing import Any

from sharedcare.errors import FhirError, InvalidRequest
from sharedcare.fhir.outcome import outcome_bytes
from sharedcare.fhir.resource import parse_json
from sharedcare.service.repository import Repository
from sharedcare.types import FhirRequest, FhirResponse, Issue

DEFINITION = "http://hl7.org/fhir/OperationDefinition/Resource-validate"


def validate_operation(repo: Repository) -> Any:
    def handler(req: FhirRequest) -> FhirResponse:
        if req.method != "POST" or len(req.path) not in (2, 3):
            raise InvalidRequest("$validate is POSTed to /[type]/$validate or /[type]/[id]/$validate")
        rtype = req.path[0]
        resource = unwrap(req.parsed if req.parsed is not None else parse_json(req.body))
        if len(req.path) == 3:
            repo.check_update_body(rtype, req.path[1], resource)
        try:
            repo.check(resource, rtype)
        except FhirError as err:
            return FhirResponse(200, outcome_bytes(err.issues))
        ok = Issue("information", "informational", f"{rtype} is valid FHIR R4")
        return FhirResponse(200, outcome_bytes([ok]))

    return handler


def unwrap(body: Any) -> Any:
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        for param in body.get("parameter", []):
            if isinstance(param, dict) and param.get("name") == "resource" and "resource" in param:
                return param["resource"]
        raise InvalidRequest("The Parameters body has no 'resource' parameter to validate")
    return body
