"""AuditEvent search and read, served from the audit log (http://hl7.org/fhir/R4/auditevent.html#search).

Parameters: `patient`, `agent` (user name, client id or reference), `entity` (Type/id), `action`, `outcome`,
`type`, `subtype`, `date` (with eq/ge/gt/le/lt prefixes, repeatable), `request` (request id), `_count`,
`_offset`. Newest first. A caller limited to one patient (a patient's "who looked at my record") gets only
events about that patient, with network addresses, token ids and queries left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from sharedcare.audit.log import AuditLog
from sharedcare.errors import InvalidRequest, NotFound
from sharedcare.fhir.bundle import Entry, bundle_bytes
from sharedcare.types import FhirRequest, FhirResponse

TERMS = {"patient", "agent", "entity", "action", "outcome", "type", "subtype", "request"}
RESULT = {"_count", "_offset", "_format", "_pretty", "_sort"}
PREFIXES = {"eq", "ge", "gt", "le", "lt"}


class AuditSearch:
    def __init__(self, store: Any, log: AuditLog, *, default_count: int = 50, max_count: int = 1000) -> None:
        self.store, self.log = store, log
        self.default_count, self.max_count = default_count, max_count

    def search(
        self, req: FhirRequest, *, patient: str | None = None, path: str = "AuditEvent", redact: bool = False
    ) -> FhirResponse:
        terms, dates, count, offset = self._parse(req.query)
        if patient is not None:
            terms = [t for t in terms if t[0] != "patient"] + [("patient", [patient])]
        with self.store.reading() as cur:
            bodies, total = self.log.search(cur, terms, dates, count, offset)
        base = req.base_url
        entries = [self._entry(base, body, redact) for body in bodies]
        keep = [(k, v) for k, v in req.query if k not in RESULT]

        def link(off: int) -> str:
            return f"{base}/{path}?{urlencode([*keep, ('_count', count), ('_offset', off)])}"

        links = [("self", link(offset))]
        if offset + count < total:
            links.append(("next", link(offset + count)))
        if offset > 0:
            links.append(("previous", link(max(0, offset - count))))
        return FhirResponse(200, bundle_bytes("searchset", entries, total=total, links=links))

    def read(self, id: str, *, patient: str | None = None) -> FhirResponse:
        with self.store.reading() as cur:
            body = self.log.read(cur, id)
            if body is None or (patient is not None and patient not in self.log.patients_of(cur, id)):
                raise NotFound(f"AuditEvent/{id} is not known")
        return FhirResponse(200, _for_patient(body) if patient is not None else body)

    def _entry(self, base: str, body: bytes, redact: bool) -> Entry:
        shown = _for_patient(body) if redact else body
        id = orjson.loads(body)["id"]
        return Entry({"fullUrl": f"{base}/AuditEvent/{id}", "search": {"mode": "match"}}, shown)

    def _parse(
        self, query: Sequence[tuple[str, str]]
    ) -> tuple[list[tuple[str, list[str]]], list[tuple[str, str]], int, int]:
        terms: list[tuple[str, list[str]]] = []
        dates: list[tuple[str, str]] = []
        count, offset = self.default_count, 0
        for key, value in query:
            if key in TERMS:
                terms.append((key, [_term(key, v) for v in value.split(",") if v]))
            elif key == "date":
                dates += _date(value)
            elif key == "_count":
                count = min(_int(key, value), self.max_count)
            elif key == "_offset":
                offset = _int(key, value)
            elif key == "_sort":
                if value not in ("-date", "-_lastUpdated"):
                    raise InvalidRequest("AuditEvent search is sorted newest first (_sort=-date) only")
            elif key not in RESULT:
                raise InvalidRequest(f"Unknown AuditEvent search parameter '{key}'")
        return terms, dates, count, offset


def _term(key: str, value: str) -> str:
    value = value.split("|")[-1] if key in ("type", "subtype", "agent") else value
    if key == "patient":
        return value.removeprefix("Patient/")
    return value


def _int(key: str, value: str) -> int:
    if not value.isdigit():
        raise InvalidRequest(f"{key} must be a non-negative integer")
    return int(value)


def _date(value: str) -> list[tuple[str, str]]:
    prefix = value[:2] if value[:2] in PREFIXES else "eq"
    text = value[2:] if value[:2] in PREFIXES else value
    low, high = _bounds(text)
    return {
        "eq": [(">=", low), ("<=", high)],
        "ge": [(">=", low)],
        "gt": [(">", high)],
        "le": [("<=", high)],
        "lt": [("<", low)],
    }[prefix]


def _bounds(text: str) -> tuple[str, str]:
    """A FHIR date/dateTime as the range of instants (millisecond text, as AuditEvent.recorded) it covers."""
    try:
        if len(text) == 4:
            return f"{text}-01-01T00:00:00.000Z", f"{text}-12-31T23:59:59.999Z"
        if len(text) == 7:
            return f"{text}-01T00:00:00.000Z", f"{text}-31T23:59:59.999Z"
        if len(text) == 10:
            datetime.fromisoformat(text)
            return f"{text}T00:00:00.000Z", f"{text}T23:59:59.999Z"
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"date must be a FHIR date or dateTime, got '{text}'") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    instant = dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"
    return instant, instant[:20] + "999Z" if instant[20:23] == "000" else instant


def _for_patient(body: bytes) -> bytes:
    """What a patient sees of an event about them: who, in what role and organisation, when, what, outcome."""
    event = orjson.loads(body)
    for agent in event.get("agent") or []:
        agent.pop("network", None)
        agent.pop("policy", None)
    event["entity"] = [e for e in event.get("entity") or [] if "query" not in e]
    return orjson.dumps(event)
