"""The web application's only way to data: in-process FHIR requests carrying the signed-in person's Actor.

Every page is a client of the same security boundary the HTTP API uses (`Boundary.handle`), so each read and
write is authorised, restricted and audited exactly as `/fhir` would be; the web layer never touches the store.
Requests of one page share the page's request id, so the audit trail groups them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from sharedcare.errors import FhirError
from sharedcare.types import FhirRequest, FhirResponse

Handler = Callable[[FhirRequest], FhirResponse]
BASE_URL = "http://sharedcare.local/fhir"
SUPPRESSED = "suppressed"  # OperationOutcome issue type: items left out by business, consent or privacy rules


class ServiceError(Exception):
    """A refusal or failure from the service, with the HTTP status it would have had and its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

    @property
    def refused(self) -> bool:
        return self.status in (401, 403)


@dataclass
class Gateway:
    """One page's FHIR client, bound to its caller. `actor` is never None: a page without one does not call."""

    handle: Handler
    actor: Any
    request_id: str | None = None
    base_url: str = BASE_URL

    def get(self, path: str, query: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        return self._call("GET", path, query or [], None)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", path, [], body)

    def search_all(self, path: str, query: list[tuple[str, str]], limit: int = 2000) -> tuple[list[dict], list[str]]:
        """Every entry of a search or operation, following `next` links up to `limit` entries; also the
        diagnostics of `suppressed` OperationOutcome issues, which announce withheld items."""
        entries: list[dict[str, Any]] = []
        notices: list[str] = []
        bundle = self.get(path, query)
        while True:
            for entry in bundle.get("entry") or []:
                resource = entry.get("resource") or {}
                if resource.get("resourceType") == "OperationOutcome":
                    notices += suppressed_notices(resource)
                else:
                    entries.append(entry)
            following = next((link["url"] for link in bundle.get("link") or [] if link.get("relation") == "next"), None)
            if not following or len(entries) >= limit:
                return entries, notices
            bundle = self._follow(following)

    def _follow(self, url: str) -> dict[str, Any]:
        from urllib.parse import parse_qsl, urlsplit

        parts = urlsplit(url)
        path = parts.path.split("/fhir/", 1)[-1]
        return self._call("GET", path, parse_qsl(parts.query, keep_blank_values=True), None)

    def _call(self, method: str, path: str, query: list[tuple[str, str]], body: dict[str, Any] | None) -> Any:
        if self.actor is None:
            raise ServiceError(401, "Sign in to continue")
        headers = {"x-request-id": self.request_id} if self.request_id else {}
        if body is not None:
            headers["content-type"] = "application/fhir+json"
        req = FhirRequest(
            method,
            [s for s in path.split("/") if s],
            list(query),
            orjson.dumps(body) if body is not None else None,
            headers,
            self.base_url,
            body,
            self.actor,
        )
        try:
            resp = self.handle(req)
        except FhirError as err:
            raise ServiceError(err.status, err.message) from None
        payload = resp.body if resp.body is not None else (orjson.dumps(resp.resource) if resp.resource else b"")
        parsed = orjson.loads(payload) if payload else {}
        if resp.status >= 400:
            raise ServiceError(resp.status, _diagnostics(parsed) or f"The service answered {resp.status}")
        return parsed


def suppressed_notices(outcome: dict[str, Any]) -> list[str]:
    return [
        str(i.get("diagnostics") or "Some items are withheld")
        for i in outcome.get("issue") or []
        if i.get("code") == SUPPRESSED
    ]


def _diagnostics(parsed: Any) -> str:
    if isinstance(parsed, dict) and parsed.get("resourceType") == "OperationOutcome":
        return "; ".join(str(i.get("diagnostics", "")) for i in parsed.get("issue") or [] if i.get("diagnostics"))
    return ""
