"""The access policy: an actor and an interaction → refusal, or the restrictions and redaction to apply.

Order of the checks (each refusal is a Forbidden whose message names no patient and no withheld item):
1. the token's scopes allow the interaction on the type (SMART; `patient/` scopes confine to the launch patient);
2. the role may do it (roles.py) for the token's purpose of use;
3. for patient data, the patient gate: a legitimate relationship (or grant) for roles that need one, the
   patient's objection and organisation restrictions, opt-outs for secondary use, a patient's own record only;
4. sensitive categories withheld outside their source organisation unless the role sees them.
Checks 1-2 are per request; 3-4 become a `Restriction` the store enforces inside the query.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sharedcare.access.actor import Actor
from sharedcare.access.restrictions import UNRESTRICTED, PatientGate, Restriction, gate_sql
from sharedcare.access.roles import PATIENT, SECONDARY_USE, SENSITIVE_ALL, RolePolicy
from sharedcare.access.scopes import ScopeGrant
from sharedcare.errors import Forbidden
from sharedcare.store.schema import Dialect

PERM_WORDS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
NOT_AVAILABLE = "This record is not available to you under the shared care record's access policy"
WITHHELD = "This item is withheld by the shared care record's access policy"
INSTANT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True, slots=True)
class Redaction:
    """Element-level changes to what is shown; `pseudonymise` serves secondary use (identifiers hashed)."""

    pseudonymise: bool = False


def now_instant(at: datetime | None = None) -> str:
    if at is None:  # every request asks: `isoformat` of a UTC time is the same text at a third of the cost
        return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"
    return at.strftime(INSTANT)


class AccessPolicy:
    def __init__(self, *, relationship_days: int = 90) -> None:
        self.relationship_days = relationship_days
        self._cache: dict[tuple[Any, ...], Restriction] = {}

    # --- checks 1 and 2: per request ---------------------------------------------------------------------
    def check(self, actor: Actor, type: str, perm: str) -> ScopeGrant:
        """Scopes and role allow `perm` (a letter of cruds) on `type`, or Forbidden. Scopes bind everyone,
        the operator included; the role table does not bind the operator."""
        grant = actor.scopes.grant(type, perm)
        if grant is None:
            raise Forbidden(f"The access token's scopes do not allow {PERM_WORDS[perm]} on {type}")
        if actor.unrestricted:
            return grant
        policy = self._policy(actor)
        if grant.patient_only and not actor.patient:
            raise Forbidden("patient/ scopes need a patient in context (launch/patient)")
        allowed = policy.may_read(type) if perm in "rs" else self._may_change(policy, actor, type, perm)
        if not allowed:
            raise Forbidden(f"The role '{actor.role}' may not {PERM_WORDS[perm]} {type}")
        return grant

    @staticmethod
    def _may_change(policy: RolePolicy, actor: Actor, type: str, perm: str) -> bool:
        if actor.purpose == SECONDARY_USE:
            return False
        return policy.deletes and policy.may_write(type) if perm == "d" else policy.may_write(type)

    def _policy(self, actor: Actor) -> RolePolicy:
        policy = actor.policy
        if policy is None:
            raise Forbidden(f"The role '{actor.role}' is not known for a {actor.kind}")
        if actor.purpose not in policy.purposes:
            raise Forbidden(f"The role '{actor.role}' may not act for the purpose '{actor.purpose}'")
        return policy

    # --- checks 3 and 4: restrictions the query enforces ---------------------------------------------------
    def restriction(
        self, actor: Actor, type: str | None, perm: str = "r", *, now: datetime | None = None
    ) -> Restriction:
        """What `actor` may see among resources of `type` (None: any type, e.g. system history).

        A token's restriction changes only with the clock, so it is kept for the current second."""
        if now is not None or not actor.token_id:
            return self._restriction(actor, type, perm, now)
        key = (actor.token_id, actor.subject, type, perm, int(time.time()))
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            found = self._cache[key] = self._restriction(actor, type, perm, None)
        return found

    def _restriction(self, actor: Actor, type: str | None, perm: str, now: datetime | None) -> Restriction:
        if actor.unrestricted:
            grant = actor.scopes.grant(type, perm) if type else None
            return (
                Restriction(criteria=((type, grant.criteria),)) if type and grant and grant.criteria else UNRESTRICTED
            )
        policy = self._policy(actor)
        grant = actor.scopes.grant(type or "*", perm)
        if grant is None and type is None:
            grant = self._any_grant(actor, perm)
        if grant is None:
            return Restriction(deny_all=True)
        types = None if "*" in policy.reads else policy.reads
        criteria = ((type, grant.criteria),) if type and grant.criteria else ()
        return Restriction(
            types=types,
            patients=self.gate(actor, policy, patient_only=grant.patient_only, now=now),
            withheld=SENSITIVE_ALL - policy.sees_sensitive,
            withheld_except_org=actor.organisation,
            criteria=criteria,
        )

    @staticmethod
    def _any_grant(actor: Actor, perm: str) -> ScopeGrant | None:
        """For requests spanning types: any resource scope with `perm` lets the type filter decide the rest."""
        scopes = [s for s in actor.scopes.resources if perm in s.perms]
        if not scopes:
            return None
        return ScopeGrant(all(s.context == "patient" for s in scopes), None)

    def gate(
        self, actor: Actor, policy: RolePolicy, *, patient_only: bool = False, now: datetime | None = None
    ) -> PatientGate:
        at = now or datetime.now(UTC)
        now_text = now_instant(at)
        since = now_instant(at - timedelta(days=self.relationship_days))
        if actor.is_person and actor.role == PATIENT:
            own = frozenset({actor.patient}) if actor.patient else frozenset()
            return PatientGate(now_text, only=own, honour_objection=False)
        only = frozenset({actor.patient}) if patient_only and actor.patient else None
        if actor.purpose == SECONDARY_USE:
            return PatientGate(now_text, only=only, secondary_opt_outs=True)
        return PatientGate(
            now_text,
            only=only,
            relationship_required=policy.needs_relationship,
            parties=actor.parties(),
            since=since,
            grant_subject=actor.subject if actor.is_person else None,
            denied_org=actor.organisation,
        )

    def redaction(self, actor: Actor) -> Redaction | None:
        if actor.purpose == SECONDARY_USE and not actor.unrestricted:
            return Redaction(pseudonymise=True)
        return None

    # --- writes: checked inside the write transaction, before the access tables change ----------------------
    def check_write(
        self,
        cur: Any,
        dialect: Dialect,
        actor: Actor,
        stored: Any,
        patients: set[str],
        previous_source: tuple[str | None, str | None] | None,
        *,
        new_patient: bool,
    ) -> None:
        """Refuse a saved version the actor may not write: scopes, role, source, patients (Forbidden rolls back)."""
        perm = "d" if stored.body is None else ("c" if stored.method == "POST" or stored.version == 1 else "u")
        grant = self.check(actor, stored.type, perm)
        if actor.unrestricted:
            return
        if (grant.patient_only or actor.role == PATIENT) and (not actor.patient or patients != {actor.patient}):
            raise Forbidden(f"You may only write to your own record ({stored.type})")
        if previous_source is not None:
            self._check_source(actor, stored.type, previous_source)
        if new_patient:
            return
        policy = self._policy(actor)
        consent = stored.type == "Consent"
        gate = PatientGate(
            now_instant(),
            relationship_required=policy.needs_relationship and actor.is_person and actor.role != PATIENT,
            parties=actor.parties(),
            since=now_instant(datetime.now(UTC) - timedelta(days=self.relationship_days)),
            grant_subject=actor.subject if actor.is_person else None,
            honour_objection=not consent and actor.role != PATIENT,
            denied_org=None if consent else actor.organisation,
        )
        for patient in sorted(patients):
            if not self.patient_passes(cur, dialect, gate, patient):
                raise Forbidden(NOT_AVAILABLE)

    @staticmethod
    def _check_source(actor: Actor, type: str, previous: tuple[str | None, str | None]) -> None:
        org, agent = previous
        if org is not None and org != actor.organisation:
            raise Forbidden(f"This {type} was written by another organisation; only its source may change it")
        if actor.role == PATIENT and agent != actor.subject:
            raise Forbidden(f"You may only change what you wrote yourself ({type})")

    @staticmethod
    def patient_passes(cur: Any, dialect: Dialect, gate: PatientGate, patient: str) -> bool:
        cond, args = gate_sql(gate, "x.pid")
        cur.execute(dialect.sql(f"SELECT 1 FROM (SELECT CAST(? AS TEXT) AS pid) x WHERE {cond}"), [patient, *args])
        return cur.fetchone() is not None
