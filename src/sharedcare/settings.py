"""Settings as one table: each entry's name, type, default and help feed the CLI, the environment
(`SHAREDCARE_<NAME>`) and the docs. Read once, at start-up, by the composition root."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Settings:
    db: str = field(
        default="sqlite:///sharedcare.db", metadata={"help": "sqlite:///path.db or postgresql://..."}
    )
    host: str = field(default="127.0.0.1", metadata={"help": "address the HTTP server listens on"})
    port: int = field(default=8080, metadata={"help": "port the HTTP server listens on"})
    workers: int = field(
        default=1, metadata={"help": "HTTP server processes sharing the port (one per core serves most)"}
    )
    max_body_bytes: int = field(
        default=32 * 1024 * 1024, metadata={"help": "largest request body accepted; larger gets 413"}
    )
    max_json_depth: int = field(
        default=64, metadata={"help": "deepest JSON nesting accepted in a request body"}
    )
    default_page_size: int = field(default=50, metadata={"help": "_count when a client does not ask"})
    max_page_size: int = field(default=1000, metadata={"help": "largest _count honoured"})
    validate_writes: bool = field(default=True, metadata={"help": "validate every write against R4"})
    sqlite_synchronous: str = field(
        default="FULL", metadata={"help": "SQLite synchronous pragma: FULL survives power loss"}
    )
    # --- resilience (issue 8): migrations, overload, logs, change feed, Subscriptions, continuity replica ---
    auto_migrate: bool = field(
        default=True, metadata={"help": "apply pending schema migrations at start-up (else /readyz says 503)"}
    )
    max_in_flight: int = field(
        default=8, metadata={"help": "requests processed at once (worker threads); more wait in the queue"}
    )
    max_queue: int = field(
        default=32, metadata={"help": "requests that may wait for a slot; beyond that the answer is 503 at once"}
    )
    queue_timeout_ms: int = field(
        default=1000, metadata={"help": "longest wait for a slot before 503 with Retry-After"}
    )
    retry_after: int = field(default=1, metadata={"help": "seconds suggested by Retry-After when refusing for load"})
    log_level: str = field(default="info", metadata={"help": "debug, info, warning or error"})
    log_format: str = field(default="json", metadata={"help": "json (one object per line on stderr) or text"})
    access_log: bool = field(
        default=True, metadata={"help": "log each request: method, route template, status, time; never ids or queries"}
    )
    feed_token: str = field(
        default="", metadata={"help": "bearer token the change feed requires and a replica sends; set it in production"}
    )
    subscription_endpoints: str = field(
        default="",
        metadata={"help": "comma-separated URL prefixes rest-hook Subscriptions may notify; empty: none (no SSRF)"},
    )
    replica_primary: str = field(
        default="", metadata={"help": "run as a read-only continuity replica of this primary (http://host:port)"}
    )
    replica_wait_ms: int = field(
        default=1000, metadata={"help": "how long a replica's feed request waits on the primary for news"}
    )
    # --- security: authentication, access policy, audit (sharedcare.auth, .access, .audit) ---------------
    auth_required: bool = field(
        default=True,
        metadata={"help": "require OAuth 2.0 bearer tokens on /fhir; false is the development-only open mode"},
    )
    public_url: str = field(
        default="", metadata={"help": "external origin (https://host) for SMART metadata; default: the request's"}
    )
    access_token_seconds: int = field(default=900, metadata={"help": "lifetime of issued access tokens"})
    refresh_token_seconds: int = field(
        default=8 * 3600, metadata={"help": "lifetime of refresh tokens (offline_access/online_access)"}
    )
    relationship_days: int = field(
        default=90, metadata={"help": "an encounter, episode or referral ended this recently still relates"}
    )
    break_glass_minutes: int = field(default=240, metadata={"help": "how long a break-glass grant lasts"})
    self_claim_hours: int = field(default=72, metadata={"help": "how long a self-claimed relationship lasts"})
    rate_limit_per_second: int = field(
        default=50, metadata={"help": "sustained requests per second per client (token bucket); 0 disables"}
    )
    rate_limit_burst: int = field(default=200, metadata={"help": "requests a client may burst above the rate"})
    audit_sync_reads: bool = field(
        default=True, metadata={"help": "answer a read only once its AuditEvent is committed (else batched)"}
    )
    oidc_issuer: str = field(
        default="", metadata={"help": "OpenID Connect provider issuer URL (e.g. NHS CIS2); empty: local logins"}
    )
    oidc_client_id: str = field(default="", metadata={"help": "client id registered with the OIDC provider"})
    oidc_client_secret: str = field(
        default="", metadata={"help": "OIDC client secret, by reference: env:NAME or file:/path"}
    )
    oidc_role_claim: str = field(
        default="", metadata={"help": "id_token claim holding role codes (mapped to sharedcare roles)"}
    )
    oidc_org_claim: str = field(default="", metadata={"help": "id_token claim holding the user's ODS code"})
    # --- patient matching (issue 6): sharedcare.matching -------------------------------------------------
    match_upper: float | None = field(
        default=None, metadata={"help": "match weight (bits) at or above which records link; default from weights"}
    )
    match_lower: float | None = field(
        default=None, metadata={"help": "match weight below which records do not link; between goes to review"}
    )
    match_weights: str = field(
        default="", metadata={"help": "path to a match weights table (JSON); empty: the committed estimate"}
    )
    # --- bulk data (issue 5): sharedcare.bulk ------------------------------------------------------------
    bulk_dir: str = field(
        default="", metadata={"help": "folder for $export files and $import uploads; default: <sqlite file>-bulk"}
    )
    import_workers: int = field(
        default=1, metadata={"help": "processes validating and indexing for a $import job; 0: in the job thread"}
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"SHAREDCARE_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _coerce(f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _coerce(type_name: Any, raw: str) -> Any:
    if type_name in ("int", int):
        return int(raw)
    if type_name in ("bool", bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if type_name in ("float | None", "float", float):
        return float(raw) if raw.strip() else None
    return raw
