"""FhirRequest → interaction → FhirResponse, knowing no HTTP framework (http://hl7.org/fhir/R4/http.html).

Paths are matched on their segment shape; each shape maps to one small handler. Errors are raised as
`sharedcare.errors` and turned into OperationOutcomes by the API edge (or by `bundles` for entries).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from sharedcare.errors import MethodNotAllowed, NotFound, NotSupported
from sharedcare.fhir.bundle import Entry, bundle_bytes
from sharedcare.fhir.elements import keep_elements, parse_elements, summarise
from sharedcare.fhir.outcome import outcome_bytes
from sharedcare.fhir.resource import parse_json
from sharedcare.request_params import instant_param, int_param
from sharedcare.service.repository import Repository, WriteResult
from sharedcare.store.base import HistoryQuery
from sharedcare.types import FhirRequest, FhirResponse, Issue, StoredResource

Handler = Callable[[FhirRequest], FhirResponse]


@dataclass(frozen=True)
class RouterConfig:
    resource_types: frozenset[str]
    default_page_size: int = 50
    max_page_size: int = 1000


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(instant: str) -> str:
    """An instant as an HTTP date (RFC 7231 IMF-fixdate), as `email.utils.format_datetime(..., usegmt=True)`
    writes it for the instant taken as UTC, at a third of the cost (it is on every read)."""
    t = datetime.fromisoformat(instant)
    return (
        f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT"
    )


def resource_headers(stored: StoredResource, base: str) -> dict[str, str]:
    """ETag, Last-Modified and Location of a stored version."""
    return {
        "etag": stored.etag,
        "last-modified": http_date(stored.last_updated),
        "location": f"{base}/{stored.type}/{stored.id}/_history/{stored.version}",
    }


class Router:
    def __init__(
        self,
        repo: Repository,
        config: RouterConfig,
        *,
        capability: Callable[[FhirRequest], bytes],
        bundles: Callable[[FhirRequest], FhirResponse],
        search: Callable[[FhirRequest, str | None, str | None], FhirResponse],
        operations: dict[str, Handler],
        summary_elements: Callable[[str], frozenset[str]],
        mandatory_elements: Callable[[str], frozenset[str]],
    ) -> None:
        self.repo, self.config = repo, config
        self.capability, self.bundles, self.search = capability, bundles, search
        self.operations = operations
        self.summary_elements, self.mandatory_elements = summary_elements, mandatory_elements

    # --- dispatch ---------------------------------------------------------------------------------
    def handle(self, req: FhirRequest) -> FhirResponse:
        p = req.path
        n = len(p)
        if n == 0:
            return self._system(req)
        if n == 1 and p[0] == "metadata":
            return self._only(req, "GET", lambda r: FhirResponse(200, self.capability(r)))
        if p[0] == "_history" and n == 1:
            return self._only(req, "GET", lambda r: self.history(r, None, None))
        if n == 1 and p[0] == "_search":
            return self._only(req, "POST", lambda r: self.search(r, None, None))
        if p[-1].startswith("$"):
            return self._operation(req)
        rtype = p[0]
        if rtype not in self.config.resource_types:
            raise NotFound(f"Unknown resource type '{rtype}'")
        if n == 1:
            return self._type_level(req, rtype)
        if n == 2 and p[1] == "_history":
            return self._only(req, "GET", lambda r: self.history(r, rtype, None))
        if n == 2 and p[1] == "_search":
            return self._only(req, "POST", lambda r: self.search(r, rtype, None))
        if n == 2:
            return self._instance(req, rtype, p[1])
        if n == 3 and p[2] == "_history":
            return self._only(req, "GET", lambda r: self.history(r, rtype, p[1]))
        if n == 4 and p[2] == "_history":
            return self._only(req, "GET", lambda r: self.vread(r, rtype, p[1], p[3]))
        if n == 3 and p[2] in self.config.resource_types:
            return self._only(req, "GET", lambda r: self.search(r, p[2], f"{rtype}/{p[1]}"))
        raise NotFound(f"No FHIR interaction at /{'/'.join(p)}")

    def _only(self, req: FhirRequest, method: str, handler: Handler) -> FhirResponse:
        allowed = {method, "HEAD"} if method == "GET" else {method}
        if req.method not in allowed:
            raise MethodNotAllowed(f"{req.method} is not allowed on /{'/'.join(req.path)}; use {method}")
        return handler(req)

    def _system(self, req: FhirRequest) -> FhirResponse:
        if req.method == "POST":
            return self.bundles(req)
        if req.method in ("GET", "HEAD"):
            return self.search(req, None, None)
        raise MethodNotAllowed(f"{req.method} is not allowed at the FHIR base; POST a batch or transaction Bundle")

    def _type_level(self, req: FhirRequest, rtype: str) -> FhirResponse:
        m = req.method
        has_query = any(not k.startswith("_format") and k != "_pretty" for k, _ in req.query)
        if m in ("GET", "HEAD"):
            return self.search(req, rtype, None)
        if m == "POST":
            return self.create(req, rtype)
        if m == "PUT" and has_query:
            return self.write_response(
                req,
                self.repo.conditional_update(rtype, self._query_string(req), self._body(req), req.header("if-match")),
            )
        if m == "PATCH" and has_query:
            return self.write_response(
                req,
                self.repo.conditional_patch(rtype, self._query_string(req), self._body(req), req.header("if-match")),
            )
        if m == "DELETE" and has_query:
            result = self.repo.conditional_delete(rtype, self._query_string(req))
            return self.delete_response(result)
        raise MethodNotAllowed(f"{m} on /{rtype} needs search criteria (a conditional {m.lower()})")

    def _instance(self, req: FhirRequest, rtype: str, id: str) -> FhirResponse:
        m = req.method
        if m in ("GET", "HEAD"):
            return self.read(req, rtype, id)
        if m == "PUT":
            body = self._body(req)
            return self.write_response(req, self.repo.update(rtype, id, body, req.header("if-match")))
        if m == "PATCH":
            return self.patch(req, rtype, id)
        if m == "DELETE":
            return self.delete_response(self.repo.delete(rtype, id))
        raise MethodNotAllowed(f"{m} is not allowed on /{rtype}/{id}")

    def _operation(self, req: FhirRequest) -> FhirResponse:
        name = req.path[-1]
        handler = self.operations.get(name)
        if handler is None:
            raise NotSupported(f"Operation {name} is not supported")
        if len(req.path) > 1 and req.path[0] not in self.config.resource_types:
            raise NotFound(f"Unknown resource type '{req.path[0]}'")
        return handler(req)

    # --- interactions -----------------------------------------------------------------------------
    def read(self, req: FhirRequest, rtype: str, id: str) -> FhirResponse:
        stored = self.repo.read(rtype, id)
        if self._not_modified(req, stored):
            return FhirResponse(304, None, {"etag": stored.etag, "last-modified": http_date(stored.last_updated)})
        return self.resource_response(req, stored)

    def vread(self, req: FhirRequest, rtype: str, id: str, version: str) -> FhirResponse:
        return self.resource_response(req, self.repo.vread(rtype, id, version))

    def create(self, req: FhirRequest, rtype: str) -> FhirResponse:
        result = self.repo.create(rtype, self._body(req), req.header("if-none-exist"))
        return self.write_response(req, result)

    def patch(self, req: FhirRequest, rtype: str, id: str) -> FhirResponse:
        ctype = (req.header("content-type") or "").split(";")[0].strip()
        if ctype not in ("application/json-patch+json", ""):
            raise NotSupported(f"PATCH supports JSON Patch (application/json-patch+json), not {ctype}")
        return self.write_response(req, self.repo.patch(rtype, id, self._body(req), req.header("if-match")))

    def history(self, req: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
        count = self._count(req)
        offset = int_param(req, "_offset", 0)
        snapshot = req.param("_snapshot")
        query = HistoryQuery(
            type=rtype,
            id=id,
            since=instant_param(req, "_since"),
            at=instant_param(req, "_at"),
            count=count,
            offset=offset,
            snapshot=int(snapshot) if snapshot and snapshot.isdigit() else None,
        )
        page = self.repo.history(query)
        base = req.base_url
        entries = [self.history_entry(base, s) for s in page.entries]
        path = "/".join(x for x in (rtype, id, "_history") if x)
        keep = [(k, v) for k, v in req.query if k in ("_since", "_at")]
        links = page_links(f"{base}/{path}", keep, page.snapshot, offset, count, page.total)
        return FhirResponse(200, bundle_bytes("history", entries, total=page.total, links=links))

    @staticmethod
    def history_entry(base: str, s: StoredResource) -> Entry:
        url = f"{base}/{s.type}/{s.id}"
        method = {"PATCH": "PATCH", "DELETE": "DELETE"}.get(s.method, "POST" if s.version == 1 else "PUT")
        request_url = s.type if method == "POST" else f"{s.type}/{s.id}"
        status = "410 Gone" if s.deleted else ("201 Created" if s.version == 1 else "200 OK")
        fields: dict[str, Any] = {
            "fullUrl": url,
            "request": {"method": method, "url": request_url},
            "response": {"status": status, "etag": s.etag, "lastModified": s.last_updated},
        }
        return Entry(fields, s.body)

    # --- responses --------------------------------------------------------------------------------
    def resource_response(self, req: FhirRequest, stored: StoredResource, status: int = 200) -> FhirResponse:
        headers = {"etag": stored.etag, "last-modified": http_date(stored.last_updated)}  # no Location on a read
        return FhirResponse(status, self.shape(req, stored.body or b""), headers)

    def shape(self, req: FhirRequest, body: bytes) -> bytes:
        """Apply `_summary`/`_elements` if asked; otherwise return the stored bytes untouched."""
        summary, elements = req.param("_summary"), req.param("_elements")
        if not summary and not elements:
            return body
        resource = orjson.loads(body)
        if summary:
            resource = summarise(resource, summary, self.summary_elements, self.mandatory_elements)
        if elements:
            resource = keep_elements(
                resource, parse_elements(elements), self.mandatory_elements(resource["resourceType"])
            )
        return orjson.dumps(resource)

    def write_response(self, req: FhirRequest, result: WriteResult) -> FhirResponse:
        stored = result.stored
        headers = resource_headers(stored, req.base_url)
        status = 201 if result.created and result.changed else 200
        prefer = _prefer_return(req)
        if prefer == "minimal":
            return FhirResponse(status, None, headers)
        if prefer == "OperationOutcome":
            verb = "created" if status == 201 else ("matched" if not result.changed else "updated")
            note = Issue("information", "informational", f"{stored.type}/{stored.id} {verb} (version {stored.version})")
            return FhirResponse(status, outcome_bytes([note]), headers)
        return FhirResponse(status, stored.body, headers)

    @staticmethod
    def delete_response(result: WriteResult | None) -> FhirResponse:
        if result is None:
            msg = "No resource matched the conditional delete; nothing was deleted"
            return FhirResponse(200, outcome_bytes([Issue("information", "not-found", msg)]))
        s = result.stored
        return FhirResponse(204, None, {"etag": s.etag})

    def _not_modified(self, req: FhirRequest, stored: StoredResource) -> bool:
        inm = req.header("if-none-match")
        if inm is not None:
            tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
            return f'"{stored.version}"' in tags or "*" in tags
        ims = req.header("if-modified-since")
        if ims:
            try:
                since = parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                return False
            changed = datetime.strptime(stored.last_updated, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            return changed.replace(microsecond=0) <= since
        return False

    # --- request parts ------------------------------------------------------------------------------
    def _body(self, req: FhirRequest) -> Any:
        return req.parsed if req.parsed is not None else parse_json(req.body)

    @staticmethod
    def _query_string(req: FhirRequest) -> str:
        from urllib.parse import urlencode

        return urlencode([(k, v) for k, v in req.query if not k.startswith("_format") and k != "_pretty"])

    def _count(self, req: FhirRequest) -> int:
        count = int_param(req, "_count", self.config.default_page_size)
        return max(0, min(count, self.config.max_page_size))


def page_links(
    url: str, keep: list[tuple[str, str]], snapshot: int, offset: int, count: int, total: int | None
) -> list[tuple[str, str]]:
    """Paging links anchored on a snapshot sequence number, so pages do not shift while writes happen."""
    from urllib.parse import urlencode

    def link(off: int) -> str:
        return f"{url}?{urlencode([*keep, ('_count', count), ('_snapshot', snapshot), ('_offset', off)])}"

    links = [("self", link(offset))]
    if offset > 0:
        links.append(("previous", link(max(0, offset - count))))
    if total is not None and offset + count < total:
        links.append(("next", link(offset + count)))
    return links


def _prefer_return(req: FhirRequest) -> str:
    prefer = req.header("prefer") or ""
    for part in prefer.split(";") + prefer.split(","):
        key, _, value = part.strip().partition("=")
        if key == "return":
            return value.strip().strip('"')
    return "representation"
