"""Generate a region: organisations first, then person by person, each person's records written at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sharedcare.generate.clinical import draw_health
from sharedcare.generate.errors import ErrorRates
from sharedcare.generate.feeds import FeedContext, OrgRecord, organisation_record, person_records
from sharedcare.generate.identity import draw_new_identity
from sharedcare.generate.nhs_numbers import CAPACITY, NhsNumbers
from sharedcare.generate.organisations import build_region, organization_resource, practitioner_resource
from sharedcare.generate.patients import LocalIds
from sharedcare.generate.population import make_person, person_rng
from sharedcare.generate.writer import RegionWriter, prepare_output

GENERATOR_VERSION = "1"
DEFAULT_AS_OF = date(2025, 3, 31)  # end of a QOF year; fixed so output never depends on the clock


@dataclass(frozen=True)
class RegionConfig:
    patients: int = 1000
    seed: int = 1
    out: Path | None = None
    as_of: date = DEFAULT_AS_OF
    ndjson: bool = True
    bundles: bool = True
    buffer_bytes: int = 8 << 20
    missing_nhs: float | None = None  # every source sends at least this share without an NHS number (errors.py)
    typos: float = 0.0  # share of records with one extra keying error (errors.py)

    def __post_init__(self) -> None:
        if not 1 <= self.patients <= CAPACITY:
            raise ValueError(f"patients must be between 1 and {CAPACITY:,} (the NHS number 999 test range)")
        self.errors  # noqa: B018 -- validates the rates

    @property
    def errors(self) -> ErrorRates:
        return ErrorRates(self.missing_nhs, self.typos)


@dataclass
class GenerationSummary:
    patients: int
    patient_records: int
    resources: int
    organisations: int
    seconds: float
    out: Path | None
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.resources / self.seconds if self.seconds else 0.0


def iter_region_records(config: RegionConfig) -> Iterator[OrgRecord]:
    """Every organisation's records: each organisation's own details first, then people in order."""
    region = build_region(config.seed, config.patients)
    for org in region.organisations():
        resources = [organization_resource(org, region.icb)]
        resources += [practitioner_resource(p, org) for p in org.practitioners]
        yield organisation_record(org, resources)
    numbers = NhsNumbers(config.seed)
    ctx = FeedContext(region, config.seed, LocalIds(config.seed), config.errors)
    for index in range(config.patients):
        person = make_person(region, numbers, config.seed, index, config.as_of)
        health = draw_health(person, person_rng(config.seed, index, "health"))
        change = draw_new_identity(person, numbers, config.seed, config.patients)
        if change is not None and (person.death_date is None or change.on < person.death_date):
            person.new_identity = change
        yield from person_records(ctx, person, health)


def generate_region(config: RegionConfig) -> GenerationSummary:
    """Write the region to `config.out` (see `writer.py` for the layout)."""
    if config.out is None:
        raise ValueError("generate_region needs an output directory")
    started = time.perf_counter()
    prepare_output(config.out)
    writer = RegionWriter(config.out, ndjson=config.ndjson, bundles=config.bundles, buffer_bytes=config.buffer_bytes)
    organisations = 0
    for record in iter_region_records(config):
        organisations += record.patient_id is None
        writer.write(record)
    manifest = {
        "generator": f"sharedcare.generate {GENERATOR_VERSION}",
        "seed": config.seed,
        "patients": config.patients,
        "as_of": config.as_of.isoformat(),
        "organisations": organisations,
        **({"errors": config.errors.as_dict()} if config.errors.active else {}),
        "synthetic": "No real patient data: names, addresses and organisations are invented; NHS numbers are in "
        "the 999 test range.",
    }
    writer.close(manifest)
    return GenerationSummary(
        config.patients,
        writer.patients,
        writer.resources,
        organisations,
        time.perf_counter() - started,
        config.out,
        writer.counts,
    )
