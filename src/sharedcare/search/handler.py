"""Type, system and compartment search (http://hl7.org/fhir/R4/search.html, http://hl7.org/fhir/R4/http.html#search).

GET and POST `_search` take the same parameters (POST as a form body, merged with the query string). The parsed
`SearchRequest` goes to the store; the Bundle is assembled by splicing stored bytes, re-parsing a resource only
for `_summary`/`_elements`. What was not applied is reported in an OperationOutcome entry (search.mode=outcome),
or rejected under `Prefer: handling=strict`; the self link lists only what was applied. Paging links carry an
opaque `_cursor` (snapshot + keyset position), see `sharedcare.store.search_exec`.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

import orjson

from sharedcare.errors import InvalidRequest
from sharedcare.fhir.bundle import Entry, bundle_bytes
from sharedcare.fhir.elements import keep_elements, parse_elements, summarise
from sharedcare.fhir.outcome import outcome_bytes
from sharedcare.search.model import Filter, PagePosition, SearchRequest, SearchResult, SearchStore
from sharedcare.search.parse import ParseOptions, QueryParser
from sharedcare.types import FhirRequest, FhirResponse, StoredResource

Restrict = Callable[[str], tuple[str, list[Any]]]


class RestrictFor(Protocol):
    """The current caller's (restriction, restriction without sensitivity) for a search over `types`."""

    def __call__(
        self, types: tuple[str, ...] | None, *, notice: bool = False
    ) -> tuple[Restrict | None, Restrict | None]: ...


NOTICE_PARAMS = frozenset({"_id", "patient", "subject"})


def _cheap_notice(search: SearchRequest) -> bool:
    """Telling that rows were withheld costs one more EXISTS: worth it when the search is about one patient (a
    compartment, or patient/subject/_id criteria that drive it), not for a broad search of the whole store."""
    if search.compartment is not None:
        return True
    return any(isinstance(c, Filter) and c.code in NOTICE_PARAMS and not c.modifier for c in search.criteria)


class PageConfig(Protocol):
    default_page_size: int
    max_page_size: int


class SearchHandler:
    def __init__(
        self,
        store: SearchStore,
        registry: Any,
        config: PageConfig,
        *,
        summary_elements: Callable[[str], frozenset[str]] | None = None,
        mandatory_elements: Callable[[str], frozenset[str]] | None = None,
        not_ready: Callable[[Any], str | None] | None = None,
        restrict_for: RestrictFor | None = None,
    ) -> None:
        self.store, self.registry, self.config = store, registry, config
        self.not_ready = not_ready
        self.restrict_for = restrict_for
        if summary_elements is None or mandatory_elements is None:
            from sharedcare.fhir import structures

            defs = structures.definitions()
            summary_elements = summary_elements or defs.summary_elements
            mandatory_elements = mandatory_elements or defs.mandatory_elements
        self.summary_elements, self.mandatory_elements = summary_elements, mandatory_elements

    def __call__(self, req: FhirRequest, rtype: str | None, compartment: str | None) -> FhirResponse:
        query = list(req.query)
        if req.method == "POST" and req.body:
            query += parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True)
        comp = self._compartment(compartment, rtype)
        options = ParseOptions(
            self.config.default_page_size, self.config.max_page_size, _strict(req), req.base_url, self.not_ready
        )
        search = QueryParser(self.registry, options).parse(query, rtype, comp)
        position = decode_cursor(search.cursor) if search.cursor else None
        if self.restrict_for is not None:
            restrict, unlabelled = self.restrict_for(search.types, notice=_cheap_notice(search))
            result = self.store.search_page(search, position, restrict, unlabelled)
        else:
            result = self.store.search_page(search, position)
        return FhirResponse(200, self.bundle(req, search, result, position, rtype, compartment))

    def _compartment(self, compartment: str | None, rtype: str | None) -> tuple[str, str] | None:
        if compartment is None:
            return None
        comp_type, _, comp_id = compartment.partition("/")
        if comp_type not in self.registry.compartment_types():
            raise InvalidRequest(f"{comp_type} is not a compartment type; compartments are "
                                 f"{', '.join(self.registry.compartment_types())}")
        if rtype is not None and rtype != comp_type and not self.registry.compartment_params(comp_type, rtype):
            raise InvalidRequest(f"{rtype} resources are never in a {comp_type} compartment")
        return comp_type, comp_id

    # ------------------------------------------------------------------------------------------ bundle

    def bundle(
        self,
        req: FhirRequest,
        search: SearchRequest,
        result: SearchResult,
        position: PagePosition | None,
        rtype: str | None,
        compartment: str | None,
    ) -> bytes:
        base = req.base_url
        entries: list[Entry] = []
        issues = [*search.issues, *result.issues]
        if issues:
            entries.append(Entry({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "search": {"mode": "outcome"}},
                                 outcome_bytes(issues)))
        for m in result.matches:
            entries.append(self.entry(base, m.resource, "match", search))
        for s in result.included:
            entries.append(self.entry(base, s, "include", search))
        path = "/".join(p for p in (compartment, rtype) if p)
        links = self.links(f"{base}/{path}" if path else base, search, result, position)
        return bundle_bytes("searchset", entries, total=result.total, links=links)

    def entry(self, base: str, s: StoredResource, mode: str, search: SearchRequest) -> Entry:
        fields = {"fullUrl": f"{base}/{s.type}/{s.id}", "search": {"mode": mode}}
        return Entry(fields, self.shape(s.body or b"{}", search))

    def shape(self, body: bytes, search: SearchRequest) -> bytes:
        if not search.summary and not search.elements:
            return body
        resource = orjson.loads(body)
        rtype = resource.get("resourceType", "")
        if search.summary:
            resource = summarise(resource, search.summary, self.summary_elements, self.mandatory_elements)
        if search.elements:
            resource = keep_elements(resource, parse_elements(",".join(search.elements)),
                                     self.mandatory_elements(rtype))
        return orjson.dumps(resource)

    def links(
        self, url: str, search: SearchRequest, result: SearchResult, position: PagePosition | None
    ) -> list[tuple[str, str]]:
        keep = [(k, v) for k, v in search.applied if k != "_count"]
        count = search.count

        def link(cursor: PagePosition | None) -> str:
            params = [*keep, ("_count", str(count))]
            if cursor is not None:
                params.append(("_cursor", encode_cursor(cursor)))
            return f"{url}?{urlencode(params)}"

        links = [("self", link(position))]
        if count == 0 or search.summary == "count":
            return links
        backwards = position is not None and position.backwards
        matches = result.matches
        if matches:
            first, last = matches[0].keys, matches[-1].keys
            if (result.more and not backwards) or backwards:
                links.append(("next", link(PagePosition(result.snapshot, last, False))))
            came_forwards = position is not None and not backwards
            if came_forwards or (backwards and result.more) or (position is None and search.offset):
                links.append(("previous", link(PagePosition(result.snapshot, first, True))))
        elif position is not None and position.keys is not None:
            # an empty page reached from a cursor: offer the way back (or on) from where it started
            rel = "next" if backwards else "previous"
            links.append((rel, link(PagePosition(result.snapshot, position.keys, not backwards))))
        return links


def _strict(req: FhirRequest) -> bool:
    prefer = req.header("prefer") or ""
    for part in prefer.replace(";", ",").split(","):
        key, _, value = part.strip().partition("=")
        if key.strip() == "handling":
            value = value.strip().strip('"')
            if value not in ("strict", "lenient"):
                raise InvalidRequest(f"Prefer: handling must be strict or lenient, got '{value}'")
            return value == "strict"
    return False


def encode_cursor(position: PagePosition) -> str:
    raw = json.dumps([position.snapshot, int(position.backwards), list(position.keys or ())], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> PagePosition:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        snapshot, backwards, keys = json.loads(raw)
        if not isinstance(snapshot, int) or not isinstance(keys, list):
            raise ValueError("bad cursor")
    except (ValueError, TypeError) as exc:
        raise InvalidRequest("_cursor is not a paging position this server issued") from exc
    return PagePosition(snapshot, tuple(keys) if keys else None, bool(backwards))

