"""The access write hook: inside each write transaction, refuse what the caller may not write, then keep the
access tables in step with the saved version.

It runs after the version is saved (so its compartment rows exist) and before the audit hook. The checks read
the state *before* this write: a caller cannot create the relationship that would authorise its own write.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from sharedcare.access.actor import INTERNAL, RequestContext
from sharedcare.access.derive import RESOLVABLE
from sharedcare.access.policy import AccessPolicy
from sharedcare.access.roles import NEVER_WRITABLE
from sharedcare.access.tables import AccessTables, Saved, source_org_of
from sharedcare.errors import FhirError, MethodNotAllowed
from sharedcare.types import StoredResource

ORG_FIELDS = {"PractitionerRole": "organization", "HealthcareService": "providedBy", "Location": "managingOrganization"}


class AccessWriteHook:
    def __init__(self, policy: AccessPolicy, tables: AccessTables, context: Callable[[], RequestContext | None]):
        self.policy, self.tables, self.context = policy, tables, context

    def __call__(self, txn: Any, stored: StoredResource, resource: dict[str, Any] | None) -> None:
        self.many(txn, [(stored, resource)])

    def many(self, txn: Any, written: Sequence[tuple[StoredResource, dict[str, Any] | None]]) -> None:
        """Check and record saved versions; a resource saved more than once is taken one version per round."""
        rounds: list[list[tuple[StoredResource, dict[str, Any] | None]]] = []
        seen: dict[tuple[str, str], int] = {}
        for stored, resource in written:
            n = seen[(stored.type, stored.id)] = seen.get((stored.type, stored.id), -1) + 1
            if n == len(rounds):
                rounds.append([])
            rounds[n].append((stored, resource))
        if len(rounds) > 1:
            for one_round in rounds:
                self.many(txn, one_round)
            return
        for stored, _ in written:
            if stored.type in NEVER_WRITABLE:
                err = MethodNotAllowed(f"{stored.type} resources are kept by the server and cannot be written")
                err.resource_key = f"{stored.type}/{stored.id}"
                raise err
        ctx = self.context()
        actor = ctx.actor if ctx is not None else INTERNAL
        cur, tables = txn.cur, self.tables
        rids = tables.rids(cur, [(s.type, s.id) for s, _ in written])
        ordered = [rids[(s.type, s.id)] for s, _ in written]
        past = tables.past_patients_of(cur, ordered)
        live = [rid for rid, (_, r) in zip(ordered, written, strict=True) if r is not None]
        now = tables.current_patients_of(cur, live)
        saved = []
        passed: set[tuple[str, bool, bool]] = set()  # an unrestricted actor's checks passed, by type and permission
        for rid, (stored, resource) in zip(ordered, written, strict=True):
            before = past.get(rid, set())
            after = now.get(rid, set()) if resource is not None else set()
            key = (stored.type, stored.body is None, stored.method == "POST" or stored.version == 1)
            if key not in passed:
                self._check(cur, actor, rid, stored, before, after)
                if actor.unrestricted:  # scopes alone decide, by type and permission: once per batch is enough
                    passed.add(key)
            org = source_org_of(resource) if actor.unrestricted else actor.organisation
            saved.append(Saved(rid, stored, resource, after, org))
        tables.record_many(cur, saved, actor.subject, _resolver(txn))

    def _check(self, cur: Any, actor: Any, rid: int, stored: StoredResource, before: set[str], after: set[str]) -> None:
        """The policy's write check of one saved version; a refusal names the resource."""
        tables = self.tables
        previous = tables.source(cur, rid, stored.version - 1) if stored.version > 1 else None
        new_patient = stored.type == "Patient" and stored.version == 1 and not before
        try:
            self.policy.check_write(cur, tables.d, actor, stored, before | after, previous, new_patient=new_patient)
        except FhirError as err:
            err.resource_key = f"{stored.type}/{stored.id}"
            raise


def _resolver(txn: Any) -> Callable[[str], str | None]:
    """Organisation of a PractitionerRole, HealthcareService or Location, read inside the transaction."""

    def resolve(ref: str) -> str | None:
        type, _, id = ref.partition("/")
        if type not in RESOLVABLE:
            return None
        found = txn.current(type, id)
        if found is None or found.body is None:
            return None
        org = orjson.loads(found.body).get(ORG_FIELDS[type])
        text = org.get("reference") if isinstance(org, dict) else None
        return text if isinstance(text, str) and text.startswith("Organization/") else None

    return resolve
