"""Blocking keys: only records that share at least one key are compared, so matching stays fast.

Several independent keys are used so that a typo in one field (a mistyped date of birth, a changed surname, a
missing NHS number) still leaves another key that brings the true match in: NHS number; date of birth with day
and month in sorted order (catches transpositions); surname sound + first-name sound + birth year (a name alone
is too common to block on); postcode + first initial + birth year (catches a changed surname with a mistyped
birth day); phone number + first initial (a phone is shared by a household, a care home, a switchboard).
"""

from __future__ import annotations

from sharedcare.matching.features import MatchRecord, phonetic


def blocking_keys(r: MatchRecord) -> list[str]:
    keys: list[str] = []
    if r.nhs:
        keys.append(f"n:{r.nhs}")
    if r.dob:
        day, month = sorted((r.dob[6:8], r.dob[4:6]))
        keys.append(f"d:{r.dob[:4]}{day}{month}")
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
