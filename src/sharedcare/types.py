"""Shared vocabulary at the bottom of the import graph: plain values every layer may use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome issue; `expression` is a FHIRPath location such as `Patient.name[0].given[1]`."""

    severity: str  # fatal | error | warning | information
    code: str  # an IssueType code: invalid, structure, required, value, not-found, ...
    diagnostics: str
    expression: str | None = None

    def to_json(self) -> JSON:
        out: JSON = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            out["expression"] = [self.expression]
        return out


@dataclass(frozen=True, slots=True)
class StoredResource:
    """A version of a resource as the store holds it: the exact JSON bytes served to clients."""

    type: str
    id: str
    version: int
    last_updated: str  # FHIR instant, UTC
    body: bytes | None  # None for a deletion
    method: str = "PUT"  # POST | PUT | PATCH | DELETE: the interaction that made this version

    @property
    def deleted(self) -> bool:
        return self.body is None

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


@dataclass(slots=True)
class FhirRequest:
    """An HTTP-free FHIR request: what the router needs, nothing of Starlette."""

    method: str
    path: list[str]  # segments after the FHIR base, e.g. ["Patient", "123", "_history", "2"]
    query: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    base_url: str = ""
    parsed: Any = None  # the body already parsed as JSON by the edge, so it is parsed once
    actor: Any = None  # the authenticated caller (`sharedcare.access.actor.Actor`), set by the API edge

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return None


@dataclass(slots=True)
class FhirResponse:
    """An HTTP-free FHIR response; `body` is already-serialised JSON (or None)."""

    status: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    resource: JSON | None = None  # parsed form when the router built it; the API serialises if body is None
    pending_audit: Any = None  # an audit record the edge must see committed (awaitable `confirmed()`) before sending
