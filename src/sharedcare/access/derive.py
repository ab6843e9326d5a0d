"""Facts the access policy needs, derived from resources as they are written (pure functions, no I/O).

Legitimate relationships (domain-uk.md §6: "derive LR from feeds: encounter, referral, registration, caseload"):

| resource       | patient               | parties (an organisation or a person)            | live while           |
|----------------|-----------------------|--------------------------------------------------|----------------------|
| Patient        | itself                | generalPractitioner, managingOrganization        | always (registered)  |
| Encounter      | subject               | serviceProvider, participant.individual          | period.end (or open) |
| EpisodeOfCare  | patient               | managingOrganization, careManager                | period.end (or open) |
| CareTeam       | subject               | participant.member, managingOrganization         | period.end (or open) |
| ServiceRequest | subject               | performer, requester (a referral)                | open while active    |
| Appointment    | participant (Patient) | participant.actor                                | end (future counts)  |

A PractitionerRole, HealthcareService or Location party also relates its organisation (resolved when written).
The policy accepts a relationship whose end lies within `relationship_days` of now, or that has no end.

Consents (FHIR R4 Consent, active; https://hl7.org/fhir/R4/consent.html), on the provisions that deny:
- deny for secondary-use purposes (HRESCH, HOPERAT, ...) → `secondary-opt-out` (National Data Opt-out);
- deny naming organisations in provision.actor → `org-deny` for each organisation;
- any other deny → `objection` (the whole shared record).
A Consent, Flag or Observation coded SNOMED 827241000000103 ("dissent from secondary use of GP patient
identifiable data") → `type1-opt-out`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sharedcare.access.labels import SNOMED

TYPE1_CODE = "827241000000103"
SECONDARY_PURPOSES = frozenset({"HRESCH", "HOPERAT", "HMARKT", "HPAYMT", "PUBHLTH", "HSYSADMIN", "CLINTRCH"})
NDOO_CODES = frozenset({"NDOO", "national-data-opt-out", "ndoo"})
ENDED = {"finished", "cancelled", "completed", "revoked", "inactive", "fulfilled", "noshow", "entered-in-error"}
VOID = {"entered-in-error", "cancelled", "noshow"}
RESOLVABLE = ("PractitionerRole", "HealthcareService", "Location")
INSTANT = "%Y-%m-%dT%H:%M:%S.%fZ"

Resolver = Callable[[str], str | None]
"""`Type/id` of a PractitionerRole, HealthcareService or Location → `Organization/ods` it belongs to, or None."""


@dataclass(frozen=True, slots=True)
class Relationship:
    patient: str
    party: str  # Organization/X, Practitioner/Y or PractitionerRole/Z
    kind: str  # registration | encounter | episode | care-team | referral | appointment
    start: str | None
    end: str | None  # None: still open


@dataclass(frozen=True, slots=True)
class ConsentFact:
    patient: str
    kind: str  # objection | org-deny | secondary-opt-out | type1-opt-out
    party: str | None  # Organization/X for org-deny
    start: str | None
    end: str | None


# --- dates -----------------------------------------------------------------------------------------------


def instant(value: Any, *, high: bool = False) -> str | None:
    """A FHIR date/dateTime/instant as the store's fixed-width UTC text; `high` takes the end of a partial date."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    try:
        if len(value) == 4:
            dt = datetime(int(value), 12 if high else 1, 31 if high else 1, tzinfo=UTC)
        elif len(value) == 7:
            y, m = int(value[:4]), int(value[5:7])
            dt = datetime(y, m, 1, tzinfo=UTC)
            if high:
                dt = (dt.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        elif len(value) == 10:
            dt = datetime.fromisoformat(value).replace(tzinfo=UTC)
        else:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            return dt.astimezone(UTC).strftime(INSTANT)
    except ValueError:
        return None
    if high:
        dt = dt.replace(hour=23, minute=59, second=59, microsecond=999999)
    return dt.strftime(INSTANT)


# --- references -------------------------------------------------------------------------------------------


def ref(value: Any) -> str | None:
    """A local `Type/id` reference from a Reference element, ignoring absolute, contained and logical ones."""
    if not isinstance(value, dict):
        return None
    text = value.get("reference")
    if not isinstance(text, str) or text.startswith("#") or "://" in text:
        return None
    parts = text.split("/")
    return f"{parts[-2]}/{parts[-1]}" if len(parts) >= 2 and parts[-2][:1].isupper() else None


def refs(values: Any) -> list[str]:
    items = values if isinstance(values, list) else [values]
    return [r for r in (ref(v) for v in items) if r]


def patient_id(value: Any) -> str | None:
    r = ref(value)
    return r.split("/", 1)[1] if r and r.startswith("Patient/") else None


def parties(candidates: list[str], resolve: Resolver) -> list[str]:
    out: list[str] = []
    for r in candidates:
        kind = r.split("/", 1)[0]
        if kind in ("Organization", "Practitioner", "PractitionerRole"):
            out.append(r)
        if kind in RESOLVABLE:
            org = resolve(r)
            if org:
                out.append(org)
    return list(dict.fromkeys(out))


# --- relationships ------------------------------------------------------------------------------------------


def relationships(resource: dict[str, Any], updated: str, resolve: Resolver) -> list[Relationship]:
    """The legitimate relationships this resource version establishes (see the module table)."""
    deriver = RELATIONSHIP_DERIVERS.get(resource.get("resourceType", ""))
    return deriver(resource, updated, resolve) if deriver else []


def _patient_rel(res: dict[str, Any], updated: str, resolve: Resolver) -> list[Relationship]:
    if res.get("active") is False or not res.get("id"):
        return []
    found = parties(refs(res.get("generalPractitioner")) + refs(res.get("managingOrganization")), resolve)
    return [Relationship(res["id"], p, "registration", None, None) for p in found]


def _period_rel(kind: str, subject_field: str, party_fields: tuple[str, ...]) -> Callable[..., list[Relationship]]:
    def derive(res: dict[str, Any], updated: str, resolve: Resolver) -> list[Relationship]:
        status = res.get("status")
        pid = patient_id(res.get(subject_field))
        if not pid or status in VOID:
            return []
        period = res.get("period") or {}
        start, end = instant(period.get("start")), instant(period.get("end"), high=True)
        if status in ENDED and end is None:
            end = updated
        candidates: list[str] = []
        for path in party_fields:
            candidates += refs(_dig(res, path))
        return [Relationship(pid, p, kind, start, end) for p in parties(candidates, resolve)]

    return derive


def _referral_rel(res: dict[str, Any], updated: str, resolve: Resolver) -> list[Relationship]:
    pid = patient_id(res.get("subject"))
    status = res.get("status")
    if not pid or status in VOID:
        return []
    end = updated if status in ENDED else None
    found = parties(refs(res.get("performer")) + refs(res.get("requester")), resolve)
    return [Relationship(pid, p, "referral", instant(res.get("authoredOn")), end) for p in found]


def _appointment_rel(res: dict[str, Any], updated: str, resolve: Resolver) -> list[Relationship]:
    if res.get("status") in VOID:
        return []
    actors = [ref(p.get("actor")) for p in res.get("participant") or [] if isinstance(p, dict)]
    patients = [a.split("/", 1)[1] for a in actors if a and a.startswith("Patient/")]
    found = parties([a for a in actors if a and not a.startswith("Patient/")], resolve)
    start, end = instant(res.get("start")), instant(res.get("end"), high=True)
    return [Relationship(pid, p, "appointment", start, end) for pid in patients for p in found]


def _dig(res: dict[str, Any], path: str) -> list[Any]:
    """Values at a dotted path, flattening lists (`participant.member`)."""
    values: list[Any] = [res]
    for name in path.split("."):
        nxt: list[Any] = []
        for v in values:
            got = v.get(name) if isinstance(v, dict) else None
            if isinstance(got, list):
                nxt += got
            elif got is not None:
                nxt.append(got)
        values = nxt
    return values


RELATIONSHIP_DERIVERS: dict[str, Callable[[dict[str, Any], str, Resolver], list[Relationship]]] = {
    "Patient": _patient_rel,
    "Encounter": _period_rel("encounter", "subject", ("serviceProvider", "participant.individual")),
    "EpisodeOfCare": _period_rel("episode", "patient", ("managingOrganization", "careManager")),
    "CareTeam": _period_rel("care-team", "subject", ("participant.member", "managingOrganization")),
    "ServiceRequest": _referral_rel,
    "Appointment": _appointment_rel,
}
RELATIONSHIP_TYPES = frozenset(RELATIONSHIP_DERIVERS)
CONSENT_TYPES = frozenset({"Consent", "Flag", "Observation"})


# --- consents and opt-outs ------------------------------------------------------------------------------------


def consents(resource: dict[str, Any]) -> list[ConsentFact]:
    """The objections, organisation restrictions and opt-outs this resource version records."""
    rtype = resource.get("resourceType")
    if rtype == "Consent":
        return _consent_facts(resource)
    if rtype in ("Flag", "Observation") and _has_code(resource.get("code"), TYPE1_CODE):
        pid = patient_id(resource.get("subject"))
        if pid and resource.get("status") not in ("inactive", "entered-in-error", "cancelled"):
            return [ConsentFact(pid, "type1-opt-out", None, None, None)]
    return []


def _consent_facts(res: dict[str, Any]) -> list[ConsentFact]:
    pid = patient_id(res.get("patient"))
    if not pid or res.get("status") != "active":
        return []
    top = res.get("provision") if isinstance(res.get("provision"), dict) else {}
    start, end = _period(top.get("period"))
    concepts = [*(res.get("category") or []), *([res["policyRule"]] if res.get("policyRule") else [])]
    if any(_has_code(c, TYPE1_CODE) for c in concepts) or _provision_has_code(top, TYPE1_CODE):
        return [ConsentFact(pid, "type1-opt-out", None, start, end)]
    if any(_has_any_code(c, NDOO_CODES) for c in concepts):
        return [ConsentFact(pid, "secondary-opt-out", None, start, end)]
    if not top:
        return []
    facts: list[ConsentFact] = []
    for prov, inherited in _provisions(top, top.get("type", "deny")):
        if inherited != "deny":
            continue
        p_start, p_end = _period(prov.get("period"))
        s, e = p_start or start, p_end or end
        purposes = {c.get("code") for c in prov.get("purpose") or [] if isinstance(c, dict)}
        orgs = [r for r in (ref(a.get("reference")) for a in prov.get("actor") or [] if isinstance(a, dict)) if r]
        orgs = [r for r in orgs if r.startswith("Organization/")]
        if purposes and purposes <= SECONDARY_PURPOSES:
            facts.append(ConsentFact(pid, "secondary-opt-out", None, s, e))
        elif orgs:
            facts += [ConsentFact(pid, "org-deny", o, s, e) for o in orgs]
        else:
            facts.append(ConsentFact(pid, "objection", None, s, e))
    return facts


def _provisions(prov: dict[str, Any], type_: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Each provision with its effective type; nested provisions are exceptions to their parent."""
    own = prov.get("type", type_)
    yield prov, own
    for child in prov.get("provision") or []:
        if isinstance(child, dict):
            yield from _provisions(child, child.get("type", "deny" if own == "permit" else "permit"))


def _period(period: Any) -> tuple[str | None, str | None]:
    if not isinstance(period, dict):
        return None, None
    return instant(period.get("start")), instant(period.get("end"), high=True)


def _has_code(concept: Any, code: str) -> bool:
    return _has_any_code(concept, frozenset({code}))


def _has_any_code(concept: Any, codes: frozenset[str]) -> bool:
    if not isinstance(concept, dict):
        return False
    return any(isinstance(c, dict) and c.get("code") in codes for c in concept.get("coding") or [])


def _provision_has_code(prov: dict[str, Any], code: str) -> bool:
    return any(_has_code(c, code) for c in prov.get("code") or []) or any(
        _provision_has_code(p, code) for p in prov.get("provision") or [] if isinstance(p, dict)
    )


def snomed(code: str) -> dict[str, str]:
    return {"system": SNOMED, "code": code}
