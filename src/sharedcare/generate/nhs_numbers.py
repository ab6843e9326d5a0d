"""Synthetic NHS numbers: only the 999 test range, always valid under Modulus 11, one per person.

For a fixed 8-digit prefix, the ninth digit d contributes 2d (mod 11) to the weighted sum; 2d takes ten distinct
values, so at most one d makes the check digit 10 (no valid number). Every prefix therefore holds at least nine valid
numbers, which gives a direct index -> number map without searching: slot s uses prefix 99900000 + s // 9 and the
(s % 9)-th valid ninth digit. 100,000 prefixes give 900,000 slots; the last prefix is left out because it would
reach 9999999999 (one digit repeated). A seeded affine permutation spreads people over the slots, so numbers are
not in person order and differ between seeds.
"""

from __future__ import annotations

from random import Random

from sharedcare.fhir.nhs_number import is_valid_nhs_number

_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
FIRST_PREFIX = 99_900_000
CAPACITY = 9 * (100_000 - 1)  # 899,991 people


def check_digit(stem: str) -> int | None:
    """The Modulus 11 check digit for a 9-digit stem, or None when no valid number exists for it."""
    total = sum(int(d) * w for d, w in zip(stem, _WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def _slot_number(slot: int) -> str:
    prefix = str(FIRST_PREFIX + slot // 9)
    wanted = slot % 9
    for d in "0123456789":
        check = check_digit(prefix + d)
        if check is None:
            continue
        if wanted == 0:
            return f"{prefix}{d}{check}"
        wanted -= 1
    raise AssertionError("every prefix holds at least nine valid numbers")


class NhsNumbers:
    """Person index -> synthetic NHS number, a bijection for indices below CAPACITY."""

    def __init__(self, seed: int) -> None:
        rng = Random(f"nhs-numbers:{seed}")
        self._offset = rng.randrange(CAPACITY)
        # A multiplier coprime with CAPACITY makes i -> a*i + b (mod CAPACITY) a permutation.
        while True:
            a = rng.randrange(100_003, CAPACITY)
            if _gcd(a, CAPACITY) == 1:
                self._multiplier = a
                break

    def for_person(self, index: int) -> str:
        if not 0 <= index < CAPACITY:
            raise ValueError(f"the 999 test range holds {CAPACITY:,} NHS numbers; person {index} is beyond it")
        return _slot_number((index * self._multiplier + self._offset) % CAPACITY)


def mistyped(number: str, rng: Random) -> str:
    """A keying error that still passes Modulus 11: one digit of the stem changed and the check digit recomputed.

    This is the dangerous kind of typo (a real-looking number that may belong to someone else); a number failing
    Modulus 11 would be rejected at the door, so sources that send one never reach the record.
    """
    for _ in range(50):
        pos = rng.randrange(3, 9)  # keep the 999 prefix
        digit = str((int(number[pos]) + rng.randrange(1, 10)) % 10)
        stem = number[:pos] + digit + number[pos + 1 : 9]
        check = check_digit(stem)
        if check is not None:
            candidate = f"{stem}{check}"
            if candidate != number and is_valid_nhs_number(candidate):
                return candidate
    return number


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a
