"""`sharedcare demo`: a small synthetic region, loaded through the server's own write path into a fresh store.

Records stream from the generator straight into transaction Bundles (a few hundred resources each, so SQLite
commits stay few), posted to the same router the HTTP API uses: everything is validated and indexed exactly as a
client's write would be. Nothing is downloaded; the store is a file in a temporary directory unless --db says
otherwise.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sharedcare.app import Server, build
from sharedcare.generate.feeds import OrgRecord
from sharedcare.generate.region import RegionConfig, iter_region_records
from sharedcare.generate.writer import transaction_bundle
from sharedcare.settings import Settings
from sharedcare.types import JSON, FhirRequest

BUNDLE_RESOURCES = 400


@dataclass
class LoadSummary:
    resources: int
    bundles: int
    patient_records: int
    seconds: float
    errors: list[str]


def batched_bundles(records: Iterable[OrgRecord], limit: int = BUNDLE_RESOURCES) -> Iterator[tuple[JSON, int]]:
    """Transaction Bundles of whole records, about `limit` resources each; yields (bundle, patient records)."""
    batch: list[JSON] = []
    patients = 0
    for record in records:
        batch.extend(record.resources)
        patients += record.patient_id is not None
        if len(batch) >= limit:
            yield transaction_bundle(batch), patients
            batch, patients = [], 0
    if batch:
        yield transaction_bundle(batch), patients


def load_records(
    server: Server, records: Iterable[OrgRecord], progress: Callable[[int], None] | None = None
) -> LoadSummary:
    """Post the records as transactions; any failed Bundle is reported, never silently dropped."""
    started = time.perf_counter()
    resources = bundles = patients = 0
    errors: list[str] = []
    for bundle, n_patients in batched_bundles(records):
        response = server.handle(FhirRequest("POST", [], base_url="http://localhost/fhir", parsed=bundle))
        bundles += 1
        if response.status >= 300:
            errors.append(f"bundle {bundles}: HTTP {response.status}: {(response.body or b'')[:300]!r}")
            continue
        resources += len(bundle["entry"])
        patients += n_patients
        if progress:
            progress(resources)
    return LoadSummary(resources, bundles, patients, time.perf_counter() - started, errors)


def demo_database(db: str | None) -> str:
    """The demo's store: a fresh SQLite file in a temporary directory unless a URL is given."""
    if db:
        return db
    folder = Path(tempfile.mkdtemp(prefix="sharedcare-demo-"))
    return f"sqlite:///{folder / 'demo.db'}"


def prepare_demo(patients: int, seed: int, db: str | None, *, echo: Callable[[str], None] = print) -> Server:
    """Generate and load the demo region; returns the running server's composition (not yet serving)."""
    url = demo_database(db)
    overrides: dict[str, object] = {"db": url, "sqlite_synchronous": "OFF" if db is None else None}
    settings = Settings.from_env(**overrides)
    server = build(settings)
    echo(f"sharedcare demo: generating {patients:,} synthetic people (seed {seed}) into {url}")
    summary = load_records(server, iter_region_records(RegionConfig(patients=patients, seed=seed)))
    if summary.errors:
        server.close()
        raise RuntimeError("demo data failed to load:\n" + "\n".join(summary.errors[:5]))
    echo(
        f"  loaded {summary.resources:,} resources ({summary.patient_records:,} patient records from "
        f"GP practices, hospitals, community, mental health and council feeds) in {summary.seconds:.1f}s"
    )
    return server


def operator_token(server: Server, hours: int = 12) -> str:
    """A bearer token for the demo's FHIR API: an administrator system token, as `sharedcare token` prints."""
    from sharedcare.access.scopes import ScopeSet

    text, _ = server.security.tokens.issue(
        kind="system",
        subject="operator:demo",
        role="administrator",
        client_id="sharedcare-demo",
        scopes=ScopeSet.parse("system/*.*"),
        purpose="direct-care",
        organisation=None,
        seconds=hours * 3600,
    )
    return text


def demo_banner(host: str, port: int, token: str | None = None) -> str:
    base = f"http://{host}:{port}/fhir"
    auth = (
        [f"  FHIR API token:  {token}", f"  e.g.  curl -H 'Authorization: Bearer <token>' {base}/Patient?_count=5"]
        if token
        else ["  authentication: open development mode (no credentials)"]
    )
    return "\n".join(
        [
            "",
            f"  FHIR base URL:   {base}",
            f"  Capability:      {base}/metadata",
            f"  Patients:        {base}/Patient?_count=10",
            f"  By NHS number:   {base}/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|<10 digits>",
            f"  Organisations:   {base}/Organization",
            *auth,
            "  All data is synthetic: invented people and places, NHS numbers in the 999 test range.",
            "  Press Ctrl+C to stop.",
            "",
        ]
    )
