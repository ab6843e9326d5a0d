"""Type and compartment search over the shared index (http://hl7.org/fhir/R4/search.html).

Result parameters handled here: `_count`, paging (`_offset`), `_summary`, `_elements`, `_total`. Criteria are
compiled by the store's compiler, which rejects what it does not support rather than ignoring it.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlencode

from sharedcare.errors import InvalidRequest, NotSupported
from sharedcare.fhir.bundle import Entry, bundle_bytes
from sharedcare.types import FhirRequest, FhirResponse, StoredResource

RESULT_PARAMS = {"_count", "_offset", "_format", "_pretty", "_summary", "_elements", "_total"}


class SearchStore(Protocol):
    def search_page(
        self, type: str, params: Any, count: int, offset: int, compartment: str | None = None
    ) -> tuple[list[StoredResource], int]: ...


class PageConfig(Protocol):
    default_page_size: int
    max_page_size: int


class SearchHandler:
    def __init__(self, store: SearchStore, registry: Any, config: PageConfig) -> None:
        self.store, self.registry, self.config = store, registry, config

    def __call__(self, req: FhirRequest, rtype: str | None, compartment: str | None) -> FhirResponse:
        if rtype is None:
            raise NotSupported("System-level search is not supported yet; search one resource type")
        query = list(req.query)
        if req.method == "POST" and req.body:
            from urllib.parse import parse_qsl

            query += parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True)
        criteria = [(k, v) for k, v in query if k not in RESULT_PARAMS]
        count = self._int(query, "_count", self.config.default_page_size)
        count = min(count, self.config.max_page_size)
        offset = self._int(query, "_offset", 0)
        summary = next((v for k, v in query if k == "_summary"), None)
        page_size = 0 if summary == "count" else count
        found, total = self.store.search_page(rtype, criteria, page_size, offset, compartment)
        base = req.base_url
        entries = [Entry({"fullUrl": f"{base}/{s.type}/{s.id}", "search": {"mode": "match"}}, s.body) for s in found]
        url = f"{base}/{compartment + '/' if compartment else ''}{rtype}"
        keep = [(k, v) for k, v in criteria]

        def link(off: int) -> str:
            return f"{url}?{urlencode([*keep, ('_count', count), ('_offset', off)])}"

        links = [("self", link(offset))]
        if offset + count < total and page_size:
            links.append(("next", link(offset + count)))
        if offset > 0:
            links.append(("previous", link(max(0, offset - count))))
        return FhirResponse(200, bundle_bytes("searchset", entries, total=total, links=links))

    @staticmethod
    def _int(query: list[tuple[str, str]], name: str, default: int) -> int:
        raw = next((v for k, v in query if k == name), None)
        if raw is None:
            return default
        if not raw.isdigit():
            raise InvalidRequest(f"{name} must be a non-negative integer, got '{raw}'")
        return int(raw)
