"""Wiring of authentication, access policy and audit into one server (called from the composition root).

    security = build_security(settings, store, repo, types)   # tables, keys, restricted store, write hooks
    boundary = security.bind(router.handle)                    # the authorising, auditing router wrapper
    build_asgi(boundary.handle_http, extra_routes=security.routes, middleware=security.middleware, ...)

In the development open mode (`auth_required = false`) nothing is authenticated: every request acts as the
open-mode administrator, the server logs a loud warning at start-up and every response carries
`X-Sharedcare-Security`. Access control and audit still run, so the open mode behaves like production for an
operator.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from sharedcare.access import tables as access_tables
from sharedcare.access.actor import INTERNAL, current, request_context
from sharedcare.access.grants import active_break_glass
from sharedcare.access.hooks import AccessWriteHook
from sharedcare.access.policy import AccessPolicy, now_instant
from sharedcare.access.redact import Pseudonymiser
from sharedcare.access.restricted import RestrictedStore
from sharedcare.audit import log as audit_log
from sharedcare.audit.journal import Journal, folder_for
from sharedcare.audit.log import AuditLog
from sharedcare.audit.search import AuditSearch
from sharedcare.audit.trail import AuditTrail
from sharedcare.auth import hygiene
from sharedcare.auth import schema as auth_schema
from sharedcare.auth.endpoints import AuthEndpoints, capability_security
from sharedcare.auth.keys import KeyRing
from sharedcare.auth.middleware import SecurityEdge, client_rate_cache
from sharedcare.auth.oidc import OidcProvider, resolve_secret
from sharedcare.auth.ratelimit import RateLimiter
from sharedcare.auth.registry import Registry
from sharedcare.auth.tokens import TokenService
from sharedcare.service.boundary import Boundary, BoundaryConfig
from sharedcare.store.schema import pending_ddl

log = logging.getLogger("sharedcare.security")
BANNER = (
    "\n"
    + "!" * 100
    + "\n!!  sharedcare is running in OPEN DEVELOPMENT MODE (auth_required=false): NO AUTHENTICATION.\n"
    "!!  Every caller is treated as an administrator. Never use this mode with real patient data.\n" + "!" * 100
)


def init_schema(store: Any) -> None:
    """Create the access, audit and auth tables if they do not exist (idempotent, one transaction)."""
    d = store.dialect
    with store.writing() as cur:
        store.lock_key(cur, "security-schema")
        for stmt in pending_ddl(cur, d, [*access_tables.ddl(d), *audit_log.ddl(d), *auth_schema.ddl(d)]):
            cur.execute(stmt)


@dataclass
class Security:
    settings: Any
    store: Any
    keys: KeyRing
    policy: AccessPolicy
    trail: AuditTrail
    audit: AuditLog
    registry: Registry
    tokens: TokenService
    endpoints: AuthEndpoints
    limiter: RateLimiter
    types: frozenset[str]
    boundary: Boundary | None = None
    middleware: list[Middleware] = field(default_factory=list)

    @property
    def routes(self) -> list[BaseRoute]:
        return list(self.endpoints.routes())

    def bind(self, route: Any) -> Boundary:
        """Wrap the router: every request through the returned boundary is authorised and audited."""
        self.boundary = Boundary(
            route,
            store=self.store,
            policy=self.policy,
            trail=self.trail,
            audit_search=AuditSearch(
                self.store,
                self.audit,
                default_count=self.settings.default_page_size,
                max_count=self.settings.max_page_size,
            ),
            pseudonymiser=Pseudonymiser(self.keys.pseudonym_secret),
            config=BoundaryConfig(self.types, self.settings.break_glass_minutes, self.settings.self_claim_hours),
        )
        return self.boundary

    def restriction_for(self, type: str | None, perm: str) -> Any:
        """The current caller's Restriction for search integration (None: unrestricted)."""
        return self.boundary.restriction_for(type, perm) if self.boundary is not None else None

    def capability(self, base: str, statement: bytes) -> bytes:
        """The CapabilityStatement with its SMART security section (when authentication is on)."""
        if not self.settings.auth_required:
            return statement
        doc = orjson.loads(statement)
        origin = self.settings.public_url.rstrip("/") or base.removesuffix("/fhir")
        for rest in doc.get("rest") or []:
            rest["security"] = capability_security(origin)
        return orjson.dumps(doc)

    def close(self) -> None:
        self.trail.close()


def build_security(settings: Any, store: Any, repo: Any, types: frozenset[str]) -> Security:
    hygiene.install()
    init_schema(store)
    keys = KeyRing.load(store)
    policy = AccessPolicy(relationship_days=settings.relationship_days)
    audit = AuditLog(store.dialect, store.lock_key, keys.sign_bytes, keys.check_bytes)
    trail = AuditTrail(
        store,
        audit,
        context=current,
        internal_actor=INTERNAL,
        sync_reads=settings.audit_sync_reads,
        enrich=_break_glass_reason(store),
        journal=_read_journal(store),
    )
    registry = Registry(store)
    tokens = TokenService(
        store,
        keys,
        registry,
        access_seconds=settings.access_token_seconds,
        refresh_seconds=settings.refresh_token_seconds,
    )
    # Each of `workers` processes sees about that share of a client's requests, so each enforces that share.
    share = 1 / max(1, settings.workers)
    limiter = RateLimiter(settings.rate_limit_per_second * share, max(1, round(settings.rate_limit_burst * share)))
    endpoints = AuthEndpoints(tokens, registry, keys, trail, limiter, settings.public_url, _oidc(settings))
    security = Security(settings, store, keys, policy, trail, audit, registry, tokens, endpoints, limiter, types)
    _bind_repository(security, repo)
    security.middleware = [
        Middleware(
            SecurityEdge,
            tokens=tokens if settings.auth_required else None,
            limiter=limiter,
            record=lambda rec: trail.record(rec, wait=False),
            client_rate=client_rate_cache(registry.client, share=share),
            own_bearer_paths=("/fhir/_changes",) if getattr(settings, "feed_token", "") else (),
        )
    ]
    if not settings.auth_required:
        log.warning(BANNER)
    return security


def _bind_repository(security: Security, repo: Any) -> None:
    """The repository reads through the caller's restriction and runs the access and audit write hooks.

    Writes that other write hooks make (e.g. matching's Person and Task) are the server's own: they run as the
    internal actor, under the same request id, so the caller's rights are checked once, on what it asked for.
    """
    restricted = RestrictedStore(repo.store, security.restriction_for)
    repo.store = restricted
    # conditional interactions match only among what the caller may see (no existence leak through them)
    restricted._store.match_restrict = lambda type: restricted.restrict(type, "r")
    hook = AccessWriteHook(security.policy, access_tables.AccessTables(security.store.dialect), current)
    repo.write_hooks[:0] = [hook]
    repo.write_hooks.append(security.trail.write_hook)
    run_hooks, run_hooks_many = repo.run_hooks, repo.run_hooks_many

    def once(run: Any) -> Any:
        def run_once(*args: Any) -> None:
            if _IN_HOOKS.get():
                ctx = current()
                with request_context(INTERNAL, ctx.request_id if ctx else None):
                    run(*args)
                return
            token = _IN_HOOKS.set(True)
            try:
                run(*args)
            finally:
                _IN_HOOKS.reset(token)

        return run_once

    repo.run_hooks, repo.run_hooks_many = once(run_hooks), once(run_hooks_many)


_IN_HOOKS: ContextVar[bool] = ContextVar("sharedcare_in_write_hooks", default=False)


def _break_glass_reason(store: Any) -> Any:
    """Audit of an access made under break glass carries the reason given (purpose of event ETREAT)."""

    def enrich(cur: Any, record: Any) -> None:
        if record.break_glass_reason or record.actor.kind != "user" or not record.patients:
            return
        record.break_glass_reason = active_break_glass(
            cur, store.dialect, record.actor.subject, set(record.patients), now_instant()
        )

    return enrich


def _oidc(settings: Any) -> OidcProvider | None:
    if not settings.oidc_issuer:
        return None
    return OidcProvider(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=resolve_secret(settings.oidc_client_secret),
        role_claim=settings.oidc_role_claim,
        org_claim=settings.oidc_org_claim,
    )


def _read_journal(store: Any) -> Journal | None:
    """SQLite file stores journal their read events beside the database (see sharedcare.audit.journal)."""
    path = getattr(store, "path", None)
    if store.dialect.name != "sqlite" or not path or path == ":memory:":
        return None
    return Journal(folder_for(path))
