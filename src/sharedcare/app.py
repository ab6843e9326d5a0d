"""The composition root: read settings once, build the store, service, router and ASGI app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette

from sharedcare.access.redact import Pseudonymiser
from sharedcare.api.asgi import build_asgi
from sharedcare.auth.wiring import Security, build_security
from sharedcare.bulk.wiring import BulkData, build_bulk
from sharedcare.bundles import BundleProcessor
from sharedcare.capability import OperationInfo, SearchParamInfo, capability_handler, capability_statement
from sharedcare.errors import InvalidRequest
from sharedcare.fhir import structures
from sharedcare.fhir.indexing import Indexer
from sharedcare.fhir.search_parameters import SearchParameterRegistry
from sharedcare.fhir.validation import Validator
from sharedcare.matching.service import MatchService
from sharedcare.matching.weights import load_weights
from sharedcare.operations.bulk_data import BULK_OPERATIONS
from sharedcare.operations.mpi_registry import MPI_OPERATIONS, mpi_handlers
from sharedcare.operations.reindex import reindex_operation
from sharedcare.operations.validate import DEFINITION as VALIDATE_DEFINITION
from sharedcare.operations.validate import validate_operation
from sharedcare.resilience.runtime import Operations, build_operations
from sharedcare.router import Router, RouterConfig
from sharedcare.search.handler import SearchHandler
from sharedcare.service.repository import Repository
from sharedcare.settings import Settings
from sharedcare.store.migrations import migrate
from sharedcare.store.mpi import MpiStore
from sharedcare.store.postgres import PostgresStore
from sharedcare.store.reindex import Reindexer
from sharedcare.store.searchsql import ConditionCompiler
from sharedcare.store.sqlite import SQLiteStore
from sharedcare.store.sqlstore import SqlStore
from sharedcare.types import FhirRequest, FhirResponse
from sharedcare.web import web_for

OPERATIONS = (OperationInfo("validate", VALIDATE_DEFINITION, ("type", "instance")), *MPI_OPERATIONS, *BULK_OPERATIONS)


@dataclass
class Server:
    """Everything one running sharedcare holds; `close()` releases the store."""

    settings: Settings
    store: SqlStore
    repo: Repository
    router: Router
    asgi: Starlette
    ops: Operations | None = None  # metrics, readiness, change feed, replica follower, Subscription dispatcher
    bulk: BulkData | None = None  # $export / $import jobs
    security: Security | None = None  # authentication, access policy, audit trail
    reindexer: Reindexer | None = None  # reindex jobs of posted SearchParameters

    def handle(self, req: FhirRequest) -> FhirResponse:
        """In process (CLI, tests): through the security boundary, as the server itself unless req.actor is set."""
        if self.security is not None and self.security.boundary is not None:
            return self.security.boundary.handle(req)
        return self.router.handle(req)

    def close(self) -> None:
        if self.reindexer is not None:
            self.reindexer.stop()
        if self.security is not None:
            self.security.close()
        if self.bulk is not None:
            self.bulk.close()
        if self.ops is not None:
            self.ops.stop()
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


def build(settings: Settings, *, background: bool = True) -> Server:
    """The whole server. `background=False` (a secondary serving process) leaves out the duties that must run
    once per deployment: reindex jobs, the Subscription dispatcher, a replica's follower."""
    registry = SearchParameterRegistry.load()
    store = open_store(settings.db, registry, settings)
    if settings.auto_migrate:
        migrate(store)
    types = structures.resource_types()
    repo = Repository(store, Validator(), Indexer(registry), validate=settings.validate_writes)
    security = build_security(settings, store, repo, types)
    mpi = MpiStore(store)
    mpi.ensure_schema()
    weights = load_weights(settings.match_weights or None).with_thresholds(settings.match_upper, settings.match_lower)
    matcher = MatchService(repo, mpi, weights)
    repo.write_hooks.append(matcher.hook)
    reindexer = Reindexer(store, registry, repo.indexer)  # custom SearchParameters (issue 3)
    repo.write_hooks.append(reindexer.hook)
    store.conditions.set_not_ready(reindexer.not_ready)
    config = RouterConfig(types, settings.default_page_size, settings.max_page_size)
    published = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def param_infos(rtype: str) -> list[SearchParamInfo]:
        return [SearchParamInfo(p.code, p.type, p.url) for p in registry.params_for(rtype).values()]

    def capability(base: str) -> bytes:
        return security.capability(
            base, capability_statement(types, param_infos, OPERATIONS, base_url=base, published=published)
        )

    defs = structures.definitions()
    route_holder: list[Callable[[FhirRequest], FhirResponse]] = []
    bulk = build_bulk(settings, store, repo, lambda r: route_holder[0](r), registry, types)
    if security.keys is not None:  # an analyst's export is pseudonymised as the API pseudonymises its answers
        bulk.jobs.writer.pseudonymise = Pseudonymiser(security.keys.pseudonym_secret).body
    router = Router(
        repo,
        config,
        capability=capability_handler(capability),
        bundles=BundleProcessor(repo, lambda r: route_holder[0](r), types),
        search=SearchHandler(
            store,
            registry,
            config,
            not_ready=reindexer.not_ready,
            restrict_for=getattr(repo.store, "search_restrict", None),  # the caller's access restriction
        ),
        operations={"$validate": validate_operation(repo), **mpi_handlers(matcher, repo, config), **bulk.operations,
                    "$reindex": reindex_operation(reindexer)},
        summary_elements=defs.summary_elements,
        mandatory_elements=defs.mandatory_elements,
    )
    boundary = security.bind(router.handle)
    route_holder.append(boundary.handle_nested)
    ops = build_operations(settings, store, repo.indexer)
    if not background:
        ops.workers.clear()
    asgi = build_asgi(
        boundary.handle_http,
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
        extra_routes=[*ops.routes(), *bulk.routes, *security.routes, *web_for(security, boundary.handle).routes()],
        middleware=[*ops.middleware(), *security.middleware],
        lifespan=ops.lifespan,
    )
    if background:
        reindexer.start()
    return Server(settings, store, repo, router, asgi, ops, bulk, security, reindexer)
