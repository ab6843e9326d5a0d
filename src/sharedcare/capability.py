"""The CapabilityStatement, generated from what the server really does: the resource types it knows,
the interactions the router implements, the search parameters the registry indexes and the operations table."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import orjson

from sharedcare import FHIR_VERSION, __version__
from sharedcare.types import FhirRequest

TYPE_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
SYSTEM_INTERACTIONS = ("transaction", "batch", "history-system", "search-system")


@dataclass(frozen=True)
class OperationInfo:
    name: str  # without the $
    definition: str
    levels: tuple[str, ...]  # system | type | instance
    types: tuple[str, ...] = ()  # empty: every type


@dataclass(frozen=True)
class SearchParamInfo:
    code: str
    type: str
    definition: str | None


def capability_statement(
    resource_types: Iterable[str],
    search_params: Callable[[str], Iterable[SearchParamInfo]],
    operations: Iterable[OperationInfo],
    *,
    base_url: str,
    published: str,
    formats: Iterable[str] = ("application/fhir+json", "json"),
    patch_formats: Iterable[str] = ("application/json-patch+json",),
    extra_resource: Mapping[str, object] | None = None,
) -> bytes:
    ops = list(operations)
    resources = []
    for rtype in sorted(resource_types):
        entry: dict[str, object] = {
            "type": rtype,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
            "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "full-support",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "referencePolicy": ["literal", "logical"],
            "searchParam": [
                {"name": p.code, "type": p.type, **({"definition": p.definition} if p.definition else {})}
                for p in search_params(rtype)
            ],
        }
        type_ops = [
            o
            for o in ops
            if ("type" in o.levels or "instance" in o.levels) and (not o.types or rtype in o.types)
        ]
        if type_ops:
            entry["operation"] = [{"name": o.name, "definition": o.definition} for o in type_ops]
        resources.append(entry)
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": published,
        "publisher": "sharedcare",
        "kind": "instance",
        "software": {"name": "sharedcare", "version": __version__},
        "implementation": {"description": "sharedcare shared care record", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": list(formats),
        "patchFormat": list(patch_formats),
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
                "operation": [
                    {"name": o.name, "definition": o.definition} for o in ops if "system" in o.levels
                ],
            }
        ],
    }
    return orjson.dumps(statement)


def capability_handler(build: Callable[[str], bytes]) -> Callable[[FhirRequest], bytes]:
    """Cache one statement per base URL: it changes only when the server's configuration does."""
    cache: dict[str, bytes] = {}

    def handler(req: FhirRequest) -> bytes:
        if req.base_url not in cache:
            cache[req.base_url] = build(req.base_url)
        return cache[req.base_url]

    return handler
