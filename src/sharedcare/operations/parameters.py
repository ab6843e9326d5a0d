"""Reading operation inputs: a FHIR Parameters body, or the query string for simple values.

Operations accept both, as http://hl7.org/fhir/R4/operations.html allows for primitive parameters.
"""

from __future__ import annotations

from typing import Any

from sharedcare.errors import InvalidRequest
from sharedcare.fhir.resource import parse_json
from sharedcare.types import JSON, FhirRequest


def operation_inputs(req: FhirRequest) -> dict[str, Any]:
    """name → value: primitives as Python values, references as their `reference` string, resources as JSON."""
    values: dict[str, Any] = dict(req.query)
    body = req.parsed if req.parsed is not None else (parse_json(req.body) if req.body else None)
    if body is None:
        return values
    if not isinstance(body, dict):
        raise InvalidRequest("The operation body must be a FHIR Parameters resource")
    if body.get("resourceType") != "Parameters":
        values["resource"] = body  # a resource posted directly stands for the `resource` parameter
        return values
    for param in body.get("parameter") or ():
        if isinstance(param, dict) and isinstance(param.get("name"), str):
            values[param["name"]] = _value(param)
    return values


def _value(param: JSON) -> Any:
    if "resource" in param:
        return param["resource"]
    for key, value in param.items():
        if key.startswith("value"):
            if key == "valueReference" and isinstance(value, dict):
                return value.get("reference")
            return value
    return None


def reference_id(value: Any, type: str, name: str) -> str:
    """The id in `Type/id` (or a bare id) given for parameter `name`."""
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"Parameter '{name}' is required: a reference such as {type}/123")
    prefix, _, rest = value.rpartition(f"{type}/")
    if prefix and not prefix.endswith("/"):
        raise InvalidRequest(f"Parameter '{name}' must reference a {type}, got {value!r}")
    return (rest or value).split("/")[0]


def parameters(values: dict[str, Any]) -> JSON:
    """A Parameters resource from simple name → value pairs (str, int, bool, float, or `Type/id` references)."""
    out = []
    for name, value in values.items():
        if isinstance(value, bool):
            out.append({"name": name, "valueBoolean": value})
        elif isinstance(value, int):
            out.append({"name": name, "valueInteger": value})
        elif isinstance(value, float):
            out.append({"name": name, "valueDecimal": value})
        elif isinstance(value, str) and "/" in value and not value.startswith("http") and " " not in value:
            out.append({"name": name, "valueReference": {"reference": value}})
        else:
            out.append({"name": name, "valueString": str(value)})
    return {"resourceType": "Parameters", "parameter": out}
