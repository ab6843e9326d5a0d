"""What a FhirRequest asks for, in the words of the FHIR spec, before the router runs it.

`classify` mirrors the router's path shapes (http://hl7.org/fhir/R4/http.html) so that scopes, roles and audit
agree with what will actually run. `perm` is the SMART v2 permission letter the interaction needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sharedcare.types import FhirRequest

READ_METHODS = ("GET", "HEAD")
ACTIONS = {"c": "C", "r": "R", "u": "U", "d": "D", "s": "E"}


@dataclass(frozen=True, slots=True)
class Interaction:
    kind: str  # read | vread | history-* | search-* | create | update | patch | delete | batch | operation | ...
    type: str | None = None
    id: str | None = None
    version: str | None = None
    compartment: str | None = None  # "Patient/123" for a compartment search
    operation: str | None = None  # "$everything", ...
    perm: str | None = None  # c r u d s; None for metadata, bundles and operations

    @property
    def action(self) -> str:
        """The AuditEvent.action code: C(reate), R(ead), U(pdate), D(elete), E(xecute: search, operation)."""
        if self.kind in ("read", "vread", "history-instance"):
            return "R"
        return ACTIONS.get(self.perm or "", "E")

    @property
    def is_write(self) -> bool:
        return self.perm in ("c", "u", "d") or self.kind in ("batch", "transaction")


def classify(req: FhirRequest, resource_types: frozenset[str]) -> Interaction:
    p, m = req.path, req.method
    n = len(p)
    if n == 0:
        if m == "POST":
            kind = _bundle_kind(req)
            return Interaction(kind)
        return Interaction("search-system", perm="s")
    if n == 1 and p[0] == "metadata":
        return Interaction("capabilities")
    if n == 1 and p[0] == "_history":
        return Interaction("history-system", perm="s")
    if n == 1 and p[0] == "_search":
        return Interaction("search-system", perm="s")
    if p[-1].startswith("$"):
        type = p[0] if n > 1 and p[0] in resource_types else None
        id = p[1] if n == 3 else None
        return Interaction("operation", type=type, id=id, operation=p[-1])
    rtype = p[0]
    if n == 1:
        return _type_level(req, rtype)
    if n == 2 and p[1] in ("_history", "_search"):
        return Interaction("history-type" if p[1] == "_history" else "search-type", rtype, perm="s")
    if n == 2:
        kind = {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(m, "read")
        perm = {"update": "u", "patch": "u", "delete": "d", "read": "r"}[kind]
        return Interaction(kind, rtype, p[1], perm=perm)
    if n == 3 and p[2] == "_history":
        return Interaction("history-instance", rtype, p[1], perm="r")
    if n == 4 and p[2] == "_history":
        return Interaction("vread", rtype, p[1], p[3], perm="r")
    if n == 3:
        return Interaction("search-compartment", p[2], compartment=f"{rtype}/{p[1]}", perm="s")
    return Interaction("unknown", rtype)


def _type_level(req: FhirRequest, rtype: str) -> Interaction:
    m = req.method
    if m in READ_METHODS:
        return Interaction("search-type", rtype, perm="s")
    if m == "POST":
        return Interaction("create", rtype, perm="c")
    kind = {"PUT": "conditional-update", "PATCH": "conditional-patch", "DELETE": "conditional-delete"}.get(m)
    perm = {"PUT": "u", "PATCH": "u", "DELETE": "d"}.get(m)
    return Interaction(kind or "unknown", rtype, perm=perm)


def _bundle_kind(req: FhirRequest) -> str:
    body = req.parsed
    if isinstance(body, dict) and body.get("type") in ("batch", "transaction"):
        return str(body["type"])
    return "batch"
