"""Estimating Fellegi-Sunter m and u probabilities from unlabelled records (used offline by the estimation tool).

u (agreement by chance) is counted directly on random pairs, which are almost all different people. m is then
estimated by expectation-maximisation with u held fixed, once per blocking rule, as Splink does: the pairs a rule
proposes all agree on the rule's own fields by construction, so those fields are left out of that session (masked)
and their m comes from a session blocked on something else. Without the masking EM takes every blocked pair for a
match (the non-matches sharing a date of birth do not look like random pairs).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence

from sharedcare.matching.compare import FIELDS, LEVELS, Vector, compare
from sharedcare.matching.features import MatchRecord

Table = list[list[float]]  # field -> level (index 0 = level 1) -> probability


def level_distribution(vectors: Iterable[Vector], smoothing: float = 0.5) -> Table:
    """Per-field level frequencies over vectors, ignoring level 0 (missing), with additive smoothing."""
    counts = [[smoothing] * len(LEVELS[f]) for f in FIELDS]
    for vector in vectors:
        for f, level in enumerate(vector):
            if level:
                counts[f][level - 1] += 1
    return [[c / sum(row) for c in row] for row in counts]


def estimate_u(records: Sequence[MatchRecord], pairs: int, seed: int = 1) -> Table:
    """u from `pairs` random record pairs."""
    rng = random.Random(seed)
    n = len(records)

    def sample() -> Iterable[Vector]:
        for _ in range(pairs):
            i, j = rng.randrange(n), rng.randrange(n)
            if i != j:
                yield compare(records[i], records[j])

    return level_distribution(sample())


def _log_likelihood(vector: Vector, table: Table) -> float:
    return sum(math.log(table[f][lv - 1]) for f, lv in enumerate(vector) if lv)


def estimate_m(
    vectors: Counter[Vector], u: Table, *, prior: float = 0.3, iterations: int = 40, tolerance: float = 1e-6
) -> tuple[Table, float]:
    """EM for m and the match prior over blocked pairs (`vectors` counts each distinct comparison vector)."""
    m = _initial_m()
    for _ in range(iterations):
        expected = [[0.5] * len(LEVELS[f]) for f in FIELDS]
        total_match, total = 0.0, 0.0
        for vector, count in vectors.items():
            lm = math.log(prior) + _log_likelihood(vector, m)
            lu = math.log(1 - prior) + _log_likelihood(vector, u)
            g = 1.0 / (1.0 + math.exp(max(min(lu - lm, 700), -700)))
            total_match += g * count
            total += count
            for f, lv in enumerate(vector):
                if lv:
                    expected[f][lv - 1] += g * count
        new_m = [[c / sum(row) for c in row] for row in expected]
        new_prior = min(max(total_match / total, 1e-6), 1 - 1e-6)
        change = max(abs(a - b) for ra, rb in zip(m, new_m, strict=True) for a, b in zip(ra, rb, strict=True))
        m, prior = new_m, new_prior
        if change < tolerance:
            break
    return m, prior


def _initial_m() -> Table:
    """A neutral start: matches mostly agree (first level), a little mass on every other level."""
    table = []
    for f in FIELDS:
        k = len(LEVELS[f])
        table.append([0.9] + [0.1 / (k - 1)] * (k - 1))
    return table


def masked(vector: Vector, fields: frozenset[str]) -> Vector:
    """The vector with the named fields set to 0 (no evidence)."""
    return tuple(0 if f in fields else lv for f, lv in zip(FIELDS, vector, strict=True))


def estimate_prior(vectors: Counter[Vector], m: Table, u: Table, iterations: int = 50) -> float:
    """The match prior over pairs with m and u both fixed."""
    prior = 0.1
    for _ in range(iterations):
        total_match = total = 0.0
        for vector, count in vectors.items():
            lm = math.log(prior) + _log_likelihood(vector, m)
            lu = math.log(1 - prior) + _log_likelihood(vector, u)
            total_match += count / (1.0 + math.exp(max(min(lu - lm, 700), -700)))
            total += count
        prior = min(max(total_match / total, 1e-6), 1 - 1e-6)
    return prior


def combine_sessions(sessions: list[tuple[frozenset[str], Table]]) -> Table:
    """Each field's m averaged over the sessions that did not mask it."""
    out = []
    for k, f in enumerate(FIELDS):
        rows = [m[k] for mask, m in sessions if f not in mask]
        if not rows:
            raise ValueError(f"every EM session masked {f}: add a blocking rule that does not use it")
        out.append([sum(r[lv] for r in rows) / len(rows) for lv in range(len(LEVELS[f]))])
    return out


NHS = FIELDS.index("nhs")
DEMOGRAPHIC_CERTAINTY = {"given": 1, "family": 1, "dob": 1, "sex": 1}


def m_from_nhs_labels(vectors: Iterable[Vector], smoothing: float = 0.5) -> Table:
    """m from pairs whose valid NHS numbers agree (they are the same person), as Splink's
    `estimate_m_from_label_column` does; the NHS field's own m comes from `nhs_disagreement`."""
    return level_distribution((v for v in vectors if v[NHS] == 1), smoothing)


def nhs_levels(vectors: Iterable[Vector]) -> list[float]:
    """m for the NHS number field: how its levels fall on pairs the demographics make near-certain matches (first
    name, surname, date of birth and sex all exact, same postcode), i.e. how often one side's number is mistyped
    or wrong. Smoothed, so a level never seen still gets a small probability."""
    positions = {FIELDS.index(f): lv for f, lv in DEMOGRAPHIC_CERTAINTY.items()}
    address = FIELDS.index("address")
    counts = [0.5] * len(LEVELS["nhs"])
    for v in vectors:
        if v[NHS] and all(v[k] == lv for k, lv in positions.items()) and v[address] in (1, 2):
            counts[v[NHS] - 1] += 1
    return [c / sum(counts) for c in counts]
