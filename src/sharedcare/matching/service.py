"""The MPI on the store: every source Patient is matched inside its own write transaction.

`MatchService.hook` (a `MatchHook`) is a Repository write hook, so a Patient arriving through the API, a transaction
Bundle or a bulk import that saves through the repository is linked to a Person before its write commits: the record
and its link are never seen apart. Matching writers serialise on one lock ("mpi") so two records of the same person
arriving at once cannot both found a Person.

Matching one record is on the path of every Patient write, so it reads what it needs once: one query for the
candidates' keys, one for the candidates with everyone already grouped with them (decoded once), and the Person it
writes is built from those rows rather than read back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from sharedcare.fhir.resource import new_id
from sharedcare.matching import person_batch
from sharedcare.matching.blocking import blocking_keys, key_cap
from sharedcare.matching.cluster import ASSURANCE_RANK, founder_assurance, group_conflict, link_assurance
from sharedcare.matching.compare import describe
from sharedcare.matching.duplicates import FACT_TYPES, fingerprint
from sharedcare.matching.features import MatchRecord, extract
from sharedcare.matching.resources import closed_task, person_resource, review_task
from sharedcare.matching.rules import Outcome, PairDecision, decide, match_grade
from sharedcare.matching.weights import Weights
from sharedcare.types import JSON, StoredResource

if TYPE_CHECKING:
    from sharedcare.store.base import Txn

MAX_REVIEWS_PER_RECORD = 3
CANDIDATE_LIMIT = 100  # most candidates compared for one record (those sharing most blocking keys first)


@dataclass
class Candidate:
    record: MatchRecord
    person_id: str
    decision: PairDecision


@dataclass
class Plan:
    """Where an arriving record goes: a Person (None for a new one), at what assurance, and what to review."""

    person_id: str | None
    assurance: str
    reviews: list[Candidate] = field(default_factory=list)
    members: list[tuple[MatchRecord, str]] = field(default_factory=list)  # the target Person's other records


def stronger(a: str, b: str) -> str:
    return a if ASSURANCE_RANK[a] >= ASSURANCE_RANK[b] else b


class MatchHook:
    """The MPI's repository write hook: a Patient is matched, a clinical fact fingerprinted.

    Called once per saved version; `many` takes a bulk load's batch: fingerprints in one statement per batch, then
    each Patient matched in order, one by one, exactly as single writes would have been, their Persons' versions
    written together at the end (`person_batch`)."""

    def __init__(self, service: MatchService) -> None:
        self.service = service

    def __call__(self, txn: Txn, stored: StoredResource, resource: JSON | None) -> None:
        if stored.type == "Patient":
            self.service.patient_written(txn, stored.id, resource, first=stored.version == 1)
        elif stored.type in FACT_TYPES:
            fp = fingerprint(resource) if resource else None
            self.service.mpi.within(txn).put_fact(stored.type, stored.id, fp, replace=stored.version > 1)

    def many(self, txn: Txn, written: Sequence[tuple[StoredResource, JSON | None]]) -> None:
        last: dict[tuple[str, str], str | None] = {}  # a resource saved twice in a batch keeps its last print
        stale: dict[tuple[str, str], None] = {}
        for stored, resource in written:
            if stored.type in FACT_TYPES:
                key = (stored.type, stored.id)
                last[key] = fingerprint(resource) if resource else None
                if stored.version > 1:
                    stale[key] = None
        if last:
            rows = [(t, i, fp) for (t, i), fp in last.items() if fp]
            self.service.mpi.within(txn).put_facts_many(list(stale), rows)
        patients = [(stored, resource) for stored, resource in written if stored.type == "Patient"]
        if len(patients) < 2:  # one Patient: saved as a single write saves it
            for stored, resource in patients:
                self.service.patient_written(txn, stored.id, resource, first=stored.version == 1)
            return
        with person_batch.collecting(txn, self.service.repo):
            for stored, resource in patients:
                self.service.patient_written(txn, stored.id, resource, first=stored.version == 1)


class MatchService:
    def __init__(
        self,
        repo: Any,
        mpi: Any,
        weights: Weights,
        *,
        candidate_limit: int = CANDIDATE_LIMIT,
        block_cap: int | None = None,
    ) -> None:
        """`block_cap`: one cap for every blocking key instead of each kind's own (`blocking.key_cap`)."""
        self.repo, self.mpi, self.weights = repo, mpi, weights
        self.candidate_limit, self.block_cap = candidate_limit, block_cap
        self.hook = MatchHook(self)

    # --- a Patient written ---------------------------------------------------------------------------
    def patient_written(self, txn: Txn, patient_id: str, resource: JSON | None, *, first: bool = False) -> None:
        """Match a saved Patient version (None: deleted). `first`: it is the Patient's first version, so the MPI
        holds nothing about it yet (no record, rules or reviews: those all name a Patient stored before)."""
        txn.lock("mpi")
        sql = self.mpi.within(txn)
        existing = None if first else sql.record(patient_id)
        if resource is None:
            if existing:
                sql.delete_record(patient_id)
                self.write_person(txn, sql, existing[1])
                self.sync_reviews(txn, sql, patient_id, [])
            return
        record = extract(resource, patient_id)
        features = record.to_json().decode()
        if existing and existing[3] == features:
            return  # nothing matching compares has changed: keep the link as it is
        keys = blocking_keys(record)
        sql.replace_blocks(patient_id, keys, new=existing is None)
        plan = self.plan(sql, record, keys, with_rules=not first)
        old_person = existing[1] if existing else None
        if plan.person_id is not None:
            person_id, members = plan.person_id, [*plan.members, (record, plan.assurance)]
        else:
            person_id, members = self._own_person(sql, patient_id, old_person), [(record, plan.assurance)]
        sql.put_record(patient_id, person_id, plan.assurance, features)
        resource_ = person_resource(person_id, members)
        if person_id == old_person:  # matched again into its own Person: unchanged, perhaps
            self.save_if_changed(txn, "Person", person_id, resource_)
        elif plan.person_id is not None:  # it joins this Person: a new link, so a new version whatever else
            self.save_if_changed(txn, "Person", person_id, resource_, changed=True)
        else:  # a Person founded now, under a fresh id: nothing to read back or compare with
            batch = person_batch.active()
            if batch is not None:
                batch.save(txn, person_id, resource_, 1, "POST", new=True)
            else:
                self.repo.save_in(txn, "Person", person_id, resource_, 1, "POST")
        if old_person and old_person != person_id:
            self.write_person(txn, sql, old_person)
        if record.new_identity and plan.person_id is not None:
            self._cancel_reviews_across_identities(txn, sql, [r for r, _ in members], patient_id)
        if existing or plan.reviews:  # a record matched for the first time has no reviews open yet
            self.sync_reviews(txn, sql, patient_id, plan.reviews)

    def _cancel_reviews_across_identities(self, txn: Txn, sql: Any, group: list[MatchRecord], patient_id: str) -> None:
        """A record marked as a new identity (`patient_id`) joined `group`'s Person: open reviews between the other
        members and a record under another NHS number, opened before the Person was known to be a new identity,
        are cancelled (the arriving record's own reviews are `sync_reviews`'s)."""
        members = {r.patient_id for r in group}
        others = [pid for pid in members if pid != patient_id]
        if not others:
            return
        open_ = [
            (task_id, a, b)
            for task_id, a, b in sql.open_reviews_touching(others)
            if patient_id not in (a, b) and not (a in members and b in members)
        ]
        if not open_:
            return
        outside = {b if a in members else a for _, a, b in open_}
        found = {pid: MatchRecord.from_json(f) for pid, _, _, f in sql.records(list(outside))}
        for task_id, a, b in open_:
            other = found.get(b if a in members else a)
            if other is not None and group_conflict(group, [other], set()) is not None:
                self.close_review(txn, sql, task_id, "cancelled", "a new identity is never matched across NHS numbers")

    @staticmethod
    def _own_person(sql: Any, patient_id: str, old_person: str | None) -> str:
        """Keep the record's Person if it is alone there; otherwise found a new one."""
        if old_person and all(m[0] == patient_id for m in sql.members([old_person])):
            return old_person
        return new_id()

    # --- matching one record -------------------------------------------------------------------------
    def candidates(self, sql: Any, record: MatchRecord, keys: Sequence[str] | None = None) -> list[Candidate]:
        """The record's candidates, decided."""
        keys = blocking_keys(record) if keys is None else keys
        capped = [(k, key_cap(k) if self.block_cap is None else self.block_cap) for k in keys]
        return [
            Candidate(other, person_id, decide(record, other, self.weights))
            for other, person_id in (
                (MatchRecord.from_json(features), person_id)
                for _, person_id, _, features in sql.candidates(capped, record.patient_id, self.candidate_limit)
            )
        ]

    def plan(
        self, sql: Any, record: MatchRecord, keys: Sequence[str] | None = None, *, with_rules: bool = True
    ) -> Plan:
        """Decide the Person of an arriving record from its candidates, the groups they belong to and the rules
        people have recorded (`with_rules` False: none can name this record yet)."""
        found = self.candidates(sql, record, keys)
        rules = sql.rules_for([record.patient_id]) if with_rules else []
        forced = {b if a == record.patient_id else a for a, b, rule in rules if rule == "link"}
        cannot = {tuple(sorted((a, b))) for a, b, rule in rules if rule == "nolink"}
        cannot_pairs = {(a, b) for a, b in cannot} | {(b, a) for a, b in cannot}
        persons = {  # only a Person the record might join or be reviewed with needs its other records read
            c.person_id
            for c in found
            if c.decision.outcome in (Outcome.LINK, Outcome.REVIEW) or c.record.patient_id in forced
        }
        groups = self._groups(sql, persons, record.patient_id, {c.record.patient_id: c.record for c in found})
        ok = {p for p in persons if group_conflict([r for r, _ in groups[p]], [record], cannot_pairs) is None}
        forced_persons = [c.person_id for c in found if c.record.patient_id in forced and c.person_id in ok]
        linkable = sorted(
            (c for c in found if c.decision.outcome is Outcome.LINK and c.person_id in ok),
            key=lambda c: (c.decision.assurance != "level4", -c.decision.weight),
        )
        if forced_persons:
            target, assurance = forced_persons[0], "level4"
        elif linkable:
            best = linkable[0]
            target = best.person_id
            assurance = stronger(founder_assurance(record), link_assurance(best.decision, self.weights.upper))
        else:
            target, assurance = None, founder_assurance(record)
        reviews = self._reviews(found, target, ok, cannot_pairs, record)
        return Plan(target, assurance, reviews, groups[target] if target else [])

    @staticmethod
    def _groups(
        sql: Any, person_ids: set[str], patient_id: str, known: dict[str, MatchRecord]
    ) -> dict[str, list[tuple[MatchRecord, str]]]:
        """Each Person's records with their assurance, leaving out `patient_id` (the record being matched again);
        `known`: records already decoded."""
        groups: dict[str, list[tuple[MatchRecord, str]]] = defaultdict(list)
        for pid, person_id, assurance, features in sql.members(sorted(person_ids)) if person_ids else ():
            if pid != patient_id:
                groups[person_id].append((known.get(pid) or MatchRecord.from_json(features), assurance))
        return groups

    @staticmethod
    def _reviews(
        found: list[Candidate], target: str | None, ok: set[str], cannot: set[tuple[str, str]], record: MatchRecord
    ) -> list[Candidate]:
        """The best reviewable candidate per other Person: between the thresholds, or a link that a conflict
        (two NHS numbers, a recorded "not the same") refused."""
        best: dict[str, Candidate] = {}
        for c in found:
            if c.person_id == target or (record.patient_id, c.record.patient_id) in cannot:
                continue
            outcome = c.decision.outcome
            reviewable = outcome is Outcome.REVIEW and c.person_id in ok or outcome is Outcome.LINK
            if reviewable and (c.person_id not in best or c.decision.weight > best[c.person_id].decision.weight):
                best[c.person_id] = c
        ranked = sorted(best.values(), key=lambda c: -c.decision.weight)
        return ranked[:MAX_REVIEWS_PER_RECORD]

    # --- writing Persons and review Tasks ------------------------------------------------------------
    def write_person(self, txn: Txn, sql: Any, person_id: str) -> bool:
        """Write the Person from its current members (read from the index); False when it was already up to date."""
        members = [(MatchRecord.from_json(f), a) for _, _, a, f in sql.members([person_id])]
        return self.save_if_changed(txn, "Person", person_id, person_resource(person_id, members)) is not None

    def save_if_changed(
        self, txn: Txn, type: str, id: str, resource: JSON, *, changed: bool = False
    ) -> StoredResource | None:
        """Save a new version unless the current one says the same; `changed`: known to differ, not compared."""
        batch = person_batch.active() if type == "Person" else None
        if batch is not None:
            return self._save_in_batch(txn, batch, id, resource, changed)
        current = txn.current(type, id)
        if not changed and current is not None and current.body is not None:
            old = orjson.loads(current.body)
            old.pop("meta", None)
            if old == resource:
                return None
        version = 1 if current is None else current.version + 1
        return self.repo.save_in(txn, type, id, resource, version, "POST" if current is None else "PUT").stored

    @staticmethod
    def _save_in_batch(
        txn: Txn, batch: person_batch.PersonBatch, id: str, resource: JSON, changed: bool
    ) -> StoredResource | None:
        """`save_if_changed` for a Person while a batch collects them (compared with the batch's latest version)."""
        current = batch.current(txn, id)
        if not changed and current is not None and current[1] is not None and current[1] == resource:
            return None
        version = 1 if current is None else current[0] + 1
        return batch.save(txn, id, resource, version, "POST" if current is None else "PUT")

    def sync_reviews(self, txn: Txn, sql: Any, patient_id: str, wanted: Sequence[Candidate]) -> None:
        """Open a review Task per wanted pair not already open; cancel this record's open ones no longer wanted."""
        want = {frozenset((patient_id, c.record.patient_id)): c for c in wanted}
        for task_id, a, b in sql.open_reviews_touching([patient_id]):
            if want.pop(frozenset((a, b)), None) is None:
                self.close_review(txn, sql, task_id, "cancelled", "no longer a possible match after an update")
        for c in want.values():
            self.open_review(txn, sql, patient_id, c.record.patient_id, c.decision)

    def open_review(self, txn: Txn, sql: Any, patient_id: str, candidate_id: str, decision: PairDecision) -> str:
        task_id = new_id()
        explanation = "; ".join(f"{k}: {v}" for k, v in describe(decision.vector).items())
        grade = match_grade(decision, self.weights) if decision.outcome is Outcome.REVIEW else "probable"
        task = review_task(
            task_id, patient_id, candidate_id, decision.weight, grade, f"{decision.reason}. {explanation}", txn.now
        )
        self.repo.save_in(txn, "Task", task_id, task, 1, "POST")
        sql.add_review(task_id, patient_id, candidate_id, decision.weight, txn.now)
        return task_id

    def close_review(self, txn: Txn, sql: Any, task_id: str, status: str, note: str) -> None:
        current = txn.current("Task", task_id)
        sql.set_review_status(task_id, status)
        if current is None or current.body is None:
            return
        task = closed_task(orjson.loads(current.body), status, note, txn.now)
        self.repo.save_in(txn, "Task", task_id, task, current.version + 1, "PUT")

    # --- reads --------------------------------------------------------------------------------------
    def linked_patients(self, type: str, id: str) -> tuple[str | None, list[str]]:
        """(Person id, its source Patient ids) for a Patient or a Person; an unmatched Patient stands alone."""
        with self.mpi.reading() as sql:
            if type == "Patient":
                row = sql.record(id)
                if row is None:
                    return None, [id]
                person_id = row[1]
            else:
                person_id = id
            members = [m[0] for m in sql.members([person_id])]
        if not members and type == "Person":
            survivor = self._merged_into(person_id)
            if survivor:
                return self.linked_patients("Person", survivor)
        return person_id, members

    def _merged_into(self, person_id: str) -> str | None:
        """The Person a merged (retired) Person points at, so its old id still finds the record."""
        stored = self.repo.store.read("Person", person_id)
        if stored is None or stored.body is None:
            return None
        person = orjson.loads(stored.body)
        if person.get("active") is not False:
            return None
        refs = [link.get("target", {}).get("reference", "") for link in person.get("link", [])]
        return next((r.removeprefix("Person/") for r in refs if r.startswith("Person/")), None)

    def score(self, resource: JSON, limit: int) -> list[Candidate]:
        """Candidates for a Patient resource that is not (necessarily) stored, best first: `$match`."""
        record = extract(resource, str(resource.get("id") or ""))
        with self.mpi.reading() as sql:
            found = self.candidates(sql, record)
        found.sort(key=lambda c: (c.decision.outcome is not Outcome.LINK, -c.decision.weight))
        return found[:limit]
