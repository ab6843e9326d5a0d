"""AuditEvent resources in the IHE Basic Audit Log Patterns shape (https://profiles.ihe.net/ITI/BALP/).

One event per request (or per saved version of a write): the requesting agent (person or system, with role,
organisation, client, network address and token id), the server as source, the patients and resources involved,
the query, the request id, the purpose of use (ETREAT with the reason for break glass) and the outcome.
Required content follows the GP Connect cross-organisation audit guidance cited in domain-uk.md §6.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from sharedcare.ids import unique_id

AUDIT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
BALP_ENTITY = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
USER_SYSTEM = "https://sharedcare.nhs.example/Id/user"
CLIENT_SYSTEM = "https://sharedcare.nhs.example/Id/client"
ROLE_SYSTEM = "https://sharedcare.nhs.example/CodeSystem/role"
ALERT_SYSTEM = "https://sharedcare.nhs.example/CodeSystem/access-alert"
PURPOSE_CODES = {"direct-care": "TREAT", "secondary-use": "HOPERAT"}

OUTCOME_SUCCESS, OUTCOME_MINOR, OUTCOME_SERIOUS = "0", "4", "8"
RESTFUL_CODES = {
    "read": "read",
    "vread": "vread",
    "update": "update",
    "conditional-update": "update",
    "patch": "patch",
    "conditional-patch": "patch",
    "delete": "delete",
    "conditional-delete": "delete",
    "create": "create",
    "history-instance": "history-instance",
    "history-type": "history-type",
    "history-system": "history-system",
    "search-type": "search-type",
    "search-system": "search-system",
    "search-compartment": "search-type",
    "capabilities": "capabilities",
    "batch": "batch",
    "transaction": "transaction",
    "operation": "operation",
}


class AuditActor(Protocol):
    kind: str
    subject: str
    role: str
    client_id: str
    organisation: str | None
    purpose: str
    name: str | None
    token_id: str | None
    address: str | None
    fhir_user: str | None


@dataclass
class AuditRecord:
    """What happened, as the boundary or a write hook saw it; `build` turns it into an AuditEvent."""

    actor: AuditActor
    request_id: str
    kind: str  # the interaction kind (read, search-type, create, ..., login, break-glass)
    action: str  # C R U D E
    outcome: str  # 0 success, 4 minor failure (refused, not found), 8 serious failure (server error)
    recorded: str
    outcome_desc: str | None = None
    entities: list[str] = field(default_factory=list)  # Type/id or Type/id/_history/n
    patients: set[str] = field(default_factory=set)
    query: str | None = None
    operation: str | None = None
    response: bytes | None = None  # a response Bundle whose entries are listed as entities
    break_glass_reason: str | None = None
    alert: str | None = None  # break-glass | self-claim: an alert for the privacy officer


def build(record: AuditRecord) -> dict[str, Any]:
    """The AuditEvent for one record, with a fresh id.

    Its parts that do not vary (codings, the source, an actor's agents) are shared between events: an event is
    serialised once and never changed, and a read makes one, so building it is on every read's path."""
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": unique_id(),
        "type": _type(record),
        "subtype": _subtype(record),
        "action": record.action,
        "recorded": _fhir_instant(record.recorded),
        "outcome": record.outcome,
        "purposeOfEvent": _purpose(record),
        "agent": _agents(record.actor),
        "source": _SOURCE,
        "entity": _entities(record),
    }
    if record.outcome_desc:
        event["outcomeDesc"] = record.outcome_desc[:500]
    return event


_SOURCE = {
    "observer": {"display": "sharedcare"},
    "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
}
_ALERT_TYPE = {"system": DICOM, "code": "110113", "display": "Security Alert"}
_LOGIN_TYPE = {"system": DICOM, "code": "110114", "display": "User Authentication"}
_REST_TYPE = {"system": AUDIT_TYPE, "code": "rest", "display": "Restful Operation"}
_LOGIN_SUBTYPE = [{"system": DICOM, "code": "110122", "display": "Login"}]
_REST_SUBTYPES: dict[str, list[dict[str, str]]] = {}
_PURPOSES: dict[str, list[dict[str, Any]]] = {}


def _type(record: AuditRecord) -> dict[str, str]:
    if record.alert:
        return _ALERT_TYPE
    if record.kind == "login":
        return _LOGIN_TYPE
    return _REST_TYPE


def _subtype(record: AuditRecord) -> list[dict[str, str]]:
    if record.alert:
        return [{"system": ALERT_SYSTEM, "code": record.alert}]
    if record.kind == "login":
        return _LOGIN_SUBTYPE
    if record.operation:
        return [
            {"system": RESTFUL, "code": RESTFUL_CODES.get(record.kind, record.kind)},
            {"system": "urn:sharedcare:operation", "code": record.operation},
        ]
    shared = _REST_SUBTYPES.get(record.kind)
    if shared is None:
        code = RESTFUL_CODES.get(record.kind, record.kind)
        shared = _REST_SUBTYPES[record.kind] = [{"system": RESTFUL, "code": code}]
    return shared


def _purpose(record: AuditRecord) -> list[dict[str, Any]]:
    """purposeOfEvent."""
    if record.break_glass_reason:
        return [{"coding": [{"system": PURPOSE, "code": "ETREAT"}], "text": record.break_glass_reason[:1000]}]
    code = PURPOSE_CODES.get(record.actor.purpose, "TREAT")
    shared = _PURPOSES.get(code)
    if shared is None:
        shared = _PURPOSES[code] = [{"coding": [{"system": PURPOSE, "code": code}]}]
    return shared


_AGENTS: dict[tuple[Any, ...], list[dict[str, Any]]] = {}  # one actor makes many events: its agents built once


def _agents(actor: AuditActor) -> list[dict[str, Any]]:
    """The event's agents (shared between the events of one actor: built events are serialised, never changed)."""
    key = tuple(getattr(actor, f) for f in _ACTOR_FIELDS)
    agents = _AGENTS.get(key)
    if agents is None:
        if len(_AGENTS) >= 4096:
            _AGENTS.clear()
        agents = _AGENTS[key] = _build_agents(actor)
    return agents


_ACTOR_FIELDS = ("kind", "subject", "role", "client_id", "organisation", "purpose", "name", "token_id", "address",
                 "fhir_user")


def _build_agents(actor: AuditActor) -> list[dict[str, Any]]:
    person = actor.kind == "user"
    who: dict[str, Any] = {
        "identifier": {"system": USER_SYSTEM if person else CLIENT_SYSTEM, "value": actor.subject},
    }
    if actor.name:
        who["display"] = actor.name
    if actor.fhir_user:
        who["reference"] = actor.fhir_user
    requestor: dict[str, Any] = {
        "type": {"coding": [{"system": PARTICIPATION, "code": "IRCP" if person else "CST"}]},
        "who": who,
        "requestor": True,
        "role": [{"coding": [{"system": ROLE_SYSTEM, "code": actor.role}]}],
        "purposeOfUse": [{"coding": [{"system": PURPOSE, "code": PURPOSE_CODES.get(actor.purpose, "TREAT")}]}],
    }
    if actor.token_id:
        requestor["policy"] = [f"urn:uuid:{actor.token_id}" if _is_uuid(actor.token_id) else actor.token_id]
    if actor.address:
        requestor["network"] = {"address": actor.address, "type": "2"}
    agents = [requestor]
    if actor.organisation:
        agents.append(
            {
                "type": {"coding": [{"system": DICOM, "code": "110150", "display": "Application"}]},
                "who": {"identifier": {"system": ODS, "value": actor.organisation}},
                "requestor": False,
                "role": [{"text": "organisation"}],
            }
        )
    if person or actor.client_id != actor.subject:
        agents.append(
            {
                "type": {"coding": [{"system": DICOM, "code": "110150", "display": "Application"}]},
                "who": {"identifier": {"system": CLIENT_SYSTEM, "value": actor.client_id}},
                "requestor": False,
            }
        )
    return agents


_PERSON = {"system": ENTITY_TYPE, "code": "1", "display": "Person"}
_PATIENT_ROLE = {"system": OBJECT_ROLE, "code": "1", "display": "Patient"}
_SYSTEM_OBJECT = {"system": ENTITY_TYPE, "code": "2", "display": "System Object"}
_RESOURCE_ROLE = {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"}
_REQUEST_ID = {"system": BALP_ENTITY, "code": "XrequestId"}


def _entities(record: AuditRecord) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"what": {"reference": f"Patient/{pid}"}, "type": _PERSON, "role": _PATIENT_ROLE}
        for pid in sorted(record.patients)
    ]
    out += [{"what": {"reference": ref}, "type": _SYSTEM_OBJECT, "role": _RESOURCE_ROLE} for ref in record.entities]
    if record.query:
        import base64

        out.append(
            {
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
                "query": base64.b64encode(record.query.encode()).decode(),
            }
        )
    out.append({"what": {"identifier": {"value": record.request_id}}, "type": _REQUEST_ID})
    if record.break_glass_reason:
        out[-1]["detail"] = [{"type": "break-glass-reason", "valueString": record.break_glass_reason[:1000]}]
    return out


def _fhir_instant(store_instant: str) -> str:
    """The store's fixed-width instant (microseconds) as a FHIR instant with milliseconds."""
    return store_instant[:23] + "Z" if len(store_instant) == 27 else store_instant


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def index_terms(event: dict[str, Any]) -> list[tuple[str, str]]:
    """The (kind, value) search terms of an event, derived from its body alone (so `verify` can re-derive them)."""
    terms: list[tuple[str, str]] = [("action", str(event.get("action", ""))), ("outcome", str(event.get("outcome")))]
    terms.append(("type", str(event.get("type", {}).get("code", ""))))
    terms += [("subtype", str(s.get("code", ""))) for s in event.get("subtype") or []]
    for agent in event.get("agent") or []:
        ident = (agent.get("who") or {}).get("identifier") or {}
        if ident.get("value"):
            kind = "org" if ident.get("system") == ODS else "agent"
            terms.append((kind, str(ident["value"])))
        ref = (agent.get("who") or {}).get("reference")
        if ref:
            terms.append(("agent", str(ref)))
    for entity in event.get("entity") or []:
        what = entity.get("what") or {}
        ref = what.get("reference")
        if isinstance(ref, str):
            if ref.startswith("Patient/") and (entity.get("role") or {}).get("code") == "1":
                terms.append(("patient", ref.split("/", 1)[1]))
            terms.append(("entity", ref.split("/_history")[0]))
        elif (entity.get("type") or {}).get("code") == "XrequestId":
            terms.append(("request", str((what.get("identifier") or {}).get("value", ""))))
    return sorted(set(terms))
