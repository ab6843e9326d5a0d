"""Break glass and self-claimed legitimate relationships: time-limited grants that alert the privacy officer.

`POST [base]/Patient/{id}/$break-glass` and `POST [base]/Patient/{id}/$claim-relationship` take a Parameters
resource (or form/query parameters) with `reason` (mandatory free text) and optionally `reasonCode` and
`minutes`. Each records a grant (access_grant) and an AuditEvent of type Security Alert (DICOM 110113) with
subtype `break-glass` or `self-claim`, in one transaction; the privacy officer's queue is
`GET [base]/AuditEvent?type=110113`. Break glass also overrides the patient's objection and organisation
restrictions for its duration (the documented override of domain-uk.md §6); a self-claim stands in for a
legitimate relationship only. Neither shows sensitive categories the role does not see.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sharedcare.access.actor import Actor
from sharedcare.access.policy import INSTANT
from sharedcare.errors import Forbidden, InvalidRequest
from sharedcare.store.schema import Dialect

BREAK_GLASS = "break-glass"
SELF_CLAIM = "self-claim"
MIN_REASON = 10


@dataclass(frozen=True, slots=True)
class Grant:
    id: str
    subject: str
    patient: str
    kind: str
    reason: str
    reason_code: str | None
    created_at: str
    expires_at: str

    def to_parameters(self) -> dict[str, Any]:
        return {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "grant", "valueString": self.id},
                {"name": "kind", "valueCode": self.kind},
                {"name": "patient", "valueReference": {"reference": f"Patient/{self.patient}"}},
                {"name": "expires", "valueInstant": self.expires_at[:23] + "Z"},
            ],
        }


def check_may_request(actor: Actor, kind: str) -> None:
    policy = actor.policy
    allowed = (
        policy is not None and actor.is_person and (policy.break_glass if kind == BREAK_GLASS else policy.self_claim)
    )
    if not allowed:
        what = "break glass" if kind == BREAK_GLASS else "self-claim a relationship"
        raise Forbidden(f"The role '{actor.role}' may not {what}")
    if actor.purpose != "direct-care":
        raise Forbidden("Break glass and self-claimed relationships are for direct care only")


def parse_reason(params: dict[str, str]) -> tuple[str, str | None, int | None]:
    reason = (params.get("reason") or "").strip()
    if len(reason) < MIN_REASON:
        raise InvalidRequest(f"A reason of at least {MIN_REASON} characters is required", expression="reason")
    minutes = params.get("minutes")
    if minutes is not None and not minutes.isdigit():
        raise InvalidRequest("minutes must be a positive whole number", expression="minutes")
    return reason, params.get("reasonCode"), int(minutes) if minutes else None


def create_grant(
    cur: Any,
    dialect: Dialect,
    actor: Actor,
    patient: str,
    kind: str,
    reason: str,
    reason_code: str | None,
    minutes: int,
) -> Grant:
    now = datetime.now(UTC)
    grant = Grant(
        str(uuid.uuid4()),
        actor.subject,
        patient,
        kind,
        reason,
        reason_code,
        now.strftime(INSTANT),
        (now + timedelta(minutes=minutes)).strftime(INSTANT),
    )
    cur.execute(
        dialect.sql(
            "INSERT INTO access_grant (id, subject, patient, kind, reason_code, reason, organisation, role, "
            "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        (
            grant.id,
            grant.subject,
            patient,
            kind,
            reason_code,
            reason,
            actor.organisation,
            actor.role,
            grant.created_at,
            grant.expires_at,
        ),
    )
    return grant


def active_break_glass(cur: Any, dialect: Dialect, subject: str, patients: set[str], now: str) -> str | None:
    """The reason of an unexpired break-glass grant the subject holds for any of these patients (for audit)."""
    if not patients:
        return None
    marks = ", ".join("?" * len(patients))
    cur.execute(
        dialect.sql(
            f"SELECT reason FROM access_grant WHERE subject = ? AND kind = 'break-glass' AND expires_at > ? "
            f"AND patient IN ({marks}) ORDER BY expires_at DESC LIMIT 1"
        ),
        [subject, now, *sorted(patients)],
    )
    row = cur.fetchone()
    return row[0] if row else None
