"""AuditEvents as rows a person can read: who, in what role and organisation, did what, to whose record, when.

Used by the patient's "who has looked at my record" and the privacy officer's alerts and audit search. The events
are the BALP-shaped AuditEvents the audit package writes (sharedcare.audit.events); this only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sharedcare.web import display as d

ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
ROLES = {
    "clinician": "Clinician",
    "nurse": "Nurse",
    "social-care": "Social care practitioner",
    "administrator": "Administrator",
    "analyst": "Analyst",
    "privacy-officer": "Privacy officer",
    "patient": "Patient",
    "system": "Organisation's system",
}
ALERTS = {"break-glass": "Emergency access (break glass)", "self-claim": "Self-claimed relationship"}
ACTIONS = {
    "read": "Viewed",
    "vread": "Viewed a version of",
    "search-type": "Searched",
    "search-system": "Searched",
    "search-compartment": "Searched",
    "history-instance": "Viewed the history of",
    "create": "Added to",
    "update": "Changed",
    "patch": "Changed",
    "delete": "Deleted from",
}
OUTCOMES = {"0": "Success", "4": "Refused", "8": "Failed", "12": "Failed"}


@dataclass
class AuditRow:
    id: str
    when: str
    who: str  # a person's name when known, else the user name
    username: str
    role: str
    organisation: str  # ODS code
    action: str
    patients: list[str] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    outcome: str = ""
    refused: bool = False
    alert: str = ""  # break-glass | self-claim | ""
    reason: str = ""
    request_id: str = ""

    @property
    def alert_label(self) -> str:
        return ALERTS.get(self.alert, "")

    @property
    def role_label(self) -> str:
        return ROLES.get(self.role, self.role.replace("-", " ").capitalize())

    @property
    def when_text(self) -> str:
        return d.date_time(self.when)


def audit_row(event: dict[str, Any]) -> AuditRow:
    person = _requestor(event)
    who = person.get("who") or {}
    ident = who.get("identifier") or {}
    role = next((d.concept(r) for r in person.get("role") or [] if d.concept(r)), "")
    subtypes = [str(s.get("code", "")) for s in event.get("subtype") or []]
    alert = next((s for s in subtypes if s in ALERTS), "")
    entities = [str((e.get("what") or {}).get("reference", "")) for e in event.get("entity") or []]
    patients = sorted({e.split("/", 1)[1] for e in _patient_entities(event)})
    return AuditRow(
        id=str(event.get("id", "")),
        when=str(event.get("recorded", "")),
        who=str(who.get("display") or ident.get("value") or "Unknown"),
        username=str(ident.get("value") or ""),
        role=role,
        organisation=_organisation(event),
        action=_action(event, subtypes, alert),
        patients=patients,
        entities=[e for e in entities if e and not e.startswith("Patient/")],
        outcome=OUTCOMES.get(str(event.get("outcome", "")), str(event.get("outcome", ""))),
        refused=str(event.get("outcome", "0")) != "0",
        alert=alert,
        reason=_reason(event),
        request_id=next(
            (
                str((e.get("what") or {}).get("identifier", {}).get("value", ""))
                for e in event.get("entity") or []
                if (e.get("type") or {}).get("code") == "XrequestId"
            ),
            "",
        ),
    )


def _requestor(event: dict[str, Any]) -> dict[str, Any]:
    agents = event.get("agent") or []
    return next((a for a in agents if a.get("requestor")), agents[0] if agents else {})


def _organisation(event: dict[str, Any]) -> str:
    for agent in event.get("agent") or []:
        ident = (agent.get("who") or {}).get("identifier") or {}
        if ident.get("system") == ODS_SYSTEM:
            return str(ident.get("value", ""))
    return ""


def _patient_entities(event: dict[str, Any]) -> list[str]:
    return [
        str((e.get("what") or {}).get("reference", ""))
        for e in event.get("entity") or []
        if (e.get("role") or {}).get("code") == "1"
        and str((e.get("what") or {}).get("reference", "")).startswith("Patient/")
    ]


def _reason(event: dict[str, Any]) -> str:
    for entity in event.get("entity") or []:
        for detail in entity.get("detail") or []:
            if detail.get("type") in ("break-glass-reason", "reason"):
                return str(detail.get("valueString", ""))
    purpose = event.get("purposeOfEvent") or []
    return next((str(p.get("text")) for p in purpose if p.get("text")), "")


def _action(event: dict[str, Any], subtypes: list[str], alert: str) -> str:
    if alert:
        return ALERTS[alert]
    code = str((event.get("type") or {}).get("code", ""))
    if code == "110114":
        return str(event.get("outcomeDesc") or "Signed in")
    operation = next((s for s in subtypes if s.startswith("$")), "")
    if operation == "$everything":
        return "Viewed the whole record"
    if operation == "$access-log":
        return "Looked at who has viewed the record"
    if operation:
        return f"Ran {operation}"
    interaction = next((s for s in subtypes if s in ACTIONS), "")
    what = sorted(
        {
            e.split("/")[0]
            for e in (str((x.get("what") or {}).get("reference", "")) for x in event.get("entity") or [])
            if e and "/" in e
        }
        - {"Patient"}
    )
    verb = ACTIONS.get(interaction, "Accessed")
    return f"{verb} {', '.join(what) if what else 'the record'}".strip()
