"""Builds the bulk-data pieces for the composition root: the job runner, its operations and its two routes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.routing import BaseRoute

from sharedcare.api.bulk_routes import bulk_routes
from sharedcare.bulk.export import ExportWriter
from sharedcare.bulk.jobs import BulkJobs
from sharedcare.bulk.loader import ImportOptions, ImportProgress, Loader
from sharedcare.bulk.prepare import PrepareConfig
from sharedcare.bundles import BundleProcessor
from sharedcare.fhir.search_parameters import SearchParameterRegistry
from sharedcare.operations.bulk_data import Handler, bulk_handlers
from sharedcare.service.repository import Repository
from sharedcare.settings import Settings
from sharedcare.store.sqlstore import SqlStore
from sharedcare.types import FhirRequest, FhirResponse


@dataclass
class BulkData:
    jobs: BulkJobs
    operations: dict[str, Handler]
    routes: list[BaseRoute]

    def close(self) -> None:
        self.jobs.close()


def bulk_folder(settings: Settings) -> Path:
    """`bulk_dir`, else next to the SQLite file (`<file>-bulk/`), else `./sharedcare-bulk`."""
    configured = getattr(settings, "bulk_dir", "")
    if configured:
        return Path(configured)
    if settings.db.startswith("sqlite:///") and ":memory:" not in settings.db:
        return Path(settings.db.removeprefix("sqlite:///") + "-bulk")
    return Path("sharedcare-bulk")


def build_bulk(
    settings: Settings,
    store: SqlStore,
    repo: Repository,
    route: Callable[[FhirRequest], FhirResponse],
    registry: SearchParameterRegistry,
    resource_types: frozenset[str],
) -> BulkData:
    patient_types = [t for t in resource_types if registry.compartment_params("Patient", t)]
    writer = ExportWriter(store, resource_types, patient_types)
    bundles = BundleProcessor(repo, route, resource_types)
    # The server answers searches while $import loads: its search indexes stay in place.
    options = ImportOptions(workers=getattr(settings, "import_workers", 0), defer_indexes=False)
    config = PrepareConfig(validate=repo.validate, max_depth=settings.max_json_depth)

    def loader(progress: ImportProgress) -> Loader:
        return Loader(store, repo, bundles, resource_types, options, progress, config)

    token = bool(getattr(settings, "auth_required", False))
    jobs = BulkJobs(store, bulk_folder(settings), writer, loader, requires_access_token=token)
    routes = bulk_routes(jobs, route, max_body_bytes=settings.max_body_bytes, max_json_depth=settings.max_json_depth)
    return BulkData(jobs, bulk_handlers(jobs), routes)
