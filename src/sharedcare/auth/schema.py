"""The auth tables, created idempotently beside the FHIR schema in the same store."""

from __future__ import annotations

from sharedcare.store.schema import Dialect


def ddl(d: Dialect) -> list[str]:
    return [
        """CREATE TABLE IF NOT EXISTS auth_keys (
            kid TEXT PRIMARY KEY, kind TEXT NOT NULL, material TEXT NOT NULL, created_at TEXT NOT NULL,
            active INTEGER NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS auth_clients (
            client_id TEXT PRIMARY KEY, name TEXT, kind TEXT NOT NULL, organisation TEXT, role TEXT NOT NULL,
            purpose TEXT NOT NULL, scopes TEXT NOT NULL, jwks TEXT, jwks_uri TEXT, redirect_uris TEXT,
            secret_hash TEXT, rate_limit INTEGER, active INTEGER NOT NULL, created_at TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS auth_users (
            username TEXT PRIMARY KEY, password_hash TEXT, name TEXT, role TEXT NOT NULL, organisation TEXT,
            fhir_user TEXT, patient TEXT, external_subject TEXT UNIQUE, active INTEGER NOT NULL,
            created_at TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS auth_jti (
            client_id TEXT NOT NULL, jti TEXT NOT NULL, expires_at BIGINT NOT NULL, PRIMARY KEY (client_id, jti))""",
        """CREATE TABLE IF NOT EXISTS auth_codes (
            code_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, username TEXT NOT NULL, redirect_uri TEXT NOT NULL,
            challenge TEXT NOT NULL, scope TEXT NOT NULL, patient TEXT, nonce TEXT, expires_at BIGINT NOT NULL,
            used INTEGER NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS auth_refresh (
            token_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, username TEXT NOT NULL, scope TEXT NOT NULL,
            patient TEXT, expires_at BIGINT NOT NULL, revoked INTEGER NOT NULL)""",
    ]
