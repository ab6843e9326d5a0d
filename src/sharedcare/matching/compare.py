"""Comparison levels: how well two MatchRecords agree on each field, as small integers.

Level 0 means "no evidence" (a value is missing on one side) and scores nothing; level 1 is the strongest
agreement and the last level is disagreement. The levels, not raw similarities, are what the weights are
estimated for, so the product and the estimation tool must use exactly this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from sharedcare.matching.features import MatchRecord, phonetic, postcode_parts
from sharedcare.matching.nicknames import same_name_family

# field -> names of its levels 1..n (index 0 is level 1)
LEVELS: dict[str, tuple[str, ...]] = {
    "nhs": ("exact", "one digit of nine apart", "different"),
    "given": ("exact", "one typo or middle name", "phonetic, jw>=0.92 or nickname", "jw>=0.80 or initial", "different"),
    "family": ("exact", "phonetic or jw>=0.92", "jw>=0.80", "different"),
    "dob": ("exact", "day/month transposed", "one digit or adjacent swap", "different"),
    "sex": ("same", "different"),
    "address": ("same postcode and line", "same postcode", "same sector", "same district", "different"),
    "phone": ("same phone or email", "different"),
}
FIELDS = tuple(LEVELS)
Vector = tuple[int, ...]


def compare_nhs(a: MatchRecord, b: MatchRecord) -> int:
    """Exact, a mistyped digit (the first nine differ in one place; a system recomputed the check digit), or
    different."""
    if a.nhs is None or b.nhs is None:
        return 0
    if a.nhs == b.nhs:
        return 1
    return 2 if sum(x != y for x, y in zip(a.nhs[:9], b.nhs[:9], strict=True)) == 1 else 3


def _name_level(x: str, y: str) -> int:
    if x == y:
        return 1
    jw = JaroWinkler.similarity(x, y)
    if jw >= 0.92 or (len(x) > 2 and len(y) > 2 and phonetic(x) == phonetic(y)):
        return 2
    if jw >= 0.80:
        return 3
    return 4


def _best(pairs: Iterable[tuple[str, str]], level: Callable[[str, str], int]) -> int:
    best = 0
    for x, y in pairs:
        lv = level(x, y)
        if lv == 1:
            return 1
        if best == 0 or lv < best:
            best = lv
    return best


def _pairs(xs: tuple[str, ...], ys: tuple[str, ...]) -> Iterable[tuple[str, str]]:
    return ((x, y) for x in xs for y in ys)


def compare_given(a: MatchRecord, b: MatchRecord) -> int:
    if not a.given or not b.given:
        return 0
    level = _best(_pairs(a.given, b.given), _given_level)
    if level > 2 and (set(a.given) & set(b.middle) or set(b.given) & set(a.middle)):
        return 2  # first and middle names swapped, or a middle name used as the usual name
    return level


def _given_level(x: str, y: str) -> int:
    """First names get a typo level apart from "sounds alike": twins are often named alike (Jack, Jake; Olivia,
    Olive) but one slip of the keyboard (Etthan, Ethan) in a name of five letters or more is a typo."""
    if x == y:
        return 1
    if len(x) >= 5 and len(y) >= 5 and DamerauLevenshtein.distance(x, y) == 1:
        return 2
    if (len(x) == 1 or len(y) == 1) and x[0] == y[0]:
        return 4  # an initial agrees with a name
    level = _name_level(x, y) + 1
    return 3 if level > 3 and same_name_family(x, y) else level


def compare_family(a: MatchRecord, b: MatchRecord) -> int:
    if not a.family or not b.family:
        return 0
    return _best(_pairs(a.family, b.family), _name_level)


def compare_dob(a: MatchRecord, b: MatchRecord) -> int:
    x, y = a.dob, b.dob
    if x is None or y is None:
        return 0
    if x == y:
        return 1
    if x[:4] == y[:4] and x[4:6] == y[6:8] and x[6:8] == y[4:6]:
        return 2
    if DamerauLevenshtein.distance(x, y) == 1:
        return 3
    return 4


def compare_sex(a: MatchRecord, b: MatchRecord) -> int:
    if a.sex is None or b.sex is None:
        return 0
    return 1 if a.sex == b.sex else 2


def compare_address(a: MatchRecord, b: MatchRecord) -> int:
    if not a.postcodes or not b.postcodes:
        if a.lines and b.lines and set(a.lines) & set(b.lines):
            return 2
        return 0
    if set(a.postcodes) & set(b.postcodes):
        return 1 if _lines_agree(a.lines, b.lines) else 2
    a_parts = [postcode_parts(p) for p in a.postcodes]
    b_parts = [postcode_parts(p) for p in b.postcodes]
    if {s for _, s in a_parts} & {s for _, s in b_parts}:
        return 3
    if {o for o, _ in a_parts} & {o for o, _ in b_parts}:
        return 4
    return 5


def _lines_agree(xs: tuple[str, ...], ys: tuple[str, ...]) -> bool:
    return any(x == y or JaroWinkler.similarity(x, y) >= 0.9 for x in xs for y in ys)


def compare_phone(a: MatchRecord, b: MatchRecord) -> int:
    if (not a.phones or not b.phones) and (not a.emails or not b.emails):
        return 0
    if set(a.phones) & set(b.phones) or set(a.emails) & set(b.emails):
        return 1
    return 2


COMPARATORS: tuple[Callable[[MatchRecord, MatchRecord], int], ...] = (
    compare_nhs,
    compare_given,
    compare_family,
    compare_dob,
    compare_sex,
    compare_address,
    compare_phone,
)


def compare(a: MatchRecord, b: MatchRecord) -> Vector:
    """The comparison vector of two records, one level per field in FIELDS order."""
    return tuple(fn(a, b) for fn in COMPARATORS)


def describe(vector: Vector) -> dict[str, str]:
    """Level names for people reading a match explanation."""
    return {f: ("missing" if lv == 0 else LEVELS[f][lv - 1]) for f, lv in zip(FIELDS, vector, strict=True)}
