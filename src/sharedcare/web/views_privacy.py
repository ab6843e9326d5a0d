"""Pages for the privacy officer: break-glass and self-claimed access alerts to review, and audit search.

Alerts are the Security Alert AuditEvents (DICOM 110113) written with each grant (`AuditEvent?type=110113`);
reviewing one shows everything the same person did to the same patient's record, so the officer can judge
whether the reason given fits what was looked at. The audit search is `AuditEvent` search by patient (NHS number
or id), user, date range, event type and outcome, newest first.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from starlette.responses import Response

from sharedcare.fhir.nhs_number import is_valid_nhs_number
from sharedcare.web import display as d
from sharedcare.web.audit_view import AuditRow, audit_row
from sharedcare.web.site import PRIVACY, Ctx
from sharedcare.web.views_record import organisation_names

ALERT_TYPE = "110113"
PAGE_SIZE = 25
EVENT_TYPES = [("", "Any"), ("110113", "Access alerts"), ("110114", "Sign-ins"), ("rest", "Record access")]
OUTCOMES = [("", "Any"), ("0", "Success"), ("4", "Refused"), ("8", "Failed")]


def alerts(ctx: Ctx) -> Response:
    offset = _offset(ctx)
    query = [("type", ALERT_TYPE), ("_count", str(PAGE_SIZE)), ("_offset", str(offset))]
    kind = ctx.query.get("kind", "")
    if kind in ("break-glass", "self-claim"):
        query.append(("subtype", kind))
    bundle = ctx.gateway().get("AuditEvent", query)
    rows = [audit_row(e.get("resource") or {}) for e in bundle.get("entry") or []]
    return ctx.render(
        "privacy/alerts.jinja",
        rows=rows,
        kind=kind,
        offset=offset,
        total=bundle.get("total", 0),
        page_size=PAGE_SIZE,
        **_context(ctx, rows, bundle),
    )


def alert(ctx: Ctx) -> Response:
    """One alert and what the same person did to the same record from then on."""
    event = ctx.gateway().get(f"AuditEvent/{ctx.params['id']}")
    row = audit_row(event)
    activity: list[AuditRow] = []
    if row.username and row.patients:
        bundle = ctx.gateway().get(
            "AuditEvent",
            [
                ("agent", row.username),
                ("patient", ",".join(row.patients)),
                ("date", f"ge{row.when}"),
                ("_count", "100"),
            ],
        )
        activity = [audit_row(e.get("resource") or {}) for e in bundle.get("entry") or []]
        activity = [a for a in activity if a.id != row.id]
    ctx_rows = [row, *activity]
    return ctx.render("privacy/alert.jinja", row=row, activity=activity, **_context(ctx, ctx_rows, {}))


def audit_search(ctx: Ctx) -> Response:
    q = ctx.query
    form = {k: q.get(k, "").strip() for k in ("patient", "user", "from", "to", "type", "outcome")}
    if not q.get("search"):
        return ctx.render(
            "privacy/audit.jinja", form=form, errors={}, rows=None, event_types=EVENT_TYPES, outcomes=OUTCOMES
        )
    errors, query = _audit_query(ctx, form)
    if errors:
        return ctx.render(
            "privacy/audit.jinja", 400, form=form, errors=errors, rows=None, event_types=EVENT_TYPES, outcomes=OUTCOMES
        )
    offset = _offset(ctx)
    bundle = ctx.gateway().get("AuditEvent", [*query, ("_count", str(PAGE_SIZE)), ("_offset", str(offset))])
    rows = [audit_row(e.get("resource") or {}) for e in bundle.get("entry") or []]
    return ctx.render(
        "privacy/audit.jinja",
        form=form,
        errors={},
        rows=rows,
        event_types=EVENT_TYPES,
        outcomes=OUTCOMES,
        offset=offset,
        total=bundle.get("total", 0),
        page_size=PAGE_SIZE,
        **_context(ctx, rows, bundle),
    )


def _audit_query(ctx: Ctx, form: dict[str, str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    errors: dict[str, str] = {}
    query: list[tuple[str, str]] = []
    patient = form["patient"].replace(" ", "")
    if patient:
        if patient.isdigit() and len(patient) == 10:
            if not is_valid_nhs_number(patient):
                errors["patient"] = "Enter a valid NHS number: this one fails the check digit"
            else:
                ids = _patient_ids(ctx, patient)
                if not ids:
                    errors["patient"] = "No patient has this NHS number"
                query.append(("patient", ",".join(ids)))
        else:
            query.append(("patient", patient.removeprefix("Patient/")))
    if form["user"]:
        query.append(("agent", form["user"]))
    for name, prefix in (("from", "ge"), ("to", "le")):
        if form[name]:
            try:
                date.fromisoformat(form[name])
            except ValueError:
                errors[name] = "Enter a date like 2025-03-15"
                continue
            query.append(("date", f"{prefix}{form[name]}"))
    if form["type"] in {t for t, _ in EVENT_TYPES if t}:
        query.append(("type", form["type"]))
    if form["outcome"] in {o for o, _ in OUTCOMES if o}:
        query.append(("outcome", form["outcome"]))
    return errors, query


def _patient_ids(ctx: Ctx, nhs_number: str) -> list[str]:
    bundle = ctx.gateway().get(
        "Patient",
        [("identifier", f"{d.NHS_NUMBER_SYSTEM}|{nhs_number}"), ("_count", "50"), ("_elements", "identifier")],
    )
    return [str((e.get("resource") or {}).get("id")) for e in bundle.get("entry") or []]


def _context(ctx: Ctx, rows: list[AuditRow], bundle: dict[str, Any]) -> dict[str, Any]:
    """Organisation names, and each patient's name and NHS number (one search for all patients on the page)."""
    org_names = organisation_names(ctx, {r.organisation for r in rows})
    ids = sorted({p for r in rows for p in r.patients})
    patients: dict[str, dict[str, str]] = {}
    if ids:
        found = ctx.gateway().get("Patient", [("_id", ",".join(ids)), ("_count", str(len(ids)))])
        for entry in found.get("entry") or []:
            p = entry.get("resource") or {}
            patients[str(p.get("id"))] = {"name": d.human_name(p), "nhs": d.nhs_number(d.nhs_number_of(p))}
    has_next = any(link.get("relation") == "next" for link in bundle.get("link") or [])
    return {"org_names": org_names, "patients": patients, "has_next": has_next}


def _offset(ctx: Ctx) -> int:
    raw = ctx.query.get("offset", "0")
    return int(raw) if raw.isdigit() else 0


PAGES = [
    ("/privacy/alerts", alerts, PRIVACY, ["GET"]),
    ("/privacy/alerts/{id}", alert, PRIVACY, ["GET"]),
    ("/privacy/audit", audit_search, PRIVACY, ["GET"]),
]
