"""Wiring a bulk loader to a built server: the same store, repository (validation, indexing, write hooks) and
Bundle semantics the API uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sharedcare.bulk.loader import ImportOptions, ImportProgress, Loader
from sharedcare.bulk.prepare import PrepareConfig
from sharedcare.bundles import BundleProcessor
from sharedcare.fhir import structures

if TYPE_CHECKING:
    from sharedcare.app import Server


def loader_for(server: Server, options: ImportOptions, progress: ImportProgress | None = None) -> Loader:
    types = structures.resource_types()
    bundles = BundleProcessor(server.repo, server.handle, types)
    config = PrepareConfig(validate=server.repo.validate, max_depth=server.settings.max_json_depth)
    return Loader(server.store, server.repo, bundles, types, options, progress, config)
