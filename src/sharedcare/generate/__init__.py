"""Synthetic regional data: a UK-style region of organisations and people, each organisation publishing its own feed.

Everything is derived from a seed, person by person, so any size can be generated offline in constant memory and
the same seed always gives the same bytes. No real patient data is used anywhere: names, addresses, organisations and
NHS numbers (999 test range) are made up; clinical codes are public SNOMED CT, dm+d and LOINC identifiers.

Entry points: `generate_region(RegionConfig(...))` and the `sharedcare generate` / `sharedcare demo` commands.
"""

from __future__ import annotations

from sharedcare.generate.region import GenerationSummary, RegionConfig, generate_region, iter_region_records

__all__ = ["GenerationSummary", "RegionConfig", "generate_region", "iter_region_records"]
