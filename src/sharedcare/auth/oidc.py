"""People logging in through an external OpenID Connect provider (e.g. NHS CIS2), chosen by configuration.

Settings: `oidc_issuer`, `oidc_client_id`, `oidc_client_secret` (by reference: `env:NAME` or `file:/path`),
and optionally `oidc_role_claim` and `oidc_org_claim`. The provider is discovered from
`{issuer}/.well-known/openid-configuration`; sharedcare sends the user there with the authorization code flow
(state, nonce, PKCE S256), exchanges the code at the provider's token endpoint, and verifies the id_token
(signature against the provider's JWKS, iss, aud, exp, nonce). The person becomes a sharedcare user either by
a registered link (`sharedcare user add --external ISSUER|SUB`) or, when a role claim is configured, from
the claim (CIS2's `nhsid_nrbac_roles` role codes map to roles: R8000 → clinician, R8001 → nurse, ...).
"""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from joserfc import jwt
from joserfc.jwk import KeySet

from sharedcare.auth.registry import Registry, User
from sharedcare.auth.tokens import OAuthError, pkce_challenge

ROLE_CODES = {
    "R8000": "clinician",
    "R8003": "clinician",
    "R8001": "nurse",
    "R8002": "nurse",
    "R0001": "privacy-officer",
    "R5105": "privacy-officer",
    "R8008": "administrator",
    "R8010": "administrator",
    "R6200": "social-care",
    "R0260": "analyst",
}
ID_TOKEN_ALGS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
STATE_SECONDS = 600


class HttpClient(Protocol):
    def get_json(self, url: str) -> dict[str, Any]: ...

    def post_form(self, url: str, data: dict[str, str], auth: tuple[str, str] | None) -> dict[str, Any]: ...


class UrllibClient:
    """The default HTTP client (standard library, short timeouts)."""

    def get_json(self, url: str) -> dict[str, Any]:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - configured https endpoints
            return dict(json.loads(resp.read()))

    def post_form(self, url: str, data: dict[str, str], auth: tuple[str, str] | None) -> dict[str, Any]:
        body = urllib.parse.urlencode(data).encode()
        req = urllib.request.Request(url, data=body, method="POST")
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
        if auth:
            import base64

            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return dict(json.loads(resp.read()))


def resolve_secret(reference: str) -> str:
    """A secret given by reference: `env:NAME`, `file:/path`, or (discouraged) the value itself."""
    if reference.startswith("env:"):
        return os.environ.get(reference[4:], "")
    if reference.startswith("file:"):
        with open(reference[5:], encoding="utf-8") as f:
            return f.read().strip()
    return reference


@dataclass
class _Pending:
    request: str  # the signed SMART authorization request this login continues
    nonce: str
    verifier: str
    expires: float


@dataclass
class OidcProvider:
    issuer: str
    client_id: str
    client_secret: str
    role_claim: str = ""
    org_claim: str = ""
    http: HttpClient = field(default_factory=UrllibClient)
    clock: Callable[[], float] = time.time
    _metadata: dict[str, Any] | None = None
    _pending: dict[str, _Pending] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            self._metadata = self.http.get_json(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
        return self._metadata

    def start(self, smart_request: str, redirect_uri: str) -> str:
        """The provider's authorization URL for a login continuing `smart_request`."""
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        now = self.clock()
        self._pending = {k: v for k, v in self._pending.items() if v.expires > now}
        self._pending[state] = _Pending(smart_request, nonce, verifier, now + STATE_SECONDS)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
        }
        return f"{self.metadata()['authorization_endpoint']}?{urllib.parse.urlencode(params)}"

    def finish(self, state: str, code: str, redirect_uri: str) -> tuple[str, dict[str, Any]]:
        """(the SMART request to continue, verified id_token claims) for the provider's callback."""
        pending = self._pending.pop(state, None)
        if pending is None or pending.expires < self.clock():
            raise OAuthError("access_denied", "The sign-in has expired or was not started here")
        meta = self.metadata()
        tokens = self.http.post_form(
            meta["token_endpoint"],
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": pending.verifier,
            },
            (self.client_id, self.client_secret),
        )
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OAuthError("access_denied", "The identity provider returned no id_token")
        return pending.request, self.verify_id_token(id_token, pending.nonce)

    def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        keys = KeySet.import_key_set(self.http.get_json(self.metadata()["jwks_uri"]))  # type: ignore[arg-type]
        try:
            claims = dict(jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGS).claims)
        except Exception:
            raise OAuthError("access_denied", "The identity provider's id_token does not verify") from None
        aud = claims.get("aud")
        auds = set(aud) if isinstance(aud, list) else {aud}
        now = self.clock()
        if claims.get("iss") != self.issuer or self.client_id not in auds:
            raise OAuthError("access_denied", "The id_token was not issued to sharedcare by this provider")
        if not isinstance(claims.get("exp"), int | float) or claims["exp"] < now - 30:
            raise OAuthError("access_denied", "The id_token has expired")
        if claims.get("nonce") != nonce:
            raise OAuthError("access_denied", "The id_token's nonce does not match the sign-in")
        return claims

    def user(self, claims: dict[str, Any], registry: Registry) -> User:
        """The sharedcare user for verified claims: a linked account, or one mapped from the role claim."""
        subject = f"{self.issuer}|{claims.get('sub')}"
        linked = registry.user_by_subject(subject)
        if linked is not None:
            if not linked.active:
                raise OAuthError("access_denied", "The account is not active")
            return linked
        if not self.role_claim:
            raise OAuthError("access_denied", "No sharedcare account is linked to this identity")
        role, org = _role_and_org(claims.get(self.role_claim), claims.get(self.org_claim) if self.org_claim else None)
        if role is None:
            raise OAuthError("access_denied", "The identity carries no role sharedcare recognises")
        return User(
            username=f"oidc:{claims.get('sub')}",
            role=role,
            organisation=org,
            name=claims.get("name") if isinstance(claims.get("name"), str) else None,
            external_subject=subject,
        )


def _role_and_org(value: Any, org: Any) -> tuple[str | None, str | None]:
    """The first recognised role in a role claim: role names, R-codes, or CIS2 objects with role_code/org_code."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        code, item_org = (item.get("role_code"), item.get("org_code")) if isinstance(item, dict) else (item, None)
        if not isinstance(code, str):
            continue
        for part in reversed(code.split(":")):
            role = ROLE_CODES.get(part) or (part if part in set(ROLE_CODES.values()) else None)
            if role:
                return role, (item_org if isinstance(item_org, str) else None) or (
                    org if isinstance(org, str) else None
                )
    return None, None
