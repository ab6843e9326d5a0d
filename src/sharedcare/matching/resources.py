"""The FHIR resources the MPI writes: Person (one per human, linking source Patients), Task (a review item) and
Provenance (each human decision, with the versions it changed). Pure builders.

Provenance names the Person, never a Patient, so it stays out of the Patient compartment and so out of clinical
`$everything` views; the Person and its links are there already.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sharedcare.fhir.nhs_number import NHS_NUMBER_SYSTEM
from sharedcare.matching.features import MatchRecord

BASE = "https://sharedcare.example/fhir"
MPI_CODES = f"{BASE}/CodeSystem/mpi"
MATCH_GRADE_URL = "http://hl7.org/fhir/StructureDefinition/match-grade"
MATCH_WEIGHT_URL = f"{BASE}/StructureDefinition/match-weight"
SOURCE_ORG_URL = f"{BASE}/StructureDefinition/source-organization"
SOURCE_PATIENT_URL = f"{BASE}/StructureDefinition/source-patient"
DUPLICATE_URL = f"{BASE}/StructureDefinition/possible-duplicate"
PERSON_URL = f"{BASE}/StructureDefinition/mpi-person"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
REVIEW_CODE = "match-review"


def person_resource(person_id: str, members: Sequence[tuple[MatchRecord, str]]) -> dict[str, Any]:
    """A Person linking its source Patients, each link with its assurance level; inactive when it has none."""
    person: dict[str, Any] = {"resourceType": "Person", "id": person_id, "active": bool(members)}
    verified = sorted({r.nhs for r, _ in members if r.verified and r.nhs})
    if len(verified) == 1:
        person["identifier"] = [{"system": NHS_NUMBER_SYSTEM, "value": verified[0]}]
    sexes = {r.sex for r, _ in members if r.sex}
    if len(sexes) == 1:
        person["gender"] = {"m": "male", "f": "female", "o": "other"}[sexes.pop()]
    dobs = {r.dob for r, _ in members if r.dob}
    if len(dobs) == 1:
        d = dobs.pop()
        person["birthDate"] = f"{d[:4]}-{d[4:6]}-{d[6:]}"
    if members:
        person["link"] = [_link(r, level) for r, level in sorted(members, key=lambda m: m[0].patient_id)]
    return person


def _link(r: MatchRecord, level: str) -> dict[str, Any]:
    target: dict[str, Any] = {"reference": f"Patient/{r.patient_id}"}
    if r.org:
        target["display"] = f"Record held by {r.org}"
    return {"target": target, "assurance": level}


def retired_person(person_id: str, merged_into: str) -> dict[str, Any]:
    """A Person merged into another: inactive, pointing at the survivor (kept so references still resolve)."""
    return {
        "resourceType": "Person",
        "id": person_id,
        "active": False,
        "link": [{"target": {"reference": f"Person/{merged_into}"}, "assurance": "level4"}],
    }


def review_task(
    task_id: str, patient_id: str, candidate_id: str, weight: float, grade: str, explanation: str, now: str
) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": task_id,
        "status": "requested",
        "intent": "proposal",
        "code": {"coding": [{"system": MPI_CODES, "code": REVIEW_CODE, "display": "Review a possible match"}]},
        "description": f"Are Patient/{patient_id} and Patient/{candidate_id} the same person?",
        "focus": {"reference": f"Patient/{patient_id}"},
        "authoredOn": now,
        "lastModified": now,
        "input": [
            {"type": {"text": "candidate"}, "valueReference": {"reference": f"Patient/{candidate_id}"}},
            {"type": {"text": "match-weight"}, "valueDecimal": round(weight, 2)},
            {"type": {"text": "match-grade"}, "valueCode": grade},
            {"type": {"text": "explanation"}, "valueString": explanation},
        ],
    }


def closed_task(task: dict[str, Any], status: str, note: str, now: str) -> dict[str, Any]:
    """The review Task after a decision: `completed` (accepted), `rejected`, or `cancelled` (no longer needed)."""
    out = {k: v for k, v in task.items() if k not in ("meta", "output")}
    out.update(status=status, lastModified=now, businessStatus={"text": note})
    return out


def provenance(
    prov_id: str,
    activity: str,
    targets: Sequence[str],
    entities: Sequence[tuple[str, str]],
    who: str,
    reason: str | None,
    now: str,
) -> dict[str, Any]:
    """A Provenance for one MPI decision; `entities` are (role, versioned reference) of the state before it."""
    prov: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": prov_id,
        "target": [{"reference": t} for t in targets],
        "recorded": now,
        "activity": {"coding": [{"system": MPI_CODES, "code": activity}]},
        "agent": [{"who": {"display": who}}],
    }
    if entities:
        prov["entity"] = [{"role": role, "what": {"reference": ref}} for role, ref in entities]
    if reason:
        prov["reason"] = [{"text": reason}]
    return prov
