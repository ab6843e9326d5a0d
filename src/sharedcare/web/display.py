"""How the record reads to a person: NHS numbers in 3-3-4, dates in the NHS.UK style, names, addresses, codes.

Pure functions over FHIR JSON (no I/O), used as Jinja filters and by the record view model. The NHS.UK content
style writes dates as "4 January 2002" and times on the 24-hour clock; domain-uk.md §1 shows NHS numbers as
`943 476 5919`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
GENDERS = {"male": "Male", "female": "Female", "other": "Other", "unknown": "Not known"}


def nhs_number(value: str | None) -> str:
    """`9434765919` → `943 476 5919`; anything that is not ten digits is shown as given."""
    digits = (value or "").replace(" ", "")
    if len(digits) != 10 or not digits.isdigit():
        return value or ""
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


def nhs_number_of(patient: dict[str, Any]) -> str | None:
    for ident in patient.get("identifier") or []:
        if ident.get("system") == NHS_NUMBER_SYSTEM and ident.get("value"):
            return str(ident["value"])
    return None


def parse_moment(value: str | None) -> datetime | date | None:
    """A FHIR date, dateTime or instant; a partial date (YYYY, YYYY-MM) becomes its first day."""
    if not value or not isinstance(value, str):
        return None
    try:
        if len(value) == 4:
            return date(int(value), 1, 1)
        if len(value) == 7:
            return date(int(value[:4]), int(value[5:7]), 1)
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def long_date(value: str | None) -> str:
    """`2002-01-04` → `4 January 2002`; partial dates keep their precision (`January 2002`, `2002`)."""
    if not value:
        return ""
    moment = parse_moment(value)
    if moment is None:
        return value
    if len(value) == 4:
        return value
    if len(value) == 7:
        return f"{MONTHS[moment.month - 1]} {moment.year}"
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"


def short_date(value: str | None) -> str:
    """`2024-05-08` → `8 May 2024` with a three-letter month, for dense tables and chart axes."""
    text = long_date(value)
    parts = text.split(" ")
    if len(parts) == 3:
        return f"{parts[0]} {parts[1][:3]} {parts[2]}"
    return text


def date_time(value: str | None) -> str:
    """`2024-05-08T17:45:00+00:00` → `8 May 2024 at 17:45` (UK local time is not guessed: shown as sent)."""
    moment = parse_moment(value)
    if not isinstance(moment, datetime):
        return long_date(value)
    return f"{long_date(value[:10] if value else None)} at {moment:%H:%M}"


def sort_key(value: str | None) -> str:
    """A text key that sorts FHIR dates and dateTimes chronologically (UTC), unknown dates first."""
    moment = parse_moment(value)
    if moment is None:
        return ""
    if isinstance(moment, datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return moment.isoformat()
    return datetime(moment.year, moment.month, moment.day).isoformat()


def age(birth: str | None, today: date | None = None) -> str:
    """Age in the form clinicians use: years from 2, months under 2, weeks under 2 months."""
    born = parse_moment(birth)
    if born is None:
        return ""
    born_day = born.date() if isinstance(born, datetime) else born
    now = today or date.today()
    months = (now.year - born_day.year) * 12 + now.month - born_day.month - (now.day < born_day.day)
    if months >= 24:
        return f"{months // 12} years"
    if months >= 2:
        return f"{months} months"
    weeks = max(0, (now - born_day).days // 7)
    return f"{weeks} week{'s' if weeks != 1 else ''}"


def human_name(resource: dict[str, Any] | None) -> str:
    """`Mr Kwame Abdi IBRAHIM` style is for wristbands; the banner uses `Kwame Abdi Ibrahim` (prefix separate)."""
    names = (resource or {}).get("name") or []
    if isinstance(names, str):
        return names
    chosen = next((n for n in names if n.get("use") in ("official", "usual")), names[0] if names else None)
    if not chosen:
        return ""
    if chosen.get("text"):
        return str(chosen["text"])
    return " ".join([*chosen.get("given", []), chosen.get("family", "")]).strip()


def banner_name(resource: dict[str, Any] | None) -> str:
    """The patient banner's `IBRAHIM, Kwame Abdi (Mr)`: family name first and in capitals (PRSB/NHS banner)."""
    names = (resource or {}).get("name") or []
    chosen = next((n for n in names if n.get("use") in ("official", "usual")), names[0] if names else None)
    if not chosen:
        return "Name not known"
    family = str(chosen.get("family") or "").upper()
    given = " ".join(chosen.get("given") or [])
    prefix = " ".join(chosen.get("prefix") or [])
    text = ", ".join(p for p in (family, given) if p)
    return f"{text} ({prefix})" if prefix else text


def address(resource: dict[str, Any] | None) -> str:
    """The home address on one line: `50 Mill Close, Millbridge, SC1 0RF`."""
    addresses = (resource or {}).get("address") or []
    chosen = next((a for a in addresses if a.get("use") == "home"), addresses[0] if addresses else None)
    if not chosen:
        return ""
    if chosen.get("text"):
        return str(chosen["text"])
    parts = [*chosen.get("line", []), chosen.get("city"), chosen.get("district"), chosen.get("postalCode")]
    return ", ".join(str(p) for p in parts if p)


def gender(value: str | None) -> str:
    return GENDERS.get(value or "", "Not known")


def concept(value: dict[str, Any] | list[Any] | None) -> str:
    """The words of a CodeableConcept (text, else the first display, else the code)."""
    if isinstance(value, list):
        return ", ".join(t for t in (concept(v) for v in value) if t)
    if not isinstance(value, dict):
        return ""
    if value.get("text"):
        return str(value["text"])
    for coding in value.get("coding") or []:
        if coding.get("display"):
            return str(coding["display"])
    for coding in value.get("coding") or []:
        if coding.get("code"):
            return str(coding["code"])
    return ""


def codes(value: dict[str, Any] | None) -> set[str]:
    """Every `code` of a CodeableConcept, for matching series (system-independent: SNOMED and LOINC differ)."""
    return {str(c.get("code")) for c in (value or {}).get("coding") or [] if c.get("code")}


def quantity(value: dict[str, Any] | None) -> str:
    if not isinstance(value, dict) or value.get("value") is None:
        return ""
    number = value["value"]
    text = f"{number:g}" if isinstance(number, float) else str(number)
    unit = value.get("unit") or value.get("code") or ""
    return f"{text} {unit}".strip()


def reference_display(ref: dict[str, Any] | None) -> str:
    if not isinstance(ref, dict):
        return ""
    return str(ref.get("display") or ref.get("reference") or "")
