"""Deterministic rules around the probabilistic score, and the pair decision they produce.

Order matters and is the safety case: a never-link rule beats any score; the verified-NHS-number rule links
before scoring; only then do the thresholds decide (shared/design/domain-uk.md section 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sharedcare.matching.compare import Vector, compare
from sharedcare.matching.features import MatchRecord
from sharedcare.matching.weights import Weights

NHS, GIVEN, FAMILY, DOB, ADDRESS = 0, 1, 2, 3, 5  # positions in the comparison vector


class Outcome(StrEnum):
    LINK = "link"
    REVIEW = "review"
    NONE = "none"
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class PairDecision:
    outcome: Outcome
    weight: float  # Fellegi-Sunter match weight in bits (for rule decisions, the score the fields give)
    vector: Vector
    reason: str
    assurance: str | None = None  # Person.link.assurance when the outcome links


def never_link_reason(a: MatchRecord, b: MatchRecord) -> str | None:
    """Why two records must never be linked, or None.

    A different PDS-verified NHS number is a different person. A record the source marks as a new identity
    (adoption, gender reassignment) is never matched on demographics to a record with another or no NHS number."""
    if a.verified and b.verified and a.nhs != b.nhs:
        return "different verified NHS numbers"
    if (a.new_identity or b.new_identity) and a.nhs != b.nhs:
        return "new identity (adoption or gender reassignment): no matching across NHS numbers"
    return None


def decide(a: MatchRecord, b: MatchRecord, weights: Weights) -> PairDecision:
    """Link, review, none or never for one pair of source records."""
    vector = compare(a, b)
    weight = weights.score(vector)
    reason = never_link_reason(a, b)
    if reason:
        return PairDecision(Outcome.NEVER, weight, vector, reason)
    if a.verified and b.verified and a.nhs == b.nhs:
        if vector[DOB] in (0, 1, 2, 3):
            return PairDecision(Outcome.LINK, weight, vector, "same verified NHS number and date of birth", "level4")
        return PairDecision(Outcome.REVIEW, weight, vector, "same verified NHS number but dates of birth differ")
    if weight >= weights.upper:
        caution = demographic_caution(vector)
        if caution:
            return PairDecision(Outcome.REVIEW, weight, vector, caution)
        return PairDecision(Outcome.LINK, weight, vector, "match weight above the upper threshold", "level3")
    if weight >= weights.lower:
        return PairDecision(Outcome.REVIEW, weight, vector, "match weight between the thresholds")
    return PairDecision(Outcome.NONE, weight, vector, "match weight below the lower threshold")


def demographic_caution(vector: Vector) -> str | None:
    """Why a pair that scores above the upper threshold must still not link without a person looking, or None.

    The independence assumption over-counts households: members share surname, address and phone together, and
    twins share the birth date too, differing only in first name. So on demographics alone (no NHS number agreement)
    a pair never links when first names disagree, nor when they merely sound alike within one household on the same
    birth date (Jack and Jake), nor when birth dates disagree outright (John Smith and his son John Smith at one
    address). Two valid NHS numbers that differ in more than one digit never link on demographics,
    even unverified; one mistyped digit (with the check digit recomputed) may, when the rest agrees."""
    if vector[NHS] == 1:
        return None
    if vector[NHS] == 3:
        return "the records carry different NHS numbers"
    if vector[GIVEN] in (4, 5):
        return "first names disagree (household members or twins?)"
    if vector[DOB] == 4:
        return "dates of birth disagree (a parent and child of the same name?)"
    if vector[GIVEN] == 3 and vector[DOB] == 1 and vector[FAMILY] == 1 and vector[ADDRESS] in (1, 2):
        return "first names only alike within one household on one birth date (twins?)"
    return None


def match_grade(decision: PairDecision, weights: Weights) -> str:
    """The FHIR match-grade code (http://hl7.org/fhir/StructureDefinition/match-grade) for a decision."""
    if decision.outcome is Outcome.LINK:
        return "certain"
    if decision.outcome is Outcome.REVIEW:
        middle = (weights.upper + weights.lower) / 2
        return "probable" if decision.weight >= middle else "possible"
    return "certainly-not"
