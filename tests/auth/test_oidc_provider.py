"""Login through an external OpenID Connect provider (as NHS CIS2 would be), with a fake provider in process."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.testclient import TestClient
from support.security import bearer

from sharedcare.app import Server
from sharedcare.auth.oidc import OidcProvider
from sharedcare.auth.registry import APP_SCOPES, Client, User
from sharedcare.auth.tokens import OAuthError

ISSUER = "https://cis2.fake.example"
REDIRECT = "https://app.example/cb"


class FakeProvider:
    """Discovery, JWKS and a token endpoint that signs id_tokens with the provider's own key."""

    def __init__(self, claims: dict[str, Any]) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "p1"})
        self.claims = claims
        self.nonce = ""
        self.verifier_seen = ""

    def get_json(self, url: str) -> dict[str, Any]:
        if url.endswith("/.well-known/openid-configuration"):
            return {
                "issuer": ISSUER,
                "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token",
                "jwks_uri": f"{ISSUER}/jwks",
            }
        assert url == f"{ISSUER}/jwks"
        return {"keys": [self.key.as_dict(private=False)]}

    def post_form(self, url: str, data: dict[str, str], auth: tuple[str, str] | None) -> dict[str, Any]:
        assert url == f"{ISSUER}/token" and auth == ("sharedcare", "provider-secret")
        self.verifier_seen = data["code_verifier"]
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": "sharedcare",
            "sub": "cis2-555",
            "exp": now + 60,
            "iat": now,
            "nonce": self.nonce,
            **self.claims,
        }
        return {"id_token": jwt.encode({"alg": "RS256", "kid": "p1"}, claims, self.key)}


def _attach(server: Server, fake: FakeProvider, role_claim: str = "") -> OidcProvider:
    assert server.security is not None
    provider = OidcProvider(ISSUER, "sharedcare", "provider-secret", role_claim=role_claim, org_claim="org", http=fake)
    server.security.endpoints.oidc = provider
    server.security.registry.add_client(
        Client("app", "app", "app", "direct-care", APP_SCOPES, redirect_uris=(REDIRECT,))
    )
    return provider


def _login_via_provider(client: TestClient, fake: FakeProvider) -> Any:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    page = client.get(
        "/auth/authorize",
        params={
            "response_type": "code",
            "client_id": "app",
            "redirect_uri": REDIRECT,
            "scope": "user/*.rs",
            "state": "s1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    start = re.search(r'href="(/auth/oidc/start\?[^"]+)"', page.text)
    assert start is not None, "the login page offers the organisation's identity provider"
    to_provider = client.get(unescape(start.group(1)), follow_redirects=False)
    assert to_provider.status_code == 303
    sent = parse_qs(urlsplit(to_provider.headers["location"]).query)
    assert to_provider.headers["location"].startswith(f"{ISSUER}/authorize?")
    assert sent["code_challenge_method"] == ["S256"] and sent["redirect_uri"] == [
        "http://testserver/auth/oidc/callback"
    ]
    fake.nonce = sent["nonce"][0]
    back = client.get(
        "/auth/oidc/callback", params={"code": "provider-code", "state": sent["state"][0]}, follow_redirects=False
    )
    return back, verifier


def test_linked_account_logs_in_through_the_provider(secure_server: Server, secure_client: TestClient) -> None:
    fake = FakeProvider({"name": "Dr Linked"})
    _attach(secure_server, fake)
    assert secure_server.security is not None
    secure_server.security.registry.add_user(
        User("linked", "nurse", "A81001", external_subject=f"{ISSUER}|cis2-555"), None
    )
    back, verifier = _login_via_provider(secure_client, fake)
    assert back.status_code == 303 and back.headers["location"].startswith(REDIRECT)
    assert fake.verifier_seen  # PKCE towards the provider too
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    tokens = secure_client.post(
        "/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": "app",
            "code_verifier": verifier,
        },
    ).json()
    actor = secure_server.security.tokens.actor(tokens["access_token"])
    assert (actor.subject, actor.role, actor.organisation) == ("linked", "nurse", "A81001")


def test_role_from_cis2_claim(secure_server: Server, secure_client: TestClient) -> None:
    fake = FakeProvider({"nhsid_nrbac_roles": [{"role_code": "S8000:G8000:R8000", "org_code": "RX1"}]})
    _attach(secure_server, fake, role_claim="nhsid_nrbac_roles")
    back, verifier = _login_via_provider(secure_client, fake)
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    tokens = secure_client.post(
        "/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": "app",
            "code_verifier": verifier,
        },
    ).json()
    assert secure_server.security is not None
    actor = secure_server.security.tokens.actor(tokens["access_token"])
    assert (actor.role, actor.organisation) == ("clinician", "RX1")
    assert secure_client.get("/fhir/Organization", headers=bearer(tokens["access_token"])).status_code == 200


def test_unlinked_identity_without_role_claim_is_refused(secure_server: Server, secure_client: TestClient) -> None:
    fake = FakeProvider({})
    _attach(secure_server, fake)
    back, _ = _login_via_provider(secure_client, fake)
    assert back.status_code == 403 and "No sharedcare account" in back.text


def test_id_token_checks() -> None:
    fake = FakeProvider({})
    provider = OidcProvider(ISSUER, "sharedcare", "provider-secret", http=fake)
    fake.nonce = "n1"
    good = fake.post_form(f"{ISSUER}/token", {"code_verifier": "v"}, ("sharedcare", "provider-secret"))["id_token"]
    assert provider.verify_id_token(good, "n1")["sub"] == "cis2-555"
    with pytest.raises(OAuthError):
        provider.verify_id_token(good, "other-nonce")
    other = RSAKey.generate_key(2048, parameters={"kid": "p1"})
    forged = jwt.encode(
        {"alg": "RS256", "kid": "p1"},
        {"iss": ISSUER, "aud": "sharedcare", "sub": "x", "exp": int(time.time()) + 60, "nonce": "n1"},
        other,
    )
    with pytest.raises(OAuthError):
        provider.verify_id_token(forged, "n1")
