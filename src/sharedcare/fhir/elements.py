"""`_summary` and `_elements` (http://hl7.org/fhir/R4/search.html#summary): cut a resource down to fewer elements.

Subsetted resources are marked with the SUBSETTED tag from the v3 ObservationValue system, as the spec asks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sharedcare.errors import InvalidRequest
from sharedcare.types import JSON

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
ALWAYS = ("resourceType", "id", "meta")
SUMMARY_MODES = ("true", "false", "text", "data", "count")


def mark_subsetted(resource: JSON) -> JSON:
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    resource["meta"] = meta
    return resource


def keep_elements(resource: JSON, names: Iterable[str], mandatory: Iterable[str] = ()) -> JSON:
    wanted = set(names) | set(ALWAYS) | set(mandatory)
    out = {k: v for k, v in resource.items() if k in wanted or k.lstrip("_") in wanted}
    return mark_subsetted(out)


def summarise(
    resource: JSON,
    mode: str,
    summary_elements: Callable[[str], frozenset[str]],
    mandatory: Callable[[str], frozenset[str]],
) -> JSON:
    """Apply one `_summary` mode to a resource; `summary_elements(type)` names its isSummary top-level elements."""
    if mode == "false":
        return resource
    rtype = resource["resourceType"]
    if mode == "true":
        return keep_elements(resource, summary_elements(rtype))
    if mode == "text":
        return keep_elements(resource, ("text",), mandatory(rtype))
    if mode == "data":
        return mark_subsetted({k: v for k, v in resource.items() if k != "text"})
    raise InvalidRequest(f"_summary must be one of {', '.join(SUMMARY_MODES)}; got '{mode}'")


def parse_elements(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    # `Patient.name` is allowed as well as `name`; only top-level elements are cut
    return [n.split(".", 1)[1] if "." in n and n[0].isupper() else n for n in names]
