"""Registered clients and user accounts.

Clients are either `backend` (an organisation's system: SMART Backend Services, client credentials with a
`private_key_jwt` assertion checked against its registered JWKS) or `app` (a SMART app using the authorization
code flow with PKCE; public, or confidential with a secret or a JWKS). A client carries the organisation it acts
for, its role and purpose of use, and the scopes it may be granted. Users are people: local accounts with a
scrypt password, or linked to an external OpenID Connect subject; each has one role and organisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from sharedcare.access.roles import DIRECT_CARE, PEOPLE_ROLES, SECONDARY_USE, SYSTEM_ROLES
from sharedcare.access.scopes import InvalidScope, ScopeSet
from sharedcare.auth.passwords import hash_password

APP_SCOPES = "openid fhirUser profile launch launch/patient offline_access online_access user/*.cruds patient/*.cruds"
BACKEND_SCOPES = "system/*.rs"


@dataclass(frozen=True)
class Client:
    client_id: str
    kind: str  # backend | app
    role: str
    purpose: str
    scopes: str
    organisation: str | None = None
    name: str | None = None
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    redirect_uris: tuple[str, ...] = ()
    secret_hash: str | None = None
    rate_limit: int | None = None
    active: bool = True

    @property
    def public(self) -> bool:
        return self.kind == "app" and not self.secret_hash and not self.jwks and not self.jwks_uri


@dataclass(frozen=True)
class User:
    username: str
    role: str
    organisation: str | None = None
    name: str | None = None
    fhir_user: str | None = None
    patient: str | None = None
    password_hash: str | None = None
    external_subject: str | None = None
    active: bool = True

    @property
    def purpose(self) -> str:
        return SECONDARY_USE if self.role == "analyst" else DIRECT_CARE


class RegistryError(ValueError):
    """A registration that cannot be accepted (unknown role, bad scope, missing key)."""


class Registry:
    def __init__(self, store: Any) -> None:
        self.store = store
        self.d = store.dialect

    # --- clients ------------------------------------------------------------------------------------------
    def add_client(self, client: Client) -> Client:
        _check_client(client)
        cols = (
            "client_id, name, kind, organisation, role, purpose, scopes, jwks, jwks_uri, redirect_uris, "
            "secret_hash, rate_limit, active, created_at"
        )
        values = (
            client.client_id,
            client.name,
            client.kind,
            client.organisation,
            client.role,
            client.purpose,
            client.scopes,
            orjson.dumps(client.jwks).decode() if client.jwks else None,
            client.jwks_uri,
            " ".join(client.redirect_uris) or None,
            client.secret_hash,
            client.rate_limit,
            1 if client.active else 0,
            _now(),
        )
        with self.store.writing() as cur:
            cur.execute(self.d.sql("DELETE FROM auth_clients WHERE client_id = ?"), (client.client_id,))
            cur.execute(self.d.sql(f"INSERT INTO auth_clients ({cols}) VALUES ({', '.join('?' * 14)})"), values)
        return client

    def client(self, client_id: str) -> Client | None:
        with self.store.reading() as cur:
            cur.execute(
                self.d.sql(
                    "SELECT client_id, kind, role, purpose, scopes, organisation, name, jwks, jwks_uri, "
                    "redirect_uris, secret_hash, rate_limit, active FROM auth_clients WHERE client_id = ?"
                ),
                (client_id,),
            )
            row = cur.fetchone()
        if row is None:
            return None
        return Client(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            row[6],
            orjson.loads(row[7]) if row[7] else None,
            row[8],
            tuple((row[9] or "").split()),
            row[10],
            row[11],
            bool(row[12]),
        )

    def clients(self) -> list[str]:
        with self.store.reading() as cur:
            cur.execute("SELECT client_id FROM auth_clients ORDER BY client_id")
            return [r[0] for r in cur.fetchall()]

    # --- users --------------------------------------------------------------------------------------------
    def add_user(self, user: User, password: str | None = None) -> User:
        if user.role not in PEOPLE_ROLES:
            raise RegistryError(f"Unknown role '{user.role}'; choose one of {', '.join(PEOPLE_ROLES)}")
        if user.role == "patient" and not user.patient:
            raise RegistryError("A patient user needs --patient, the id of their Patient resource")
        if user.role != "patient" and user.role != "analyst" and not user.organisation:
            raise RegistryError("A user in a care role needs --org, the ODS code of their organisation")
        hashed = hash_password(password) if password else user.password_hash
        values = (
            user.username,
            hashed,
            user.name,
            user.role,
            user.organisation,
            user.fhir_user or (f"Patient/{user.patient}" if user.patient else None),
            user.patient,
            user.external_subject,
            1 if user.active else 0,
            _now(),
        )
        with self.store.writing() as cur:
            cur.execute(self.d.sql("DELETE FROM auth_users WHERE username = ?"), (user.username,))
            cur.execute(
                self.d.sql(
                    "INSERT INTO auth_users (username, password_hash, name, role, organisation, fhir_user, patient, "
                    "external_subject, active, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                values,
            )
        return user

    def user(self, username: str) -> User | None:
        return self._user("username = ?", username)

    def user_by_subject(self, external_subject: str) -> User | None:
        return self._user("external_subject = ?", external_subject)

    def _user(self, where: str, value: str) -> User | None:
        with self.store.reading() as cur:
            cur.execute(
                self.d.sql(
                    "SELECT username, role, organisation, name, fhir_user, patient, password_hash, external_subject, "
                    f"active FROM auth_users WHERE {where}"
                ),
                (value,),
            )
            row = cur.fetchone()
        if row is None:
            return None
        return User(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], bool(row[8]))

    def users(self) -> list[str]:
        with self.store.reading() as cur:
            cur.execute("SELECT username FROM auth_users ORDER BY username")
            return [r[0] for r in cur.fetchall()]


def _check_client(client: Client) -> None:
    if client.kind not in ("backend", "app"):
        raise RegistryError("A client's kind is 'backend' (SMART Backend Services) or 'app' (authorization code)")
    roles = SYSTEM_ROLES if client.kind == "backend" else ("app",)
    if client.kind == "backend" and client.role not in roles:
        raise RegistryError(f"A backend client's role is one of {', '.join(SYSTEM_ROLES)}")
    if client.kind == "backend" and not (client.jwks or client.jwks_uri):
        raise RegistryError("A backend client needs its public keys: --jwks FILE or --jwks-uri URL")
    if client.kind == "backend" and client.role == "system" and not client.organisation:
        raise RegistryError("An organisation's system needs --org, its ODS code")
    if client.kind == "app" and not client.redirect_uris:
        raise RegistryError("An app needs at least one --redirect-uri")
    if client.purpose not in (DIRECT_CARE, SECONDARY_USE):
        raise RegistryError("purpose is direct-care or secondary-use")
    try:
        ScopeSet.parse(client.scopes)
    except InvalidScope as exc:
        raise RegistryError(str(exc)) from None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
