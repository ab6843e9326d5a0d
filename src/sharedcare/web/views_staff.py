"""Pages for care staff: find a patient, open their record, and ask for access with a reason when refused.

Finding uses FHIR search (NHS number, or family name and date of birth, as PDS asks: domain-uk.md §3); the
results are grouped by person (one NHS number, several organisations' records). Opening a record the access
policy refuses leads to the access page: a self-claimed legitimate relationship or break glass, each with a reason,
time-limited, audited and alerted to the privacy officer (domain-uk.md §6).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from starlette.responses import Response

from sharedcare.fhir.nhs_number import is_valid_nhs_number
from sharedcare.web import display as d
from sharedcare.web.gateway import ServiceError
from sharedcare.web.record import build_record
from sharedcare.web.site import CLINICAL, STAFF, Ctx
from sharedcare.web.views_record import load_record, render_section

NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
MAX_RESULTS = "50"
GRANTS = {
    "break-glass": ("$break-glass", "Emergency access (break glass)"),
    "self-claim": ("$claim-relationship", "Self-claimed relationship"),
}
REASON_CODES = {
    "break-glass": [
        ("emergency", "Emergency care: the patient cannot consent"),
        ("urgent-unplanned", "Urgent unplanned care"),
        ("safeguarding", "Safeguarding concern"),
    ],
    "self-claim": [
        ("new-referral", "New referral or admission not yet recorded"),
        ("cover", "Covering for a colleague"),
        ("care-team", "I am joining the patient's care team"),
    ],
}


@dataclass
class PersonResult:
    """One person found: every organisation's Patient record that shares the NHS number."""

    nhs_number: str
    patients: list[dict[str, Any]] = field(default_factory=list)

    def open_id(self, organisation: str | None) -> str:
        """The record to open: the caller's own organisation's, else the GP registration, else the first."""
        own = [p for p in self.patients if _managing(p) == organisation]
        gp = [
            p
            for p in self.patients
            if _managing(p) and _managing(p) in {_ods(g) for g in p.get("generalPractitioner") or []}
        ]
        return str((own or gp or self.patients)[0].get("id", ""))

    @property
    def main(self) -> dict[str, Any]:
        gp = [p for p in self.patients if _managing(p) in {_ods(g) for g in p.get("generalPractitioner") or []}]
        return (gp or self.patients)[0]

    @property
    def organisations(self) -> list[str]:
        names = [str((p.get("managingOrganization") or {}).get("display") or _managing(p)) for p in self.patients]
        return sorted(set(n for n in names if n))


def find_patient(ctx: Ctx) -> Response:
    q = ctx.query
    form = {k: q.get(k, "").strip() for k in ("nhs_number", "family", "given", "dob-day", "dob-month", "dob-year")}
    by = q.get("by", "nhs")
    if not any(form.values()):
        return ctx.render("find.jinja", form=form, by=by, errors={}, results=None)
    errors, query = _search_query(form, by)
    if errors:
        return ctx.render("find.jinja", 400, form=form, by=by, errors=errors, results=None)
    entries, notices = ctx.gateway().search_all("Patient", [*query, ("_count", MAX_RESULTS)], limit=200)
    results = _group([e["resource"] for e in entries])
    org = getattr(ctx.actor, "organisation", None)
    rows = [(r, r.open_id(org)) for r in results]
    return ctx.render("find.jinja", form=form, by=by, errors={}, results=rows, notices=notices)


def _search_query(form: dict[str, str], by: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    errors: dict[str, str] = {}
    if by == "nhs":
        digits = form["nhs_number"].replace(" ", "").replace("-", "")
        if not digits:
            errors["nhs_number"] = "Enter an NHS number"
        elif len(digits) != 10 or not digits.isdigit():
            errors["nhs_number"] = "NHS number must be 10 digits"
        elif not is_valid_nhs_number(digits):
            errors["nhs_number"] = "Enter a valid NHS number: this one fails the check digit"
        return errors, [("identifier", f"{NHS_SYSTEM}|{digits}")]
    if not form["family"]:
        errors["family"] = "Enter the patient's last name"
    born = _date_of_birth(form)
    if born is None:
        errors["dob"] = "Enter the date of birth, for example 15 3 1984"
    elif born > date.today():
        errors["dob"] = "Date of birth must be in the past"
    query = [("family", form["family"])]
    if form["given"]:
        query.append(("given", form["given"]))
    if born is not None:
        query.append(("birthdate", born.isoformat()))
    return errors, query


def _date_of_birth(form: dict[str, str]) -> date | None:
    try:
        return date(int(form["dob-year"]), int(form["dob-month"]), int(form["dob-day"]))
    except ValueError:
        return None


def _group(patients: list[dict[str, Any]]) -> list[PersonResult]:
    people: dict[str, PersonResult] = {}
    for patient in patients:
        key = d.nhs_number_of(patient) or f"id:{patient.get('id')}"
        people.setdefault(key, PersonResult(d.nhs_number_of(patient) or "")).patients.append(patient)
    return list(people.values())


def _managing(patient: dict[str, Any]) -> str:
    return _ods(patient.get("managingOrganization") or {})


def _ods(ref: dict[str, Any]) -> str:
    value = (ref.get("identifier") or {}).get("value")
    if value:
        return str(value)
    text = str(ref.get("reference") or "")
    return text.split("/", 1)[1] if text.startswith("Organization/") else ""


# --- the record -------------------------------------------------------------------------------------------------
def record(ctx: Ctx) -> Response:
    pid = ctx.params["pid"]
    try:
        rec = load_record(ctx, pid)
    except ServiceError as err:
        if err.refused:
            return ctx.redirect(f"/patients/{pid}/access")
        raise
    grant = (ctx.session.data.get("grants") or {}).get(pid)
    return render_section(ctx, rec, ctx.params.get("section", ""), f"/patients/{pid}", grant=grant)


def document(ctx: Ctx) -> Response:
    pid, doc_id = ctx.params["pid"], ctx.params["doc"]
    gateway = ctx.gateway()
    try:
        patient = gateway.get(f"Patient/{pid}")
        doc = gateway.get(f"DocumentReference/{doc_id}")
    except ServiceError as err:
        if err.refused and "withheld" in err.message.lower():
            return ctx.render("error.jinja", 403, title="This document is withheld", message=err.message)
        raise
    rec = build_record([{"resource": patient}], pid)
    return ctx.render(
        "record/document.jinja",
        record=rec,
        doc=doc,
        text=_document_text(doc),
        base=f"/patients/{pid}",
        title=d.concept(doc.get("type")) or "Document",
    )


def _document_text(doc: dict[str, Any]) -> str:
    for content in doc.get("content") or []:
        attachment = content.get("attachment") or {}
        if str(attachment.get("contentType", "")).startswith("text/") and attachment.get("data"):
            try:
                return base64.b64decode(attachment["data"]).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return ""
    return ""


# --- asking for access ------------------------------------------------------------------------------------------
def access(ctx: Ctx) -> Response:
    pid = ctx.params["pid"]
    may = _grant_kinds(ctx)
    if ctx.request.method == "GET":
        return ctx.render("access.jinja", pid=pid, may=may, errors={}, form={}, reason_codes=REASON_CODES)
    kind = ctx.form.get("kind", "")
    reason = ctx.form.get("reason", "").strip()
    errors = {}
    if kind not in may:
        errors["kind"] = "Choose how you are asking for access"
    if len(reason) < 10:
        errors["reason"] = "Give a reason of at least 10 characters: it is recorded and reviewed"
    if errors:
        return ctx.render(
            "access.jinja", 400, pid=pid, may=may, errors=errors, form=ctx.form, reason_codes=REASON_CODES
        )
    operation, label = GRANTS[kind]
    params = [{"name": "reason", "valueString": reason}]
    if ctx.form.get("reason_code"):
        params.append({"name": "reasonCode", "valueCode": ctx.form["reason_code"]})
    try:
        result = ctx.gateway().post(f"Patient/{pid}/{operation}", {"resourceType": "Parameters", "parameter": params})
    except ServiceError as err:
        if err.status >= 500:
            raise
        errors["reason"] = err.message
        return ctx.render(
            "access.jinja", 400, pid=pid, may=may, errors=errors, form=ctx.form, reason_codes=REASON_CODES
        )
    expires = next((p.get("valueInstant") for p in result.get("parameter") or [] if p.get("name") == "expires"), "")
    ctx.session.data.setdefault("grants", {})[pid] = {
        "kind": kind,
        "label": label,
        "expires": expires,
        "reason": reason,
    }
    ctx.flash(
        "warning",
        f"{label} granted until {d.date_time(expires)} (UTC). This access is recorded and the "
        "privacy officer has been told.",
    )
    return ctx.redirect(f"/patients/{pid}")


def _grant_kinds(ctx: Ctx) -> list[str]:
    """Clinical roles may break glass and self-claim; administrators may only self-claim (roles.py)."""
    return ["self-claim", "break-glass"] if ctx.role in CLINICAL else ["self-claim"]


PAGES = [
    ("/patients", find_patient, STAFF, ["GET"]),
    ("/patients/{pid}/access", access, STAFF, ["GET", "POST"]),
    ("/patients/{pid}/documents/{doc}", document, STAFF, ["GET"]),
    ("/patients/{pid}", record, STAFF, ["GET"]),
    ("/patients/{pid}/{section}", record, STAFF, ["GET"]),
]
