"""String normalisation shared by indexing and search, so both sides fold text the same way."""

from __future__ import annotations

import unicodedata


def normalize_string(value: str) -> str:
    """Case- and accent-insensitive form used by FHIR string search (http://hl7.org/fhir/R4/search.html#string)."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()
