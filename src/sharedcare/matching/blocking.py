"""Blocking keys: only records that share at least one key are compared, so matching stays fast.

Several independent keys are used so that a typo in one field (a mistyped date of birth, a changed surname, a
missing NHS number) still leaves another key that brings the true match in: NHS number; date of birth with day
and month in sorted order (catches transpositions) and sex (a record without one takes both: the sex halves the
chance agreements, which are nearly half of all candidate pairs); surname sound + first-name sound + birth year (a
name alone is too common to block on); postcode + first initial + birth year (catches a changed surname with a
mistyped birth day); phone number + first initial (a phone is shared by a household, a care home, a switchboard).
Changing the keys needs `sharedcare mpi relink` on an existing store, so stored records carry the new ones.

A key held by more records than its cap is too common to pair on (a care home's postcode and phone, a practice
number keyed onto many records, a placeholder NHS number): it stops being used to find candidates, both when one
record arrives and in a batch re-link, so one over-common value cannot make matching slow; the record's other keys
still bring its true matches in. Keys that only a household shares by nature (NHS number, postcode, phone) are
capped at CONTACT_CAP; date of birth and name sound are shared by chance, more often the larger the region, and get
WIDE_CAP. In a 50,000-person region the largest natural blocks are 55 records (a date of birth) and 21 (a phone).
"""

from __future__ import annotations

from sharedcare.matching.features import MatchRecord, phonetic

CONTACT_CAP = 30  # NHS number, postcode + initial + year, phone + initial: beyond this, an institution or a default
WIDE_CAP = 100  # date of birth, name sound + year: chance agreement, which grows with the region


def key_cap(key: str) -> int:
    """The most records that may hold a blocking key for it still to be used."""
    return WIDE_CAP if key[0] in "ds" else CONTACT_CAP


def blocking_keys(r: MatchRecord) -> list[str]:
    keys: list[str] = []
    if r.nhs:
        keys.append(f"n:{r.nhs}")
    if r.dob:
        day, month = sorted((r.dob[6:8], r.dob[4:6]))
        for sex in (r.sex,) if r.sex in ("m", "f") else ("m", "f"):
            keys.append(f"d:{r.dob[:4]}{day}{month}|{sex}")
    year = r.dob[:4] if r.dob else ""
    for given in r.given[:2]:
        for family in r.family[:3]:
            keys.append(f"s:{phonetic(family)}|{phonetic(given)}|{year}")
        initial = given[0]
        for pc in r.postcodes[:2]:
            keys.append(f"p:{pc}|{initial}|{year}")
        for phone in r.phones[:2]:
            keys.append(f"t:{phone}|{initial}")
    return list(dict.fromkeys(keys))
