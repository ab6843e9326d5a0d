"""Batch re-link: match every source Patient in the store again, in memory, and write only what changed.

Used after a bulk load, after new weights or thresholds, or to repair drift: records that arrived one by one
were matched against what was there at the time; a re-link sees everything at once. Human decisions (`mpi_rule`)
are honoured. Person ids are kept where a group keeps most of its records, so references to Persons stay valid.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from sharedcare.fhir.resource import new_id
from sharedcare.matching.blocking import blocking_keys, key_cap
from sharedcare.matching.cluster import Clustering, Edge, cluster
from sharedcare.matching.features import MatchRecord, extract
from sharedcare.matching.resources import person_resource
from sharedcare.matching.rules import Outcome, decide
from sharedcare.matching.weights import Weights

if TYPE_CHECKING:
    from sharedcare.matching.service import MatchService


@dataclass
class RelinkReport:
    records: int = 0
    pairs_compared: int = 0
    persons: int = 0
    persons_written: int = 0
    reviews_opened: int = 0
    reviews_cancelled: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def candidate_pairs(records: Sequence[MatchRecord], max_block: int | None = None) -> set[int]:
    """Pairs (encoded i * n + j, i < j) of records that share a blocking key held by at most its cap (`key_cap`,
    or `max_block` for every key)."""
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        for key in blocking_keys(r):
            blocks[key].append(i)
    n = len(records)
    pairs: set[int] = set()
    for key, members in blocks.items():
        if len(members) < 2 or len(members) > (key_cap(key) if max_block is None else max_block):
            continue
        for x, i in enumerate(members):
            for j in members[x + 1 :]:
                pairs.add(i * n + j if i < j else j * n + i)
    return pairs


def score_pairs(records: Sequence[MatchRecord], pairs: set[int], weights: Weights) -> list[Edge]:
    """Every decided pair that is not a plain non-match."""
    n = len(records)
    edges = []
    for code in pairs:
        i, j = divmod(code, n)
        decision = decide(records[i], records[j], weights)
        if decision.outcome is not Outcome.NONE:
            edges.append(Edge(i, j, decision))
    return edges


def link_all(
    records: Sequence[MatchRecord], weights: Weights, rules: Sequence[tuple[str, str, str]] = ()
) -> tuple[Clustering, int]:
    """Cluster records (pure): the whole batch decision. Returns the clustering and the pairs compared."""
    pairs = candidate_pairs(records)
    edges = score_pairs(records, pairs, weights)
    index = {r.patient_id: i for i, r in enumerate(records)}
    must = [(index[a], index[b]) for a, b, rule in rules if rule == "link" and a in index and b in index]
    cannot = {(a, b) for a, b, rule in rules if rule == "nolink"}
    cannot |= {(b, a) for a, b in cannot}
    return cluster(records, edges, must_link=must, cannot=cannot, upper=weights.upper), len(pairs)


def assign_person_ids(labels: Sequence[int], records: Sequence[MatchRecord], old: dict[str, str]) -> list[str]:
    """A Person id per record: each group keeps the old Person id most of its records had, largest groups first."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        groups[label].append(i)
    taken: set[str] = set()
    ids = [""] * len(records)
    for members in sorted(groups.values(), key=len, reverse=True):
        votes = Counter(old[records[i].patient_id] for i in members if records[i].patient_id in old)
        person = next((p for p, _ in votes.most_common() if p not in taken), None) or new_id()
        taken.add(person)
        for i in members:
            ids[i] = person
    return ids


def relink(service: MatchService) -> RelinkReport:
    """Re-match the whole store and write the changes in one transaction."""
    report, clock = RelinkReport(), time.perf_counter()
    mpi, weights = service.mpi, service.weights
    records = [extract(orjson.loads(body), pid) for pid, body in mpi.read_bodies("Patient")]
    with mpi.reading() as sql:
        old = {pid: (person, level) for pid, person, level, _ in sql.all_records()}
        rules = sql.all_rules()
    report.timings["load"] = time.perf_counter() - clock
    result, report.pairs_compared = link_all(records, weights, rules)
    persons = assign_person_ids(result.labels, records, {k: v[0] for k, v in old.items()})
    report.timings["match"] = time.perf_counter() - clock - report.timings["load"]
    report.records, report.persons = len(records), len(set(persons))

    def work(txn: Any) -> None:
        txn.lock("mpi")
        sql = mpi.within(txn)
        rows = [(r.patient_id, persons[i], result.assurance[i], r.to_json().decode()) for i, r in enumerate(records)]
        blocks = [(k, r.patient_id) for r in records for k in blocking_keys(r)]
        sql.replace_all(rows, blocks)
        new = {r.patient_id: (persons[i], result.assurance[i]) for i, r in enumerate(records)}
        members: dict[str, list[tuple[MatchRecord, str]]] = defaultdict(list)
        for i, r in enumerate(records):
            members[persons[i]].append((r, result.assurance[i]))
        existing = {person for person, _ in old.values()}
        for person in _changed_persons(old, new):
            resource = person_resource(person, members.get(person, []))
            if person not in existing:  # a new id: nothing to compare with or version on
                service.repo.save_in(txn, "Person", person, resource, 1, "POST")
                report.persons_written += 1
            elif service.save_if_changed(txn, "Person", person, resource) is not None:
                report.persons_written += 1
        _sync_batch_reviews(service, txn, sql, result, records, persons, report)

    service.repo.store.transact(work, large=True)
    report.timings["write"] = time.perf_counter() - clock - report.timings["load"] - report.timings["match"]
    return report


def _changed_persons(old: dict[str, tuple[str, str]], new: dict[str, tuple[str, str]]) -> list[str]:
    before: dict[str, set[tuple[str, str]]] = defaultdict(set)
    after: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for pid, (person, level) in old.items():
        before[person].add((pid, level))
    for pid, (person, level) in new.items():
        after[person].add((pid, level))
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def _sync_batch_reviews(
    service: MatchService,
    txn: Any,
    sql: Any,
    result: Clustering,
    records: Sequence[MatchRecord],
    persons: Sequence[str],
    report: RelinkReport,
) -> None:
    """Keep one open review per pair of Persons that the batch wants reviewed; cancel the rest."""
    person_of = {r.patient_id: persons[i] for i, r in enumerate(records)}
    wanted: dict[frozenset[str], Edge] = {}
    for e in result.review:
        wanted.setdefault(frozenset((persons[e.i], persons[e.j])), e)
    for task_id, a, b in sql.all_open_reviews():
        key = frozenset((person_of.get(a, a), person_of.get(b, b)))
        if len(key) == 2 and wanted.pop(key, None) is not None:
            continue
        service.close_review(txn, sql, task_id, "cancelled", "no longer a possible match after a re-link")
        report.reviews_cancelled += 1
    for e in wanted.values():
        service.open_review(txn, sql, records[e.i].patient_id, records[e.j].patient_id, e.decision)
        report.reviews_opened += 1
