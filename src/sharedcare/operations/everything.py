"""`$everything` across organisations: the longitudinal record of one person.

`GET /Patient/{id}/$everything` (any linked source Patient) and `GET /Person/{id}/$everything` return every
current resource in the Patient compartment of every source Patient linked to the same Person, including those
Patients and the Person (http://hl7.org/fhir/R4/patient-operation-everything.html).

- `_type` (comma-separated), `_since` (instant: last updated at or after), `_count` (page size).
- Paging: the `next` link carries `_cursor`, the last resource's row number; pages are in row order, so a
  resource that exists when paging starts appears exactly once however the store changes meanwhile.
- Every entry carries extensions: `source-organization` (a Reference with the ODS code of the organisation the
  resource came from: the organisation its own `meta.source` names, as the server stamps it on each write; else the
  organisation owning its source Patient, i.e. that Patient's managingOrganization) and `source-patient` (that
  Patient). The Person entry (the MPI's own resource) carries neither.
- The caller's access restriction (relationship, consent, sensitivity, role types) is ANDed into the page, the
  total and the duplicate flags, as for search: sensitive entries from other organisations are withheld unless the
  role sees them. When something was withheld for sensitivity an outcome entry (issue `suppressed`) says so.
- Facts that look the same as one sent by another organisation (same kind, code, day and value) carry
  `possible-duplicate` extensions naming the other resource. Nothing is dropped.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any
from urllib.parse import urlencode

import orjson

from sharedcare.errors import InvalidRequest, NotFound
from sharedcare.fhir.bundle import Entry, bundle_bytes
from sharedcare.fhir.outcome import outcome_bytes
from sharedcare.matching.features import MatchRecord, meta_source_organisation
from sharedcare.matching.resources import DUPLICATE_URL, ODS_SYSTEM, SOURCE_ORG_URL, SOURCE_PATIENT_URL
from sharedcare.matching.service import MatchService
from sharedcare.request_params import instant_param, int_param
from sharedcare.store.search_exec import WITHHELD_NOTICE
from sharedcare.types import FhirRequest, FhirResponse, Issue

DEFINITION = "http://hl7.org/fhir/OperationDefinition/Patient-everything"


def everything_operation(service: MatchService, repo: Any, default_count: int, max_count: int) -> Any:
    def handler(req: FhirRequest) -> FhirResponse:
        if req.method not in ("GET", "HEAD", "POST") or len(req.path) != 3 or req.path[0] not in ("Patient", "Person"):
            raise InvalidRequest("$everything is at /Patient/[id]/$everything or /Person/[id]/$everything")
        rtype, rid = req.path[0], req.path[1]
        repo.read(rtype, rid)  # 404 / 410 for an unknown or deleted subject
        _, patients = service.linked_patients(rtype, rid)
        if not patients:
            raise NotFound(f"{rtype}/{rid} links no source Patient")
        types = [t for t in (req.param("_type") or "").split(",") if t]
        since = instant_param(req, "_since")
        count = min(int_param(req, "_count", default_count), max_count)
        cursor = int_param(req, "_cursor", 0)
        restrict_for = getattr(repo.store, "record_restrict", None)
        restrict, unlabelled = restrict_for(patients) if restrict_for else (None, None)
        with service.mpi.reading() as sql:
            total = sql.everything_total(patients, types, since, restrict)
            rows = sql.everything_page(patients, types, since, cursor, count + 1, restrict) if count else []
            more, rows = len(rows) > count, rows[:count]
            orgs = {pid: MatchRecord.from_json(f).org for pid, _, _, f in sql.records(patients)}
            duplicates = _duplicates(sql, rows, patients, orgs, restrict)
            withheld = bool(
                restrict and unlabelled and sql.everything_withheld(patients, types, since, restrict, unlabelled)
            )
        entries = [_entry(req.base_url, row, orgs, duplicates) for row in rows]
        if withheld:
            entries.insert(0, withheld_entry())
        links = _links(req, rtype, rid, count, rows if more else [], cursor)
        return FhirResponse(200, bundle_bytes("searchset", entries, total=total, links=links))

    return handler


def _entry(base: str, row: tuple, orgs: dict[str, str | None], duplicates: dict[tuple[str, str], list[str]]) -> Entry:
    _, type, id, _, _, body, patient_id = row
    fields: dict[str, Any] = {"fullUrl": f"{base}/{type}/{id}", "search": {"mode": "match"}}
    if type == "Person":
        return Entry(fields, body)  # the MPI's own resource: it comes from no source organisation
    extension: list[dict[str, Any]] = []
    org = meta_source_organisation(orjson.loads(body)) or orgs.get(patient_id)
    if org:
        extension.append(
            {"url": SOURCE_ORG_URL, "valueReference": {"identifier": {"system": ODS_SYSTEM, "value": org}}}
        )
    extension.append({"url": SOURCE_PATIENT_URL, "valueReference": {"reference": f"Patient/{patient_id}"}})
    for other in duplicates.get((type, id), ()):
        extension.append({"url": DUPLICATE_URL, "valueReference": {"reference": other}})
    return Entry({"fullUrl": fields["fullUrl"], "extension": extension, "search": fields["search"]}, body)


def withheld_entry() -> Entry:
    """An outcome entry saying that something was withheld by the access policy, never what."""
    issue = Issue("information", "suppressed", WITHHELD_NOTICE)
    return Entry({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "search": {"mode": "outcome"}}, outcome_bytes([issue]))


def _duplicates(
    sql: Any, rows: list[tuple], patients: list[str], orgs: dict[str, str | None], restrict: Any = None
) -> dict[tuple[str, str], list[str]]:
    """For each resource on the page, same-looking facts from another organisation (or another source record)."""
    prints = sql.facts_of([(r[1], r[2]) for r in rows])
    if not prints:
        return {}
    holders: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for fp, type, id, pid in sql.same_facts(list(prints.values()), patients, restrict):
        holders[fp].append((type, id, pid))
    owner = {(r[1], r[2]): r[6] for r in rows}
    out: dict[tuple[str, str], list[str]] = {}
    for key, fp in prints.items():
        mine = owner[key]
        others = [
            f"{t}/{i}"
            for t, i, pid in holders.get(fp, ())
            if (t, i) != key and pid != mine and (orgs.get(pid) is None or orgs.get(pid) != orgs.get(mine))
        ]
        if others:
            out[key] = sorted(others)
    return out


def _links(req: FhirRequest, rtype: str, rid: str, count: int, more: list[tuple], cursor: int) -> list[tuple[str, str]]:
    """self, first and (when `more` holds the page that has a successor) next."""
    keep = [(k, v) for k, v in req.query if k in ("_type", "_since")]
    url = f"{req.base_url}/{rtype}/{rid}/$everything"

    def link(after: int) -> str:
        return f"{url}?{urlencode([*keep, ('_count', count), ('_cursor', after)])}"

    links = [("self", link(cursor))]
    if more:
        links.append(("next", link(more[-1][0])))
    if cursor:
        links.append(("first", link(0)))
    return links
