"""Human decisions on the MPI: accept or reject a review item, merge two Persons, unmerge.

Each decision runs in one transaction that changes the Persons, records a rule the batch re-link honours
(`mpi_rule`) and writes a Provenance naming the Person versions it replaced (so it can be undone). Every resource
written is audited by the server's audit trail (a write hook), in the same transaction, under the caller's identity.
A merge that would put two different PDS-verified NHS numbers, or a new identity and its old number, in one
Person is refused: no human decision overrides that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from sharedcare.errors import Conflict, InvalidRequest, NotFound, UnprocessableEntity
from sharedcare.fhir.resource import new_id
from sharedcare.matching.cluster import group_conflict
from sharedcare.matching.features import MatchRecord
from sharedcare.matching.resources import provenance, retired_person
from sharedcare.matching.service import MatchService

if TYPE_CHECKING:
    from sharedcare.store.base import Txn

MERGE_ACTIVITIES = ("merge", "review-accept")


class Curation:
    def __init__(self, service: MatchService) -> None:
        self.s = service

    # --- review queue -------------------------------------------------------------------------------
    def accept(self, task_id: str, who: str, note: str | None) -> str:
        """The pair is the same person: join their Persons. Returns the Provenance id."""

        def work(txn: Txn) -> str:
            sql, (a, b) = self._open_review(txn, task_id)
            prov_id = new_id()
            person_a, person_b = self._person(sql, a), self._person(sql, b)
            before = self._versions(txn, {person_a, person_b})
            for pid, person in ((a, person_a), (b, person_b)):
                sql.move(pid, person, "level4")
            if person_a != person_b:
                self._join(txn, sql, source=person_a, target=person_b)
            else:
                self.s.write_person(txn, sql, person_b)
            sql.put_rule(a, b, "link", prov_id)
            self.s.close_review(txn, sql, task_id, "completed", "accepted: same person")
            entities = [("revision", v) for v in before] + [("source", f"Task/{task_id}")]
            persons = [person_b] if person_a == person_b else [person_b, person_a]
            self._record(txn, "review-accept", persons, entities, who, note, prov_id)
            return prov_id

        return self.s.repo.store.transact(work)

    def reject(self, task_id: str, who: str, note: str | None) -> str:
        """The pair are different people: never link them. Returns the Provenance id."""

        def work(txn: Txn) -> str:
            sql, (a, b) = self._open_review(txn, task_id)
            prov_id = new_id()
            sql.put_rule(a, b, "nolink", prov_id)
            self.s.close_review(txn, sql, task_id, "rejected", "rejected: different people")
            persons = sorted({self._person(sql, a), self._person(sql, b)})
            self._record(txn, "review-reject", persons, [("source", f"Task/{task_id}")], who, note, prov_id)
            return prov_id

        return self.s.repo.store.transact(work)

    def _open_review(self, txn: Txn, task_id: str) -> tuple[Any, tuple[str, str]]:
        txn.lock("mpi")
        sql = self.s.mpi.within(txn)
        row = sql.review(task_id)
        if row is None:
            raise NotFound(f"Task/{task_id} is not a match review")
        if row[4] != "requested":
            raise Conflict(f"Task/{task_id} was already decided ({row[4]})")
        return sql, (row[1], row[2])

    # --- merge and unmerge --------------------------------------------------------------------------
    def merge(self, source: str, target: str, who: str, reason: str | None) -> str:
        """Join Person `source` into Person `target` (a wrongly split person). Returns the Provenance id."""
        if source == target:
            raise InvalidRequest("source and target are the same Person")

        def work(txn: Txn) -> str:
            txn.lock("mpi")
            sql = self.s.mpi.within(txn)
            src, tgt = sql.members([source]), sql.members([target])
            if not src or not tgt:
                raise NotFound(f"Person/{source if not src else target} links no source Patient")
            prov_id = new_id()
            before = self._versions(txn, {source, target})
            self._join(txn, sql, source=source, target=target)
            sql.put_rule(src[0][0], tgt[0][0], "link", prov_id)
            self._record(txn, "merge", [target, source], [("revision", v) for v in before], who, reason, prov_id)
            return prov_id

        return self.s.repo.store.transact(work)

    def split(self, patient_id: str, who: str, reason: str | None) -> str:
        """Take a wrongly linked source Patient out of its Person into a Person of its own."""

        def work(txn: Txn) -> str:
            txn.lock("mpi")
            sql = self.s.mpi.within(txn)
            row = sql.record(patient_id)
            if row is None:
                raise NotFound(f"Patient/{patient_id} is not in the master patient index")
            others = [m[0] for m in sql.members([row[1]]) if m[0] != patient_id]
            if not others:
                raise UnprocessableEntity(f"Patient/{patient_id} is the only record of Person/{row[1]}")
            prov_id, new_person = new_id(), new_id()
            before = self._versions(txn, {row[1]})
            sql.move(patient_id, new_person, "level4")
            for other in others:
                sql.put_rule(patient_id, other, "nolink", prov_id)
            self.s.write_person(txn, sql, row[1])
            self.s.write_person(txn, sql, new_person)
            self.s.sync_reviews(txn, sql, patient_id, [])
            entities = [("revision", v) for v in before]
            self._record(txn, "unmerge", [row[1], new_person], entities, who, reason, prov_id)
            return prov_id

        return self.s.repo.store.transact(work)

    def undo_merge(self, provenance_id: str, who: str, reason: str | None) -> str:
        """Reverse a merge or an accepted review: the records the merged Person held go back to it."""

        def work(txn: Txn) -> str:
            txn.lock("mpi")
            sql = self.s.mpi.within(txn)
            prov = self._provenance(txn, provenance_id)
            activity = prov["activity"]["coding"][0]["code"]
            if activity not in MERGE_ACTIVITIES:
                raise UnprocessableEntity(f"Provenance/{provenance_id} records '{activity}', not a merge")
            if len(prov["target"]) < 2:
                raise UnprocessableEntity(f"Provenance/{provenance_id} joined no Persons; there is nothing to undo")
            survivor, merged = (t["reference"].split("/")[1] for t in prov["target"][:2])
            merged_version = next(
                e["what"]["reference"]
                for e in prov.get("entity", [])
                if e["what"]["reference"].startswith(f"Person/{merged}/")
            )
            moved = self._members_of_version(merged_version)
            current = {m[0] for m in sql.members([survivor])}
            back = [p for p in moved if p in current]
            stay = sorted(current - set(back))
            if not back or not stay:
                raise Conflict(f"Provenance/{provenance_id} cannot be undone: the records have moved since")
            undo_id = new_id()
            before = self._versions(txn, {survivor, merged})
            sql.delete_rules_from(provenance_id)
            for pid in back:
                row = sql.record(pid)
                sql.move(pid, merged, row[2])
                for other in stay:
                    sql.put_rule(pid, other, "nolink", undo_id)
            self.s.write_person(txn, sql, survivor)
            self.s.write_person(txn, sql, merged)
            entities = [("revision", v) for v in before] + [("source", f"Provenance/{provenance_id}")]
            self._record(txn, "unmerge", [survivor, merged], entities, who, reason, undo_id)
            return undo_id

        return self.s.repo.store.transact(work)

    # --- helpers ------------------------------------------------------------------------------------
    def _join(self, txn: Txn, sql: Any, *, source: str, target: str) -> None:
        src, tgt = sql.members([source]), sql.members([target])
        a = [MatchRecord.from_json(m[3]) for m in src]
        b = [MatchRecord.from_json(m[3]) for m in tgt]
        conflict = group_conflict(a, b, set())
        if conflict:
            raise UnprocessableEntity(f"Person/{source} and Person/{target} cannot be merged: {conflict}")
        for pid, _, assurance, _ in src:
            sql.move(pid, target, assurance)
            for other, *_ in tgt:
                self._forget_nolink(sql, pid, other)
        self.s.write_person(txn, sql, target)
        self.s.save_if_changed(txn, "Person", source, retired_person(source, target))

    @staticmethod
    def _forget_nolink(sql: Any, a: str, b: str) -> None:
        """A person has now said these records are one person: an older "not the same" between them goes."""
        sql.delete_rule(a, b, "nolink")

    @staticmethod
    def _person(sql: Any, patient_id: str) -> str:
        row = sql.record(patient_id)
        if row is None:
            raise Conflict(f"Patient/{patient_id} is no longer in the master patient index")
        return row[1]

    @staticmethod
    def _versions(txn: Txn, person_ids: set[str]) -> list[str]:
        out = []
        for pid in sorted(person_ids):
            current = txn.current("Person", pid)
            if current is not None:
                out.append(f"Person/{pid}/_history/{current.version}")
        return out

    def _members_of_version(self, reference: str) -> list[str]:
        _, pid, _, version = reference.split("/")
        stored = self.s.repo.vread("Person", pid, version)
        person = orjson.loads(stored.body)
        refs = [link["target"]["reference"] for link in person.get("link", [])]
        return [r.removeprefix("Patient/") for r in refs if r.startswith("Patient/")]

    def _provenance(self, txn: Txn, provenance_id: str) -> dict[str, Any]:
        current = txn.current("Provenance", provenance_id)
        if current is None or current.body is None:
            raise NotFound(f"Provenance/{provenance_id} is not known")
        return orjson.loads(current.body)

    def _record(
        self,
        txn: Txn,
        activity: str,
        persons: list[str],
        entities: list[tuple[str, str]],
        who: str,
        reason: str | None,
        prov_id: str | None = None,
    ) -> str:
        prov_id = prov_id or new_id()
        targets = [f"Person/{p}" for p in persons]
        resource = provenance(prov_id, activity, targets, entities, who, reason, txn.now)
        self.s.repo.save_in(txn, "Provenance", prov_id, resource, 1, "POST")
        return prov_id
