"""The longitudinal record pages, shared by clinicians (`/patients/{id}/...`) and patients (`/my-record/...`).

A page asks the service for `Patient/{id}/$everything` as the signed-in person, so what it shows is exactly what
the access policy lets that person see, and the read is audited like any API read. Sections are plain links
(no JavaScript), so each section has its own URL a clinician can bookmark or share with a colleague.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from sharedcare.web.gateway import Gateway, ServiceError
from sharedcare.web.record import Record, build_record
from sharedcare.web.site import Ctx

SECTIONS = (
    ("", "Summary"),
    ("problems", "Problems"),
    ("medications", "Medications"),
    ("allergies", "Allergies"),
    ("encounters", "Encounters"),
    ("results", "Results"),
    ("documents", "Documents"),
    ("care-plans", "Care plans"),
    ("sources", "Sources"),
)
SECTION_NAMES = dict(SECTIONS)
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
TAG_COLOURS = ("blue", "purple", "green", "orange", "aqua-green", "yellow", "red", "grey", "white")
EVERYTHING_PAGE = "1000"


def load_record(ctx: Ctx, patient_id: str) -> Record:
    entries, notices = ctx.gateway().search_all(f"Patient/{patient_id}/$everything", [("_count", EVERYTHING_PAGE)])
    return build_record(entries, patient_id, notices)


def render_section(ctx: Ctx, record: Record, section: str, base: str, **extra: Any) -> Response:
    """One section of a record; `base` is the record's URL (`/patients/{id}` or `/my-record`)."""
    if section not in SECTION_NAMES:
        return ctx.render("error.jinja", 404, title="Page not found", message="There is no such part of the record.")
    tags = {ods: TAG_COLOURS[n % len(TAG_COLOURS)] for n, ods in enumerate(record.sources)}
    return ctx.render(
        f"record/{section or 'summary'}.jinja",
        record=record,
        section=section,
        section_title=SECTION_NAMES[section],
        sections=SECTIONS,
        base=base,
        tags=tags,
        source_names={ods: s.name for ods, s in record.sources.items()},
        **extra,
    )


def organisation_names(ctx: Ctx, codes: set[str]) -> dict[str, str]:
    """ODS code → organisation name, from the directory (Organization search as the signed-in person).

    Directory entries are not personal data and change rarely, so names found are kept for every session."""
    known = ctx.web.org_names
    wanted = sorted(c for c in codes if c and c not in known)
    if wanted:
        gateway: Gateway = ctx.gateway()
        try:
            bundle = gateway.get(
                "Organization", [("identifier", ",".join(f"{ODS_SYSTEM}|{c}" for c in wanted)), ("_count", "100")]
            )
        except ServiceError:  # the names are a nicety: a refusal leaves the codes showing
            bundle = {}
        for entry in bundle.get("entry") or []:
            org = entry.get("resource") or {}
            for ident in org.get("identifier") or []:
                if ident.get("system") == ODS_SYSTEM and org.get("name"):
                    known[str(ident["value"])] = str(org["name"])
    return {c: known.get(c, c) for c in codes}
