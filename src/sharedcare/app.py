"""The composition root: read settings once, build the store, service, router and ASGI app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette

from sharedcare.api.asgi import build_asgi
from sharedcare.bundles import BundleProcessor
from sharedcare.capability import OperationInfo, SearchParamInfo, capability_handler, capability_statement
from sharedcare.errors import InvalidRequest
from sharedcare.fhir import structures
from sharedcare.fhir.indexing import Indexer
from sharedcare.fhir.search_parameters import SearchParameterRegistry
from sharedcare.fhir.validation import Validator
from sharedcare.operations.validate import DEFINITION as VALIDATE_DEFINITION
from sharedcare.operations.validate import validate_operation
from sharedcare.router import Router, RouterConfig
from sharedcare.search.handler import SearchHandler
from sharedcare.service.repository import Repository
from sharedcare.settings import Settings
from sharedcare.store.postgres import PostgresStore
from sharedcare.store.searchsql import ConditionCompiler
from sharedcare.store.sqlite import SQLiteStore
from sharedcare.store.sqlstore import SqlStore
from sharedcare.types import FhirRequest, FhirResponse

OPERATIONS = (OperationInfo("validate", VALIDATE_DEFINITION, ("type", "instance")),)


@dataclass
class Server:
    """Everything one running sharedcare holds; `close()` releases the store."""

    settings: Settings
    store: SqlStore
    repo: Repository
    router: Router
    asgi: Starlette

    def handle(self, req: FhirRequest) -> FhirResponse:
        return self.router.handle(req)

    def close(self) -> None:
        self.store.close()


def open_store(url: str, registry: SearchParameterRegistry, settings: Settings) -> SqlStore:
    conditions = ConditionCompiler(registry)
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://").removeprefix("/") if url.startswith("sqlite:///") else ""
        if not path:
            raise InvalidRequest(f"SQLite URL must look like sqlite:///path/file.db, got {url}")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return SQLiteStore(path, conditions, synchronous=settings.sqlite_synchronous)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url, conditions)
    raise InvalidRequest(f"Unsupported database URL {url!r}: use sqlite:///file.db or postgresql://...")


def build(settings: Settings) -> Server:
    registry = SearchParameterRegistry.load()
    store = open_store(settings.db, registry, settings)
    types = structures.resource_types()
    repo = Repository(store, Validator(), Indexer(registry), validate=settings.validate_writes)
    config = RouterConfig(types, settings.default_page_size, settings.max_page_size)
    published = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def param_infos(rtype: str) -> list[SearchParamInfo]:
        return [SearchParamInfo(p.code, p.type, p.url) for p in registry.params_for(rtype).values()]

    def capability(base: str) -> bytes:
        return capability_statement(types, param_infos, OPERATIONS, base_url=base, published=published)

    defs = structures.definitions()
    route_holder: list[Callable[[FhirRequest], FhirResponse]] = []
    router = Router(
        repo,
        config,
        capability=capability_handler(capability),
        bundles=BundleProcessor(repo, lambda r: route_holder[0](r), types),
        search=SearchHandler(store, registry, config),
        operations={"$validate": validate_operation(repo)},
        summary_elements=defs.summary_elements,
        mandatory_elements=defs.mandatory_elements,
    )
    route_holder.append(router.handle)
    asgi = build_asgi(
        router.handle, max_body_bytes=settings.max_body_bytes, max_json_depth=settings.max_json_depth
    )
    return Server(settings, store, repo, router, asgi)
