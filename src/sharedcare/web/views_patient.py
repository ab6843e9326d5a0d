"""Pages for a patient: their own record, who has looked at it, and adding to it.

A patient adds two things (domain-uk.md §8, §11): home blood pressure readings, coded as UK Core blood pressure
panels (LOINC 85354-9 with 8480-6/8462-4 components, SNOMED 335661000000109 "self measured") with the patient as
performer; and "what matters to me", a QuestionnaireResponse the patient authors, shown prominently and labelled
as written by them. Both are ordinary FHIR writes through the service, checked as the patient's own (a patient
may write only to their own record) and audited.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from starlette.responses import Response

from sharedcare.web.audit_view import audit_row
from sharedcare.web.gateway import ServiceError
from sharedcare.web.record import HOME_BP_CODE, WHAT_MATTERS
from sharedcare.web.site import PATIENT, Ctx
from sharedcare.web.views_record import load_record, organisation_names, render_section
from sharedcare.web.views_staff import _document_text

SNOMED, LOINC, UCUM = "http://snomed.info/sct", "http://loinc.org", "http://unitsofmeasure.org"
MAX_STATEMENT = 1000


def _pid(ctx: Ctx) -> str:
    return str(getattr(ctx.actor, "patient", "") or "")


def my_record(ctx: Ctx) -> Response:
    pid = _pid(ctx)
    rec = load_record(ctx, pid)
    return render_section(ctx, rec, ctx.params.get("section", ""), "/my-record", patient_view=True)


def my_document(ctx: Ctx) -> Response:
    gateway = ctx.gateway()
    doc = gateway.get(f"DocumentReference/{ctx.params['doc']}")
    rec = load_record(ctx, _pid(ctx))
    return ctx.render(
        "record/document.jinja",
        record=rec,
        doc=doc,
        text=_document_text(doc),
        base="/my-record",
        title=str(doc.get("description") or "Document"),
        patient_view=True,
    )


# --- who has looked -------------------------------------------------------------------------------------------
def who_has_looked(ctx: Ctx) -> Response:
    pid = _pid(ctx)
    offset = ctx.query.get("offset", "0")
    offset = offset if offset.isdigit() else "0"
    bundle = ctx.gateway().get(f"Patient/{pid}/$access-log", [("_count", "50"), ("_offset", offset)])
    rows = [audit_row(e.get("resource") or {}) for e in bundle.get("entry") or []]
    mine = getattr(ctx.actor, "subject", "")
    others = [r for r in rows if r.username != mine and r.role != "patient"]
    names = organisation_names(ctx, {r.organisation for r in others})
    has_next = any(link.get("relation") == "next" for link in bundle.get("link") or [])
    return ctx.render(
        "patient/who_has_looked.jinja",
        rows=others,
        org_names=names,
        total=bundle.get("total", 0),
        offset=int(offset),
        has_next=has_next,
        own_hidden=len(rows) - len(others),
    )


# --- home blood pressure ----------------------------------------------------------------------------------------
def blood_pressure(ctx: Ctx) -> Response:
    pid = _pid(ctx)
    rec = load_record(ctx, pid)
    if ctx.request.method == "GET":
        now = datetime.now(UTC)
        form = {"day": str(now.day), "month": str(now.month), "year": str(now.year), "time": now.strftime("%H:%M")}
        return ctx.render("patient/blood_pressure.jinja", record=rec, form=form, errors={})
    form = {k: ctx.form.get(k, "").strip() for k in ("systolic", "diastolic", "pulse", "day", "month", "year", "time")}
    errors, when = _check_reading(form)
    if errors:
        return ctx.render("patient/blood_pressure.jinja", 400, record=rec, form=form, errors=errors)
    ctx.gateway().post(
        "Observation",
        _bp_observation(
            pid, int(form["systolic"]), int(form["diastolic"]), when, int(form["pulse"]) if form["pulse"] else None
        ),
    )
    ctx.flash("success", f"Your reading of {form['systolic']}/{form['diastolic']} mmHg has been added to your record")
    return ctx.redirect("/my-record/blood-pressure")


def _check_reading(form: dict[str, str]) -> tuple[dict[str, str], str]:
    errors: dict[str, str] = {}
    limits = {
        "systolic": (50, 300, "Systolic (top number)"),
        "diastolic": (30, 200, "Diastolic (bottom number)"),
        "pulse": (25, 250, "Pulse"),
    }
    for name, (low, high, label) in limits.items():
        value = form[name]
        if not value and name == "pulse":
            continue
        if not value:
            errors[name] = f"Enter the {label.split(' (')[0].lower()} number"
        elif not value.isdigit():
            errors[name] = f"{label} must be a whole number, like 120"
        elif not low <= int(value) <= high:
            errors[name] = f"{label} must be between {low} and {high}"
    if "systolic" not in errors and "diastolic" not in errors and int(form["systolic"]) <= int(form["diastolic"]):
        errors["diastolic"] = "Diastolic (bottom number) must be lower than systolic (top number)"
    when = _moment(form)
    if when is None:
        errors["when"] = "Enter the date and time of the reading, for example 15 3 2025 and 08:30"
    elif when > datetime.now(UTC):
        errors["when"] = "The date and time of the reading must be in the past"
    return errors, when.strftime("%Y-%m-%dT%H:%M:00Z") if when else ""


def _moment(form: dict[str, str]) -> datetime | None:
    try:
        hour, minute = (int(x) for x in (form["time"] or "").split(":"))
        day = date(int(form["year"]), int(form["month"]), int(form["day"]))
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
    except ValueError:
        return None


def _bp_observation(pid: str, systolic: int, diastolic: int, when: str, pulse: int | None) -> dict[str, Any]:
    patient = {"reference": f"Patient/{pid}"}
    components = [
        _component("8480-6", "Systolic blood pressure", systolic, "mm[Hg]", "mmHg"),
        _component("8462-4", "Diastolic blood pressure", diastolic, "mm[Hg]", "mmHg"),
    ]
    if pulse is not None:
        components.append(_component("8867-4", "Heart rate", pulse, "/min", "beats/minute"))
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {"system": SNOMED, "code": HOME_BP_CODE, "display": "Self measured blood pressure reading"},
                {"system": LOINC, "code": "85354-9", "display": "Blood pressure panel with all children optional"},
            ],
            "text": "Home blood pressure reading",
        },
        "subject": patient,
        "effectiveDateTime": when,
        "issued": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "performer": [patient],
        "method": {"text": "Home blood pressure monitor, entered by the patient"},
        "component": components,
    }


def _component(code: str, display: str, value: int, ucum: str, unit: str) -> dict[str, Any]:
    return {
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": ucum},
    }


# --- what matters to me -----------------------------------------------------------------------------------------
def what_matters(ctx: Ctx) -> Response:
    pid = _pid(ctx)
    rec = load_record(ctx, pid)
    current = rec.what_matters[0].title if rec.what_matters else ""
    if ctx.request.method == "GET":
        return ctx.render("patient/what_matters.jinja", record=rec, statement=current, errors={})
    statement = ctx.form.get("statement", "").strip()
    errors = {}
    if not statement:
        errors["statement"] = "Write what matters to you"
    elif len(statement) > MAX_STATEMENT:
        errors["statement"] = f"What matters to you must be {MAX_STATEMENT} characters or fewer"
    if errors:
        return ctx.render("patient/what_matters.jinja", 400, record=rec, statement=statement, errors=errors)
    try:
        ctx.gateway().post("QuestionnaireResponse", _statement(pid, statement))
    except ServiceError as err:
        if err.status >= 500 or err.refused:
            raise
        errors["statement"] = err.message
        return ctx.render("patient/what_matters.jinja", 400, record=rec, statement=statement, errors=errors)
    ctx.flash("success", "What matters to you has been saved. Everyone caring for you can now see it")
    return ctx.redirect("/my-record")


def _statement(pid: str, text: str) -> dict[str, Any]:
    patient = {"reference": f"Patient/{pid}"}
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": WHAT_MATTERS,
        "status": "completed",
        "subject": patient,
        "authored": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "author": patient,
        "source": patient,
        "item": [{"linkId": "what-matters", "text": "What matters to me", "answer": [{"valueString": text}]}],
    }


PAGES = [
    ("/my-record", my_record, PATIENT, ["GET"]),
    ("/my-record/who-has-looked", who_has_looked, PATIENT, ["GET"]),
    ("/my-record/blood-pressure", blood_pressure, PATIENT, ["GET", "POST"]),
    ("/my-record/what-matters-to-me", what_matters, PATIENT, ["GET", "POST"]),
    ("/my-record/documents/{doc}", my_document, PATIENT, ["GET"]),
    ("/my-record/{section}", my_record, PATIENT, ["GET"]),
]
