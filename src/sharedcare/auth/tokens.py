"""Access tokens, client assertions, authorization codes and refresh tokens.

Access tokens are JWTs signed with the server key (ES256), short-lived (`access_token_seconds`), and carry
everything the policy needs: subject, kind (user/system), role, organisation (ODS), client, SMART scopes,
purpose of use, patient in context and fhirUser. A verified token is cached until it expires, so a request
pays for the signature check once per token, not once per request.

Client assertions follow SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html):
a JWT signed by the client's registered key with iss = sub = client_id, aud = the token endpoint, exp at most
five minutes ahead and a jti never seen before (replays are refused until the assertion expires).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson
from joserfc import jwt
from joserfc.jwk import KeySet

from sharedcare.access.actor import Actor
from sharedcare.access.scopes import InvalidScope, ScopeSet
from sharedcare.auth.keys import KeyRing
from sharedcare.auth.registry import Client, Registry, User

ISSUER = "sharedcare"
AUDIENCE = "sharedcare-fhir"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384"]
MAX_ASSERTION_SECONDS = 300
LEEWAY = 30
CODE_SECONDS = 120

JwksFetcher = Callable[[str], dict[str, Any]]


class OAuthError(Exception):
    """An OAuth 2.0 error response (RFC 6749 §5.2): `error` code, description, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


class InvalidToken(Exception):
    """A bearer token that is missing, malformed, badly signed, expired or not ours."""


@dataclass(frozen=True)
class Issued:
    access_token: str
    expires_in: int
    scope: str
    patient: str | None = None
    refresh_token: str | None = None
    id_token: str | None = None

    def response(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        for key in ("patient", "refresh_token", "id_token"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


class TokenService:
    def __init__(
        self,
        store: Any,
        keys: KeyRing,
        registry: Registry,
        *,
        access_seconds: int = 900,
        refresh_seconds: int = 8 * 3600,
        fetch_jwks: JwksFetcher | None = None,
        cache_size: int = 10000,
    ) -> None:
        self.store, self.keys, self.registry = store, keys, registry
        self.access_seconds, self.refresh_seconds = access_seconds, refresh_seconds
        self.fetch_jwks = fetch_jwks
        self._cache: OrderedDict[tuple[str, str | None], tuple[Actor, int]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    # --- issuing ------------------------------------------------------------------------------------------
    def issue(
        self,
        *,
        kind: str,
        subject: str,
        role: str,
        client_id: str,
        scopes: ScopeSet,
        purpose: str,
        organisation: str | None = None,
        patient: str | None = None,
        fhir_user: str | None = None,
        name: str | None = None,
        seconds: int | None = None,
    ) -> tuple[str, int]:
        lifetime = seconds or self.access_seconds
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "iat": now,
            "exp": now + lifetime,
            "jti": str(uuid.uuid4()),
            "client_id": client_id,
            "scope": scopes.text(),
            "kind": kind,
            "role": role,
            "purpose_of_use": purpose,
        }
        for key, value in (("org", organisation), ("patient", patient), ("fhirUser", fhir_user), ("name", name)):
            if value:
                claims[key] = value
        return self.keys.sign(claims), lifetime

    def issue_for_client(self, client: Client, scopes: ScopeSet) -> Issued:
        token, lifetime = self.issue(
            kind="system",
            subject=client.client_id,
            role=client.role,
            client_id=client.client_id,
            scopes=scopes,
            purpose=client.purpose,
            organisation=client.organisation,
            name=client.name,
        )
        return Issued(token, lifetime, scopes.text())

    def issue_for_user(
        self, user: User, client: Client, scopes: ScopeSet, patient: str | None, nonce: str | None = None
    ) -> Issued:
        token, lifetime = self.issue(
            kind="user",
            subject=user.username,
            role=user.role,
            client_id=client.client_id,
            scopes=scopes,
            purpose=user.purpose,
            organisation=user.organisation,
            patient=patient,
            fhir_user=user.fhir_user,
            name=user.name,
        )
        refresh = None
        if scopes.words & {"offline_access", "online_access"}:
            refresh = self._store_refresh(client.client_id, user.username, scopes.text(), patient)
        id_token = self._id_token(user, client, nonce) if "openid" in scopes.words else None
        return Issued(token, lifetime, scopes.text(), patient, refresh, id_token)

    def _id_token(self, user: User, client: Client, nonce: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": user.username,
            "aud": client.client_id,
            "iat": now,
            "exp": now + self.access_seconds,
        }
        if user.fhir_user:
            claims["fhirUser"] = user.fhir_user
        if user.name:
            claims["name"] = user.name
        if nonce:
            claims["nonce"] = nonce
        return self.keys.sign(claims)

    # --- verifying bearer tokens ------------------------------------------------------------------------------
    def actor(self, token: str, address: str | None = None) -> Actor:
        """The Actor a bearer token stands for, calling from `address`; InvalidToken when it does not verify."""
        now = int(time.time())
        key = (token, address)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                if hit[1] > now:
                    self._cache.move_to_end(key)
                    return hit[0]
                del self._cache[key]
        actor, exp = self._verify(token, now)
        if address is not None:
            actor = replace(actor, address=address)
        with self._lock:
            self._cache[key] = (actor, exp)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return actor

    def _verify(self, token: str, now: int) -> tuple[Actor, int]:
        try:
            header, claims = self.keys.decode(token)
        except Exception:
            raise InvalidToken("The access token is not valid") from None
        if header.get("typ") not in (None, "JWT") or claims.get("iss") != ISSUER or claims.get("aud") != AUDIENCE:
            raise InvalidToken("The access token was not issued for this server")
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= now:
            raise InvalidToken("The access token has expired")
        try:
            scopes = ScopeSet.parse(str(claims.get("scope", "")))
        except InvalidScope:
            raise InvalidToken("The access token's scopes are malformed") from None
        actor = Actor(
            kind=str(claims.get("kind")),
            subject=str(claims.get("sub")),
            role=str(claims.get("role")),
            client_id=str(claims.get("client_id")),
            organisation=claims.get("org"),
            scopes=scopes,
            purpose=str(claims.get("purpose_of_use", "direct-care")),
            patient=claims.get("patient"),
            fhir_user=claims.get("fhirUser"),
            name=claims.get("name"),
            token_id=claims.get("jti"),
        )
        if actor.kind not in ("user", "system"):
            raise InvalidToken("The access token names no known kind of caller")
        return actor, exp

    # --- client authentication -------------------------------------------------------------------------------
    def client_from_assertion(self, assertion: str, client_id: str | None, audiences: set[str]) -> Client:
        """Verify a private_key_jwt assertion; returns the registered client it proves."""
        try:
            unverified = _unverified_claims(assertion)
        except ValueError:
            raise OAuthError("invalid_client", "The client assertion is not a JWT", 401) from None
        claimed = unverified.get("iss")
        if not isinstance(claimed, str) or (client_id and client_id != claimed):
            raise OAuthError("invalid_client", "The client assertion's issuer is not the client", 401)
        client = self.registry.client(claimed)
        if client is None or not client.active:
            raise OAuthError("invalid_client", "Unknown or inactive client", 401)
        keys = self._client_keys(client)
        try:
            token = jwt.decode(assertion, keys, algorithms=ASSERTION_ALGS)
        except Exception:
            raise OAuthError("invalid_client", "The client assertion's signature does not verify", 401) from None
        self._check_assertion_claims(dict(token.claims), client, audiences)
        return client

    def _client_keys(self, client: Client) -> KeySet:
        jwks = client.jwks
        if jwks is None and client.jwks_uri and self.fetch_jwks is not None:
            try:
                jwks = self.fetch_jwks(client.jwks_uri)
            except Exception:
                raise OAuthError("invalid_client", "The client's JWKS could not be fetched", 401) from None
        if not jwks:
            raise OAuthError("invalid_client", "The client has no registered keys", 401)
        try:
            return KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        except Exception:
            raise OAuthError("invalid_client", "The client's registered JWKS is not usable", 401) from None

    def _check_assertion_claims(self, claims: dict[str, Any], client: Client, audiences: set[str]) -> None:
        now = int(time.time())
        if claims.get("sub") != client.client_id or claims.get("iss") != client.client_id:
            raise OAuthError("invalid_client", "The client assertion's iss and sub must be the client_id", 401)
        aud = claims.get("aud")
        auds = set(aud) if isinstance(aud, list) else {aud}
        if not auds & audiences:
            raise OAuthError("invalid_client", "The client assertion's aud must be the token endpoint URL", 401)
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= now - LEEWAY:
            raise OAuthError("invalid_client", "The client assertion has expired", 401)
        if exp > now + MAX_ASSERTION_SECONDS + LEEWAY:
            raise OAuthError("invalid_client", "The client assertion must expire within five minutes", 401)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise OAuthError("invalid_client", "The client assertion needs a jti", 401)
        if not self._remember_jti(client.client_id, jti, exp):
            raise OAuthError("invalid_client", "The client assertion has been used before (replay)", 401)

    def _remember_jti(self, client_id: str, jti: str, exp: int) -> bool:
        d = self.store.dialect
        with self.store.writing() as cur:
            cur.execute(d.sql("DELETE FROM auth_jti WHERE expires_at < ?"), (int(time.time()) - LEEWAY,))
            cur.execute(
                d.sql("INSERT INTO auth_jti (client_id, jti, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
                (client_id, jti, exp),
            )
            return bool(cur.rowcount == 1)

    # --- authorization codes --------------------------------------------------------------------------------
    def new_code(
        self,
        client_id: str,
        username: str,
        redirect_uri: str,
        challenge: str,
        scope: str,
        patient: str | None,
        nonce: str | None,
    ) -> str:
        code = secrets.token_urlsafe(32)
        d = self.store.dialect
        with self.store.writing() as cur:
            cur.execute(d.sql("DELETE FROM auth_codes WHERE expires_at < ?"), (int(time.time()) - 3600,))
            cur.execute(
                d.sql(
                    "INSERT INTO auth_codes (code_hash, client_id, username, redirect_uri, challenge, scope, patient, "
                    "nonce, expires_at, used) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
                ),
                (
                    _digest(code),
                    client_id,
                    username,
                    redirect_uri,
                    challenge,
                    scope,
                    patient,
                    nonce,
                    int(time.time()) + CODE_SECONDS,
                ),
            )
        return code

    def redeem_code(
        self, code: str, client_id: str, redirect_uri: str, verifier: str
    ) -> tuple[str, str, str | None, str | None]:
        """(username, scope, patient, nonce) for a valid, unused code; single use, bound to client and PKCE."""
        d = self.store.dialect
        with self.store.writing() as cur:
            cur.execute(
                d.sql(
                    "SELECT client_id, username, redirect_uri, challenge, scope, patient, nonce, expires_at, used "
                    "FROM auth_codes WHERE code_hash = ?"
                ),
                (_digest(code),),
            )
            row = cur.fetchone()
            if row is None:
                raise OAuthError("invalid_grant", "The authorization code is not known")
            cur.execute(d.sql("UPDATE auth_codes SET used = 1 WHERE code_hash = ?"), (_digest(code),))
        owner, username, uri, challenge, scope, patient, nonce, expires_at, used = row
        if used:
            raise OAuthError("invalid_grant", "The authorization code has already been used")
        if expires_at < time.time():
            raise OAuthError("invalid_grant", "The authorization code has expired")
        if owner != client_id or uri != redirect_uri:
            raise OAuthError("invalid_grant", "The code was issued to another client or redirect_uri")
        if not verifier or not hmac.compare_digest(pkce_challenge(verifier), challenge):
            raise OAuthError("invalid_grant", "The PKCE code_verifier does not match the code_challenge")
        return username, scope, patient, nonce

    # --- refresh tokens ----------------------------------------------------------------------------------------
    def _store_refresh(self, client_id: str, username: str, scope: str, patient: str | None) -> str:
        token = secrets.token_urlsafe(32)
        d = self.store.dialect
        with self.store.writing() as cur:
            cur.execute(
                d.sql(
                    "INSERT INTO auth_refresh (token_hash, client_id, username, scope, patient, expires_at, revoked) "
                    "VALUES (?, ?, ?, ?, ?, ?, 0)"
                ),
                (_digest(token), client_id, username, scope, patient, int(time.time()) + self.refresh_seconds),
            )
        return token

    def redeem_refresh(self, token: str, client_id: str) -> tuple[str, str, str | None]:
        """(username, scope, patient) of a valid refresh token, which is revoked: the caller gets a new one."""
        d = self.store.dialect
        with self.store.writing() as cur:
            cur.execute(
                d.sql(
                    "SELECT client_id, username, scope, patient, expires_at, revoked FROM auth_refresh "
                    "WHERE token_hash = ?"
                ),
                (_digest(token),),
            )
            row = cur.fetchone()
            if row is not None:
                cur.execute(d.sql("UPDATE auth_refresh SET revoked = 1 WHERE token_hash = ?"), (_digest(token),))
        if row is None or row[5] or row[4] < time.time() or row[0] != client_id:
            raise OAuthError("invalid_grant", "The refresh token is not valid")
        return row[1], row[2], row[3]


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _unverified_claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWT")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    claims = orjson.loads(base64.urlsafe_b64decode(payload))
    if not isinstance(claims, dict):
        raise ValueError("claims are not an object")
    return claims
