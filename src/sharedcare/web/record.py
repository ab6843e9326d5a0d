"""The longitudinal record as a page shows it, built from one `$everything` Bundle (pure, no I/O).

Every item keeps the organisation it came from (the `source-organization` extension `$everything` puts on each
entry) and its date; a fact that several organisations sent (`possible-duplicate`) is shown once, naming every
source. Sections follow GP Connect's Access Record and the PRSB core information standard: summary, problems,
medications, allergies, encounters, results, documents, care plans and "what matters to me" (domain-uk.md §5, §11).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sharedcare.web import display as d

SOURCE_ORG_URL = "https://sharedcare.example/fhir/StructureDefinition/source-organization"
SOURCE_PATIENT_URL = "https://sharedcare.example/fhir/StructureDefinition/source-patient"
DUPLICATE_URL = "https://sharedcare.example/fhir/StructureDefinition/possible-duplicate"
WHAT_MATTERS = "https://sharedcare.example/Questionnaire/what-matters-to-me"
WEB_SOURCE_PREFIX = "urn:sharedcare:source:-/"  # meta.source of a write by someone with no organisation
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
PATIENT_ENTERED = "Added by the patient"


@dataclass(frozen=True)
class SeriesDef:
    key: str
    title: str
    codes: frozenset[str]
    unit: str
    lines: tuple[tuple[str, frozenset[str]], ...] = ()  # (label, component codes) for multi-line series
    reference: tuple[tuple[float, str], ...] = ()  # (value, label): threshold lines drawn on the chart


BP_SYSTOLIC = frozenset({"8480-6", "72313002", "413606001"})
BP_DIASTOLIC = frozenset({"8462-4", "1091811000000102", "413605002"})
HOME_BP_CODE = "335661000000109"
AVERAGE_BP_CODE = "723232008"
SERIES = (
    SeriesDef(
        "blood-pressure",
        "Blood pressure",
        frozenset({"85354-9", "75367002", HOME_BP_CODE, AVERAGE_BP_CODE}),
        "mmHg",
        (("Systolic", BP_SYSTOLIC), ("Diastolic", BP_DIASTOLIC)),
        ((140, "140 systolic: clinic stage 1 (NICE NG136)"), (90, "90 diastolic: clinic stage 1")),
    ),
    SeriesDef(
        "hba1c",
        "HbA1c",
        frozenset({"59261-8", "999791000000106", "4548-4", "1049301000000100"}),
        "mmol/mol",
        reference=((48, "48: diabetes diagnostic threshold"),),
    ),
    SeriesDef("egfr", "eGFR", frozenset({"62238-1", "1011481000000105", "33914-3"}), "mL/min/1.73m²"),
    SeriesDef("cholesterol", "Total cholesterol", frozenset({"2093-3", "1005671000000105"}), "mmol/L"),
    SeriesDef("weight", "Weight", frozenset({"29463-7", "27113001"}), "kg"),
    SeriesDef("bmi", "Body mass index", frozenset({"39156-5", "60621009"}), "kg/m²"),
)


@dataclass
class Source:
    ods: str
    name: str
    last_sent: str = ""  # the latest meta.lastUpdated of anything it sent for this person
    items: int = 0


@dataclass
class Item:
    type: str
    id: str
    title: str
    date: str | None
    source: str  # ODS code, or "" for something the patient added
    detail: str = ""
    status: str = ""
    also_from: list[str] = field(default_factory=list)
    patient_entered: bool = False
    restricted: bool = False
    category: str = ""
    lines: list[str] = field(default_factory=list)  # further lines, e.g. a care plan's activities
    resource: dict[str, Any] = field(default_factory=dict)

    @property
    def sort(self) -> str:
        return d.sort_key(self.date)


@dataclass
class Point:
    date: str
    values: tuple[float | None, ...]
    source: str
    label: str = ""  # e.g. "Home reading"


@dataclass
class Series:
    definition: SeriesDef
    points: list[Point]

    @property
    def key(self) -> str:
        return self.definition.key

    @property
    def latest(self) -> Point | None:
        return self.points[-1] if self.points else None


@dataclass
class Banner:
    name: str
    nhs_number: str
    birth_date: str
    age: str
    gender: str
    address: str
    gp: str
    deceased: str = ""
    restricted: bool = False
    patient_id: str = ""


@dataclass
class Record:
    banner: Banner
    sources: dict[str, Source]
    problems: list[Item]
    past_problems: list[Item]
    medications: list[Item]
    past_medications: list[Item]
    allergies: list[Item]
    encounters: list[Item]
    appointments: list[Item]
    referrals: list[Item]
    procedures: list[Item]
    immunisations: list[Item]
    results: list[Series]
    other_results: list[Item]
    documents: list[Item]
    care_plans: list[Item]
    assessments: list[Item]
    what_matters: list[Item]
    alerts: list[Item]
    withheld: list[str]
    patient_ids: list[str]

    def source_name(self, ods: str) -> str:
        if not ods:
            return PATIENT_ENTERED
        src = self.sources.get(ods)
        return src.name if src else ods

    @property
    def source_names(self) -> dict[str, str]:
        return {ods: src.name for ods, src in self.sources.items()}

    def series(self, key: str) -> Series | None:
        return next((s for s in self.results if s.key == key), None)

    @property
    def timeline(self) -> list[tuple[str, list[Item]]]:
        """Encounters, referrals and procedures by year, newest first."""
        by_year: dict[str, list[Item]] = defaultdict(list)
        for item in sorted(self.encounters + self.referrals + self.procedures, key=lambda i: i.sort, reverse=True):
            by_year[(item.date or "")[:4] or "Date not known"].append(item)
        return list(by_year.items())


def build_record(entries: list[dict[str, Any]], requested: str, withheld: list[str] | None = None) -> Record:
    """The record of the person `requested` (a source Patient id) from `$everything` entries."""
    patients = [e["resource"] for e in entries if e.get("resource", {}).get("resourceType") == "Patient"]
    sources = _sources(entries, patients)
    items: dict[str, list[Item]] = defaultdict(list)
    observations: list[tuple[dict[str, Any], str]] = []
    for entry in entries:
        resource = entry.get("resource") or {}
        rtype = resource.get("resourceType", "")
        if rtype in ("Patient", "Person"):
            continue
        source = _source_of(entry, resource)
        if rtype == "Observation":
            observations.append((resource, source))
            continue
        item = _item(rtype, resource, source, entry)
        if item is not None:
            items[item.category or rtype].append(item)
    _dedupe_all(items)
    results, other = _results(observations, items)
    return Record(
        banner=_banner(patients, requested),
        sources=sources,
        problems=_newest(items["problem-active"]),
        past_problems=_newest(items["problem-past"]),
        medications=_newest(items["medication-current"]),
        past_medications=_newest(items["medication-past"]),
        allergies=_newest(items["AllergyIntolerance"]),
        encounters=_newest(items["Encounter"]),
        appointments=sorted(items["Appointment"], key=lambda i: i.sort, reverse=True),
        referrals=_newest(items["ServiceRequest"]),
        procedures=_newest(items["Procedure"]),
        immunisations=_newest(items["Immunization"]),
        results=results,
        other_results=other,
        documents=_newest(items["DocumentReference"]),
        care_plans=_newest(items["CarePlan"]),
        assessments=_newest(items["assessment"]),
        what_matters=_newest(items["what-matters"]),
        alerts=_newest(items["Flag"]),
        withheld=list(withheld or []),
        patient_ids=[p.get("id", "") for p in patients],
    )


# --- sources ------------------------------------------------------------------------------------------------
def _ext_value(holder: dict[str, Any], url: str) -> Any:
    for ext in holder.get("extension") or []:
        if ext.get("url") == url:
            return ext.get("valueReference")
    return None


def _source_of(entry: dict[str, Any], resource: dict[str, Any]) -> str:
    """The ODS code of the organisation an entry came from; "" when the patient added it through sharedcare."""
    if str((resource.get("meta") or {}).get("source", "")).startswith(WEB_SOURCE_PREFIX):
        return ""
    ref = _ext_value(entry, SOURCE_ORG_URL)
    if isinstance(ref, dict):
        return str((ref.get("identifier") or {}).get("value") or "")
    return ""


def _sources(entries: list[dict[str, Any]], patients: list[dict[str, Any]]) -> dict[str, Source]:
    names: dict[str, str] = {}
    for patient in patients:
        for ref in [patient.get("managingOrganization") or {}, *(patient.get("generalPractitioner") or [])]:
            ods = _ods(ref)
            if ods and ref.get("display"):
                names.setdefault(ods, str(ref["display"]))
    out: dict[str, Source] = {}
    for entry in entries:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == "Person":
            continue
        ods = _source_of(entry, resource)
        if not ods:
            continue
        src = out.setdefault(ods, Source(ods, names.get(ods, ods)))
        src.items += 1
        updated = str((resource.get("meta") or {}).get("lastUpdated", ""))
        if updated > src.last_sent:
            src.last_sent = updated
    return dict(sorted(out.items(), key=lambda kv: kv[1].name))


def _ods(ref: dict[str, Any]) -> str:
    ident = ref.get("identifier") or {}
    if ident.get("value"):
        return str(ident["value"])
    text = str(ref.get("reference") or "")
    return text.split("/", 1)[1] if text.startswith("Organization/") else ""


# --- banner -------------------------------------------------------------------------------------------------
def _banner(patients: list[dict[str, Any]], requested: str) -> Banner:
    chosen = _registration_record(patients, requested)
    if chosen is None:
        return Banner("Name not known", "", "", "", "Not known", "", "", patient_id=requested)
    restricted = any(_restricted(p) for p in patients)
    gp = next((g for g in chosen.get("generalPractitioner") or []), None) or next(
        (g for p in patients for g in p.get("generalPractitioner") or []), None
    )
    deceased = chosen.get("deceasedDateTime") or ("Yes" if chosen.get("deceasedBoolean") else "")
    return Banner(
        name=d.banner_name(chosen),
        nhs_number=d.nhs_number(d.nhs_number_of(chosen) or next(filter(None, map(d.nhs_number_of, patients)), "")),
        birth_date=d.long_date(chosen.get("birthDate")),
        age="" if deceased else d.age(chosen.get("birthDate")),
        gender=d.gender(chosen.get("gender")),
        address="" if restricted else d.address(chosen),
        gp="" if restricted else d.reference_display(gp),
        deceased=d.long_date(deceased) if deceased and deceased != "Yes" else deceased,
        restricted=restricted,
        patient_id=requested,
    )


def _registration_record(patients: list[dict[str, Any]], requested: str) -> dict[str, Any] | None:
    """The GP practice's own record when there is one (the registration), else the one asked for."""
    for patient in patients:
        managing = _ods(patient.get("managingOrganization") or {})
        if managing and any(_ods(g) == managing for g in patient.get("generalPractitioner") or []):
            return patient
    return next((p for p in patients if p.get("id") == requested), patients[0] if patients else None)


def _restricted(resource: dict[str, Any]) -> bool:
    """PDS S-flag or a source's 'restricted' confidentiality label (v3 Confidentiality R)."""
    return any(
        s.get("code") == "R" and s.get("system") in (CONFIDENTIALITY, None)
        for s in (resource.get("meta") or {}).get("security") or []
    )


# --- items --------------------------------------------------------------------------------------------------
def _item(rtype: str, r: dict[str, Any], source: str, entry: dict[str, Any]) -> Item | None:
    builder = BUILDERS.get(rtype)
    if builder is None:
        return None
    item = builder(r, source)
    item.resource = r
    item.restricted = _restricted(r)
    item.patient_entered = item.patient_entered or not source
    item.also_from = [
        str(ref.get("reference", ""))
        for ext in entry.get("extension") or []
        if ext.get("url") == DUPLICATE_URL and isinstance(ref := ext.get("valueReference"), dict)
    ]
    return item


def _status(value: dict[str, Any] | None) -> str:
    codes = sorted(d.codes(value))
    return codes[0] if codes else ""


def _condition(r: dict[str, Any], source: str) -> Item:
    status = _status(r.get("clinicalStatus"))
    active = status in ("active", "recurrence", "relapse", "")
    detail = f"Resolved {d.long_date(r.get('abatementDateTime'))}" if r.get("abatementDateTime") else ""
    return Item(
        "Condition",
        r.get("id", ""),
        d.concept(r.get("code")),
        r.get("onsetDateTime") or r.get("recordedDate"),
        source,
        detail,
        status or "active",
        category="problem-active" if active else "problem-past",
    )


def _medication(r: dict[str, Any], source: str) -> Item:
    course = _status(r.get("courseOfTherapyType"))
    dosage = "; ".join(str(x.get("text")) for x in r.get("dosageInstruction") or [] if x.get("text"))
    current = r.get("status") in ("active", "on-hold", None)
    kind = {"continuous": "Repeat", "acute": "Acute", "seasonal": "Seasonal"}.get(course, "")
    title = d.concept(r.get("medicationCodeableConcept")) or d.reference_display(r.get("medicationReference"))
    when = r.get("authoredOn") or r.get("effectiveDateTime") or (r.get("effectivePeriod") or {}).get("start")
    return Item(
        r.get("resourceType", "MedicationRequest"),
        r.get("id", ""),
        title,
        when,
        source,
        dosage,
        kind or str(r.get("status", "")),
        category="medication-current" if current else "medication-past",
    )


def _allergy(r: dict[str, Any], source: str) -> Item:
    reactions = [d.concept(m) for x in r.get("reaction") or [] for m in x.get("manifestation") or []]
    detail = ("Reaction: " + ", ".join(reactions)) if reactions else ""
    return Item(
        "AllergyIntolerance",
        r.get("id", ""),
        d.concept(r.get("code")),
        r.get("recordedDate") or r.get("onsetDateTime"),
        source,
        detail,
        _status(r.get("clinicalStatus")),
        category="" if _status(r.get("clinicalStatus")) in ("active", "") else "allergy-past",
    )


def _encounter(r: dict[str, Any], source: str) -> Item:
    period = r.get("period") or {}
    kind = d.concept(r.get("type")) or str((r.get("class") or {}).get("display", "Encounter"))
    parts = [d.concept(r.get("serviceType")), d.concept(r.get("reasonCode"))]
    people = [d.reference_display(p.get("individual")) for p in r.get("participant") or []]
    if any(people):
        parts.append("With " + ", ".join(p for p in people if p))
    status = str(r.get("status", ""))
    if period.get("end") and period.get("end", "")[:10] != (period.get("start") or "")[:10]:
        parts.append(f"Until {d.long_date(period['end'][:10])}")
    return Item(
        "Encounter",
        r.get("id", ""),
        kind.capitalize(),
        period.get("start"),
        source,
        " · ".join(p for p in parts if p),
        status,
    )


def _appointment(r: dict[str, Any], source: str) -> Item:
    who = [
        d.reference_display(p.get("actor"))
        for p in r.get("participant") or []
        if not str((p.get("actor") or {}).get("reference", "")).startswith("Patient/")
    ]
    return Item(
        "Appointment",
        r.get("id", ""),
        str(r.get("description") or d.concept(r.get("serviceType")) or "Appointment"),
        r.get("start"),
        source,
        ", ".join(w for w in who if w),
        str(r.get("status", "")),
    )


def _referral(r: dict[str, Any], source: str) -> Item:
    to = ", ".join(d.reference_display(p) for p in r.get("performer") or [])
    detail = " · ".join(
        x for x in (d.concept(r.get("category")), f"To {to}" if to else "", d.concept(r.get("reasonCode"))) if x
    )
    return Item(
        "ServiceRequest",
        r.get("id", ""),
        "Referral: " + (d.concept(r.get("code")) or "service"),
        r.get("authoredOn"),
        source,
        detail,
        str(r.get("status", "")),
    )


def _procedure(r: dict[str, Any], source: str) -> Item:
    when = r.get("performedDateTime") or (r.get("performedPeriod") or {}).get("start")
    return Item("Procedure", r.get("id", ""), d.concept(r.get("code")), when, source, "", str(r.get("status", "")))


def _immunisation(r: dict[str, Any], source: str) -> Item:
    return Item(
        "Immunization",
        r.get("id", ""),
        d.concept(r.get("vaccineCode")),
        r.get("occurrenceDateTime"),
        source,
        "",
        str(r.get("status", "")),
    )


def _document(r: dict[str, Any], source: str) -> Item:
    authors = ", ".join(
        d.reference_display(a)
        for a in r.get("author") or []
        if str(a.get("reference", "")).startswith(("Practitioner", "PractitionerRole"))
    )
    title = d.concept(r.get("type")) or str(r.get("description") or "Document")
    return Item(
        "DocumentReference",
        r.get("id", ""),
        title,
        r.get("date"),
        source,
        f"By {authors}" if authors else "",
        str(r.get("docStatus") or r.get("status", "")),
    )


def _care_plan(r: dict[str, Any], source: str) -> Item:
    activities = [str((a.get("detail") or {}).get("description", "")) for a in r.get("activity") or []]
    item = Item(
        "CarePlan",
        r.get("id", ""),
        str(r.get("title") or d.concept(r.get("category")) or "Care plan"),
        (r.get("period") or {}).get("start") or r.get("created"),
        source,
        str(r.get("description", "")),
        str(r.get("status", "")),
    )
    item.lines = [a for a in activities if a]
    return item


def _questionnaire(r: dict[str, Any], source: str) -> Item:
    answers = [(str(i.get("text") or i.get("linkId")), _answer(i)) for i in r.get("item") or []]
    if r.get("questionnaire") == WHAT_MATTERS:
        text = next((a for _, a in answers if a), "")
        author = str((r.get("author") or {}).get("reference", ""))
        return Item(
            "QuestionnaireResponse",
            r.get("id", ""),
            text,
            r.get("authored"),
            source,
            status=str(r.get("status", "")),
            category="what-matters",
            patient_entered=author.startswith(("Patient/", "RelatedPerson/")),
        )
    title = str(r.get("questionnaire", "")).rsplit("/", 1)[-1].replace("-", " ").capitalize() or "Assessment"
    detail = " · ".join(f"{q}: {a}" for q, a in answers if a)
    return Item(
        "QuestionnaireResponse",
        r.get("id", ""),
        title,
        r.get("authored"),
        source,
        detail,
        str(r.get("status", "")),
        category="assessment",
    )


def _answer(item: dict[str, Any]) -> str:
    for answer in item.get("answer") or []:
        for key, value in answer.items():
            if key.startswith("value"):
                return d.concept(value) if isinstance(value, dict) else str(value)
    return ""


def _flag(r: dict[str, Any], source: str) -> Item:
    return Item(
        "Flag",
        r.get("id", ""),
        d.concept(r.get("code")),
        (r.get("period") or {}).get("start"),
        source,
        d.concept(r.get("category")),
        str(r.get("status", "")),
        category="Flag" if r.get("status") == "active" else "flag-past",
    )


BUILDERS = {
    "Condition": _condition,
    "MedicationRequest": _medication,
    "MedicationStatement": _medication,
    "AllergyIntolerance": _allergy,
    "Encounter": _encounter,
    "Appointment": _appointment,
    "ServiceRequest": _referral,
    "Procedure": _procedure,
    "Immunization": _immunisation,
    "DocumentReference": _document,
    "CarePlan": _care_plan,
    "QuestionnaireResponse": _questionnaire,
    "Flag": _flag,
}


def _newest(items: list[Item]) -> list[Item]:
    return sorted(items, key=lambda i: i.sort, reverse=True)


def _dedupe_all(groups: dict[str, list[Item]]) -> None:
    """Show a fact once: a later item naming an earlier one as a possible duplicate folds into it."""
    for key, items in groups.items():
        shown: dict[str, Item] = {}
        kept: list[Item] = []
        for item in items:
            twin = next((shown[ref] for ref in item.also_from if ref in shown), None)
            if twin is not None and twin.source != item.source:
                if item.source and item.source not in twin.also_from:
                    twin.also_from.append(item.source)
                continue
            item.also_from = []
            shown[f"{item.type}/{item.id}"] = item
            kept.append(item)
        groups[key] = kept


# --- results ------------------------------------------------------------------------------------------------
def _results(
    observations: list[tuple[dict[str, Any], str]], items: dict[str, list[Item]]
) -> tuple[list[Series], list[Item]]:
    points: dict[str, list[Point]] = defaultdict(list)
    other: list[Item] = []
    for obs, source in observations:
        if obs.get("status") in ("entered-in-error", "cancelled"):
            continue
        codes = d.codes(obs.get("code"))
        when = obs.get("effectiveDateTime") or (obs.get("effectivePeriod") or {}).get("start") or obs.get("issued")
        series = next((s for s in SERIES if codes & s.codes), None)
        if series is not None and when:
            point = _point(series, obs, when, source, codes)
            if point is not None:
                points[series.key].append(point)
                continue
        other.append(
            Item(
                "Observation",
                obs.get("id", ""),
                d.concept(obs.get("code")),
                when,
                source,
                _observation_value(obs),
                str(obs.get("status", "")),
                restricted=_restricted(obs),
            )
        )
    results = [Series(s, sorted(points[s.key], key=lambda p: d.sort_key(p.date))) for s in SERIES if points[s.key]]
    return results, _newest(other)


def _point(series: SeriesDef, obs: dict[str, Any], when: str, source: str, codes: set[str]) -> Point | None:
    label = "Home average" if AVERAGE_BP_CODE in codes else ("Home reading" if HOME_BP_CODE in codes else "")
    if series.lines:
        values: list[float | None] = []
        for _, line_codes in series.lines:
            comp = next((c for c in obs.get("component") or [] if d.codes(c.get("code")) & line_codes), None)
            values.append(_number(comp.get("valueQuantity")) if comp else None)
        if all(v is None for v in values):
            return None
        return Point(when, tuple(values), source, label)
    value = _number(obs.get("valueQuantity"))
    return Point(when, (value,), source, label) if value is not None else None


def _number(q: Any) -> float | None:
    value = q.get("value") if isinstance(q, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _observation_value(obs: dict[str, Any]) -> str:
    if obs.get("valueQuantity"):
        return d.quantity(obs["valueQuantity"])
    if obs.get("valueCodeableConcept"):
        return d.concept(obs["valueCodeableConcept"])
    if obs.get("valueString"):
        return str(obs["valueString"])
    parts = [
        f"{d.concept(c.get('code'))} {d.quantity(c.get('valueQuantity'))}".strip() for c in obs.get("component") or []
    ]
    return ", ".join(p for p in parts if p)
