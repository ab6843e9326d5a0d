"""Grouping source records into people: constrained clustering over pair decisions.

Links are applied strongest first (human decisions, then verified NHS numbers, then by match weight). Two groups
join only if nothing forbids it: no pair across them is a never-link or a human "not the same person", the joined
group would not hold two different PDS-verified NHS numbers, and a record marked as a new identity is never
grouped with another NHS number. A link refused for a conflict goes to review instead, so a record that matches
two different people is seen by a person rather than guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sharedcare.matching.features import MatchRecord
from sharedcare.matching.rules import Outcome, PairDecision

ASSURANCE_RANK = {"level1": 1, "level2": 2, "level3": 3, "level4": 4}


def founder_assurance(r: MatchRecord) -> str:
    """The assurance of a record that starts a Person: how well its own identity is established."""
    if r.verified:
        return "level4"
    return "level3" if r.nhs else "level2"


def link_assurance(decision: PairDecision, upper: float, margin: float = 10.0) -> str:
    """level4 for rule-based links (verified NHS number), level3 for strong and level2 for near-threshold scores."""
    if decision.assurance == "level4":
        return "level4"
    return "level3" if decision.weight >= upper + margin else "level2"


def group_conflict(a: Sequence[MatchRecord], b: Sequence[MatchRecord], cannot: set[tuple[str, str]]) -> str | None:
    """Why two groups of records must not be one person, or None."""
    verified = {r.nhs for r in (*a, *b) if r.verified}
    if len(verified) > 1:
        return "the records carry different verified NHS numbers"
    for x in a:
        for y in b:
            if (x.patient_id, y.patient_id) in cannot or (y.patient_id, x.patient_id) in cannot:
                return f"Patient/{x.patient_id} and Patient/{y.patient_id} must not be linked"
            if (x.new_identity or y.new_identity) and x.nhs != y.nhs:
                return "a new identity (adoption or gender reassignment) is never linked to another NHS number"
    return None


@dataclass
class Edge:
    i: int
    j: int
    decision: PairDecision


@dataclass
class Clustering:
    labels: list[int]  # cluster label per record (a representative index)
    assurance: list[str]
    review: list[Edge] = field(default_factory=list)  # best review edge per pair of clusters


class _Groups:
    def __init__(self, records: Sequence[MatchRecord]) -> None:
        self.records = records
        self.parent = list(range(len(records)))
        self.members: dict[int, list[int]] = {i: [i] for i in range(len(records))}

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        if len(self.members[a]) < len(self.members[b]):
            a, b = b, a
        self.parent[b] = a
        self.members[a] += self.members.pop(b)

    def recs(self, root: int) -> list[MatchRecord]:
        return [self.records[i] for i in self.members[root]]


def cluster(
    records: Sequence[MatchRecord],
    edges: Iterable[Edge],
    *,
    must_link: Iterable[tuple[int, int]] = (),
    cannot: set[tuple[str, str]] | None = None,
    upper: float = 0.0,
) -> Clustering:
    """Cluster `records` given pair decisions; `cannot` holds patient-id pairs never to be grouped."""
    cannot = set(cannot or ())
    edges = list(edges)
    cannot |= {(records[e.i].patient_id, records[e.j].patient_id) for e in edges if e.decision.outcome is Outcome.NEVER}
    groups = _Groups(records)
    assurance = [founder_assurance(r) for r in records]
    rejected: list[Edge] = []
    for i, j in must_link:
        ri, rj = groups.find(i), groups.find(j)
        if ri != rj and group_conflict(groups.recs(ri), groups.recs(rj), set()) is None:
            groups.union(ri, rj)
        assurance[i] = assurance[j] = "level4"
    links = [e for e in edges if e.decision.outcome is Outcome.LINK]
    links.sort(key=lambda e: (e.decision.assurance != "level4", -e.decision.weight))
    for e in links:
        ri, rj = groups.find(e.i), groups.find(e.j)
        if ri == rj:
            _raise(assurance, e, upper)
            continue
        if group_conflict(groups.recs(ri), groups.recs(rj), cannot) is not None:
            rejected.append(e)
            continue
        groups.union(ri, rj)
        _raise(assurance, e, upper)
    labels = [groups.find(i) for i in range(len(records))]
    reviews = [e for e in edges if e.decision.outcome is Outcome.REVIEW] + rejected
    best = _best_per_cluster_pair(reviews, labels, cannot, records)
    refused = {id(e) for e in rejected}  # a link refused for a conflict is an ambiguity a person should see
    worth = [
        e
        for e in best
        if id(e) in refused or group_conflict(groups.recs(labels[e.i]), groups.recs(labels[e.j]), cannot) is None
    ]
    return Clustering(labels, assurance, worth)


def _raise(assurance: list[str], e: Edge, upper: float) -> None:
    level = link_assurance(e.decision, upper)
    for k in (e.i, e.j):
        if ASSURANCE_RANK[level] > ASSURANCE_RANK[assurance[k]]:
            assurance[k] = level


def _best_per_cluster_pair(
    reviews: list[Edge], labels: list[int], cannot: set[tuple[str, str]], records: Sequence[MatchRecord]
) -> list[Edge]:
    best: dict[tuple[int, int], Edge] = {}
    for e in reviews:
        a, b = labels[e.i], labels[e.j]
        if a == b:
            continue
        if (records[e.i].patient_id, records[e.j].patient_id) in cannot:
            continue
        key = (min(a, b), max(a, b))
        if key not in best or e.decision.weight > best[key].decision.weight:
            best[key] = e
    return list(best.values())
