"""Demo sign-ins for `sharedcare demo`: one local account per role, around a patient with a rich shared record.

The demo patient is chosen from the loaded region: a person whose records come from several organisations and
include blood pressure readings. Staff accounts work at that person's GP practice (so they have a legitimate
relationship with them and not with most others, which is what break glass is for); the patient account is the
person's own. All data is synthetic; the password is the same for every demo account and printed at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from sharedcare.types import FhirRequest
from sharedcare.web import display as d

DEMO_PASSWORD = "sharedcare-demo"
BASE = "http://localhost/fhir"


@dataclass(frozen=True)
class DemoAccounts:
    password: str
    accounts: tuple[tuple[str, str, str], ...]  # (username, role label, organisation)
    patient_id: str
    patient_name: str
    patient_nhs: str
    other_nhs: str  # someone the demo staff have no relationship with: try break glass
    other_name: str


def create_demo_accounts(server: Any, password: str = DEMO_PASSWORD) -> DemoAccounts:
    """Add the demo accounts to the server's registry (idempotent: same names, same result)."""
    from sharedcare.auth.registry import User

    person, gp_patient = _demo_person(server)
    ods = _ods(gp_patient.get("managingOrganization") or {})
    council = _first_org(server, "govt") or ods
    people = [
        User("clinician", "clinician", ods, "Dr Asha Patel"),
        User("nurse", "nurse", ods, "Sam Okafor"),
        User("social.worker", "social-care", council, "Jo Whitfield"),
        User("admin", "administrator", ods, "Priya Shah"),
        User("privacy.officer", "privacy-officer", ods, "Morgan Reid"),
        User("analyst", "analyst", None, "Alex Chen"),
        User("patient", "patient", None, d.human_name(gp_patient), patient=str(gp_patient["id"])),
    ]
    for user in people:
        server.security.registry.add_user(user, password)
    other = _unrelated_patient(server, ods, d.nhs_number_of(gp_patient))
    return DemoAccounts(
        password,
        tuple((u.username, u.role, u.organisation or "") for u in people),
        str(gp_patient["id"]),
        d.human_name(gp_patient),
        d.nhs_number(d.nhs_number_of(gp_patient)),
        d.nhs_number(d.nhs_number_of(other) if other else ""),
        d.human_name(other) if other else "",
    )


def accounts_banner(demo: DemoAccounts, host: str, port: int) -> str:
    lines = [
        "",
        f"  Web application: http://{host}:{port}/   (sign in with any account below; password: {demo.password})",
    ]
    lines += [f"    {name:<16} {role:<16} {org}" for name, role, org in demo.accounts]
    lines += [
        f"  Demo patient:    {demo.patient_name}, NHS number {demo.patient_nhs} (records from several organisations)",
    ]
    if demo.other_nhs:
        lines.append(f"  Break glass:     search NHS number {demo.other_nhs} ({demo.other_name}) as the clinician")
    return "\n".join(lines)


# --- choosing the people -------------------------------------------------------------------------------------------
def _get(server: Any, path: str, query: list[tuple[str, str]]) -> dict[str, Any]:
    resp = server.handle(FhirRequest("GET", path.split("/"), query, base_url=BASE))
    return orjson.loads(resp.body) if resp.body else {}


def _demo_person(server: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Person linking 3+ source records, one of them a GP registration, with blood pressure readings."""
    persons = [e["resource"] for e in _get(server, "Person", [("_count", "1000")]).get("entry") or []]
    persons.sort(key=lambda p: (-len(p.get("link") or []), p.get("id", "")))
    fallback: tuple[dict[str, Any], dict[str, Any]] | None = None
    for person in persons[:200]:
        refs = [str((lk.get("target") or {}).get("reference", "")) for lk in person.get("link") or []]
        ids = [r.split("/", 1)[1] for r in refs if r.startswith("Patient/")]
        patients = [_get(server, f"Patient/{i}", []) for i in ids]
        gp = next((p for p in patients if _is_registration(p)), None)
        if gp is None or len(ids) < 2:
            continue
        fallback = fallback or (person, gp)
        bundle = _get(server, f"Patient/{gp['id']}/$everything", [("_type", "Observation"), ("_count", "500")])
        bp = [e for e in bundle.get("entry") or [] if "85354-9" in str(e["resource"].get("code"))]
        if len(ids) >= 3 and len(bp) >= 3:
            return person, gp
    if fallback is not None:
        return fallback
    patients = [e["resource"] for e in _get(server, "Patient", [("_count", "50")]).get("entry") or []]
    gp = next((p for p in patients if _is_registration(p)), patients[0])
    return {}, gp


def _is_registration(patient: dict[str, Any]) -> bool:
    managing = _ods(patient.get("managingOrganization") or {})
    return bool(managing) and any(_ods(g) == managing for g in patient.get("generalPractitioner") or [])


def _unrelated_patient(server: Any, ods: str, own_nhs: str | None) -> dict[str, Any] | None:
    """A patient registered at another practice, with no record at the demo practice."""
    bundle = _get(server, "Patient", [("_count", "200")])
    by_nhs: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle.get("entry") or []:
        p = entry["resource"]
        by_nhs.setdefault(d.nhs_number_of(p) or p["id"], []).append(p)
    for nhs, records in sorted(by_nhs.items()):
        if nhs == own_nhs or any(_ods(p.get("managingOrganization") or {}) == ods for p in records):
            continue
        if any(_is_registration(p) for p in records) and len(records) >= 2:
            return next(p for p in records if _is_registration(p))
    return None


def _first_org(server: Any, type_code: str) -> str | None:
    for entry in _get(server, "Organization", [("_count", "200")]).get("entry") or []:
        org = entry["resource"]
        codes = {c.get("code") for t in org.get("type") or [] for c in t.get("coding") or []}
        if type_code in codes:
            return next((str(i["value"]) for i in org.get("identifier") or [] if i.get("value")), org.get("id"))
    return None


def _ods(ref: dict[str, Any]) -> str:
    value = (ref.get("identifier") or {}).get("value")
    if value:
        return str(value)
    text = str(ref.get("reference") or "")
    return text.split("/", 1)[1] if text.startswith("Organization/") else ""
