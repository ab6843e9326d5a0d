"""The OAuth 2.0 / SMART endpoints, mounted beside /fhir.

    GET  /.well-known/smart-configuration (also under /fhir/)   SMART discovery
    GET  /auth/jwks                                              the server's public keys
    GET  /auth/authorize                                         login form (authorization code + PKCE S256)
    POST /auth/authorize                                         local login → redirect with code
    GET  /auth/oidc/start, /auth/oidc/callback                   login through an external OIDC provider
    POST /auth/token                                             client_credentials (private_key_jwt),
                                                                 authorization_code (PKCE), refresh_token
Every issuance and every failed login is audited (AuditEvent type 110114 User Authentication).
"""

from __future__ import annotations

import base64
import html
import time
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from sharedcare.access.actor import Actor, new_request_id
from sharedcare.access.policy import now_instant
from sharedcare.access.scopes import InvalidScope, ScopeSet, narrow
from sharedcare.audit.events import OUTCOME_MINOR, OUTCOME_SUCCESS, AuditRecord
from sharedcare.audit.trail import AuditTrail
from sharedcare.auth.keys import KeyRing
from sharedcare.auth.oidc import OidcProvider
from sharedcare.auth.passwords import check_password
from sharedcare.auth.ratelimit import RateLimiter, retry_after
from sharedcare.auth.registry import Client, Registry, User
from sharedcare.auth.tokens import ASSERTION_TYPE, Issued, OAuthError, TokenService

MAX_FORM = 64 * 1024
REQUEST_SECONDS = 600
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
SMART_CAPABILITIES = [
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "sso-openid-connect",
    "context-standalone-patient",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
    "authorize-post",
]


@dataclass
class AuthEndpoints:
    tokens: TokenService
    registry: Registry
    keys: KeyRing
    trail: AuditTrail
    limiter: RateLimiter
    public_url: str = ""
    oidc: OidcProvider | None = None
    oidc_users: dict[str, User] = field(default_factory=dict)

    def routes(self) -> list[BaseRoute]:
        auth = [
            Route("/jwks", self.jwks, methods=["GET"]),
            Route("/authorize", self.authorize, methods=["GET", "POST"]),
            Route("/oidc/start", self.oidc_start, methods=["GET"]),
            Route("/oidc/callback", self.oidc_callback, methods=["GET"]),
            Route("/token", self.token, methods=["POST"]),
        ]
        return [
            Route("/.well-known/smart-configuration", self.smart_configuration, methods=["GET"]),
            Route("/fhir/.well-known/smart-configuration", self.smart_configuration, methods=["GET"]),
            Mount("/auth", routes=auth),  # one prefix test for every other request
        ]

    # --- discovery ----------------------------------------------------------------------------------------
    def origin(self, request: Request) -> str:
        return self.public_url.rstrip("/") or f"{request.url.scheme}://{request.url.netloc}"

    async def smart_configuration(self, request: Request) -> Response:
        return JSONResponse(smart_configuration(self.origin(request)))

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(self.keys.public_jwks())

    # --- authorization code flow ---------------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        if request.method == "GET":
            params = dict(parse_qsl(request.url.query))
            return await run_in_threadpool(self._authorize_page, request, params)
        form = await _form(request)
        return await run_in_threadpool(self._login, request, form)

    def _authorize_page(self, request: Request, params: dict[str, str]) -> Response:
        try:
            client, redirect_uri = self._check_client_redirect(params)
        except OAuthError as err:
            return _error_page(err.description, 400)
        try:
            self._check_authorize_params(request, params)
        except OAuthError as err:
            return _redirect_error(redirect_uri, err, params.get("state"))
        signed = self._sign_request(params)
        wants_patient = "launch/patient" in params.get("scope", "").split()
        return _login_page(signed, client, redirect_uri, wants_patient, self.oidc is not None)

    def _check_client_redirect(self, params: dict[str, str]) -> tuple[Client, str]:
        client = self.registry.client(params.get("client_id", ""))
        if client is None or not client.active or client.kind != "app":
            raise OAuthError("unauthorized_client", "Unknown client")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            raise OAuthError("invalid_request", "The redirect_uri is not registered for this client")
        return client, redirect_uri

    def _check_authorize_params(self, request: Request, params: dict[str, str]) -> None:
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "Only response_type=code is supported")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            raise OAuthError("invalid_request", "PKCE with code_challenge_method=S256 is required")
        aud = params.get("aud")
        if aud and aud.rstrip("/") != f"{self.origin(request)}/fhir":
            raise OAuthError("invalid_request", "aud must be this server's FHIR base URL")
        try:
            ScopeSet.parse(params.get("scope", ""))
        except InvalidScope as exc:
            raise OAuthError("invalid_scope", str(exc)) from None

    def _sign_request(self, params: dict[str, str]) -> str:
        keep = ("client_id", "redirect_uri", "scope", "state", "code_challenge", "nonce", "aud")
        claims: dict[str, Any] = {k: params[k] for k in keep if k in params}
        claims["exp"] = int(time.time()) + REQUEST_SECONDS
        claims["typ"] = "authorize-request"
        return self.keys.sign(claims)

    def _load_request(self, signed: str) -> dict[str, Any]:
        try:
            _, claims = self.keys.decode(signed)
        except Exception:
            raise OAuthError("invalid_request", "The sign-in form has been tampered with") from None
        if claims.get("typ") != "authorize-request" or claims.get("exp", 0) < time.time():
            raise OAuthError("invalid_request", "The sign-in has expired; start again from the app")
        return claims

    def _login(self, request: Request, form: dict[str, str]) -> Response:
        address = _address(request)
        wait = self.limiter.take(f"login:{address}")
        if wait:
            return _error_page("Too many sign-in attempts; try again shortly", 429, retry_after(wait))
        try:
            params = self._load_request(form.get("request", ""))
            client, redirect_uri = self._check_client_redirect(params)
        except OAuthError as err:
            return _error_page(err.description, 400)
        username = form.get("username", "")
        user = self.registry.user(username)
        ok = check_password(form.get("password", ""), user.password_hash if user else None)
        if not ok or user is None or not user.active:
            self._audit_login(_anonymous(username, client.client_id, address), OUTCOME_MINOR, "Sign-in failed")
            wants_patient = "launch/patient" in str(params.get("scope", "")).split()
            page = _login_page(form.get("request", ""), client, redirect_uri, wants_patient, self.oidc is not None)
            return _with_error(page, "The user name or password is not right")
        return self._grant_code(client, redirect_uri, params, user, form.get("patient") or None, address)

    def _grant_code(
        self,
        client: Client,
        redirect_uri: str,
        params: dict[str, Any],
        user: User,
        patient: str | None,
        address: str,
    ) -> Response:
        requested = ScopeSet.parse(str(params.get("scope", "")))
        scopes = narrow(requested, ScopeSet.parse(client.scopes), frozenset({"user", "patient"}))
        if user.role == "patient":
            patient = user.patient
        elif "launch/patient" not in requested.words:
            patient = None
        code = self.tokens.new_code(
            client.client_id,
            user.username,
            redirect_uri,
            str(params.get("code_challenge")),
            scopes.text(),
            patient,
            params.get("nonce"),
        )
        if user.external_subject and self.registry.user(user.username) is None:
            self.oidc_users[code] = user  # mapped from the provider's claims, not stored: kept until redeemed
        query = {"code": code}
        if params.get("state"):
            query["state"] = str(params["state"])
        self._audit_login(self._user_actor(user, client, address), OUTCOME_SUCCESS, "Signed in; code issued")
        return RedirectResponse(_with_query(redirect_uri, query), status_code=303)

    # --- external OpenID Connect ----------------------------------------------------------------------------
    async def oidc_start(self, request: Request) -> Response:
        if self.oidc is None:
            return _error_page("No identity provider is configured", 404)
        signed = request.query_params.get("request", "")
        try:
            self._load_request(signed)
            url = await run_in_threadpool(self.oidc.start, signed, f"{self.origin(request)}/auth/oidc/callback")
        except OAuthError as err:
            return _error_page(err.description, 400)
        except Exception:
            return _error_page("The identity provider cannot be reached", 502)
        return RedirectResponse(url, status_code=303)

    async def oidc_callback(self, request: Request) -> Response:
        return await run_in_threadpool(self._oidc_callback, request)

    def _oidc_callback(self, request: Request) -> Response:
        if self.oidc is None:
            return _error_page("No identity provider is configured", 404)
        q = request.query_params
        address = _address(request)
        try:
            signed, claims = self.oidc.finish(
                q.get("state", ""), q.get("code", ""), f"{self.origin(request)}/auth/oidc/callback"
            )
            params = self._load_request(signed)
            client, redirect_uri = self._check_client_redirect(params)
            user = self.oidc.user(claims, self.registry)
        except OAuthError as err:
            self._audit_login(_anonymous("oidc", "oidc", address), OUTCOME_MINOR, err.description)
            return _error_page(err.description, 403)
        return self._grant_code(client, redirect_uri, params, user, None, address)

    # --- token endpoint ------------------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        form = await _form(request)
        address = _address(request)
        wait = self.limiter.take(f"token:{address}")
        if wait:
            body = {"error": "slow_down", "error_description": "Too many token requests"}
            return JSONResponse(body, 429, headers={**NO_STORE, "retry-after": retry_after(wait)})
        try:
            issued = await run_in_threadpool(self._token, request, form, address)
        except OAuthError as err:
            headers = dict(NO_STORE)
            if err.status == 401:
                headers["www-authenticate"] = 'Basic realm="sharedcare"'
            claimed = form.get("client_id") or "unknown"
            await run_in_threadpool(
                self._audit_login, _anonymous(claimed, claimed, address), OUTCOME_MINOR, err.description
            )
            return JSONResponse({"error": err.error, "error_description": err.description}, err.status, headers)
        return JSONResponse(issued.response(), headers=NO_STORE)

    def _token(self, request: Request, form: dict[str, str], address: str) -> Issued:
        grant = form.get("grant_type")
        if grant == "client_credentials":
            return self._client_credentials(request, form, address)
        if grant == "authorization_code":
            return self._authorization_code(request, form, address)
        if grant == "refresh_token":
            return self._refresh(request, form, address)
        raise OAuthError(
            "unsupported_grant_type", "grant_type must be client_credentials, authorization_code or refresh_token"
        )

    def _client_credentials(self, request: Request, form: dict[str, str], address: str) -> Issued:
        client = self._authenticate_client(request, form)
        if client.kind != "backend":
            raise OAuthError("unauthorized_client", "Only backend services clients may use client_credentials")
        if client.kind == "backend" and form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_client", "Backend services authenticate with a private_key_jwt assertion", 401)
        scopes = self._scopes(form.get("scope"), client, frozenset({"system"}))
        issued = self.tokens.issue_for_client(client, scopes)
        actor = Actor(
            "system",
            client.client_id,
            client.role,
            client.client_id,
            client.organisation,
            scopes,
            client.purpose,
            address=address,
        )
        self._audit_login(actor, OUTCOME_SUCCESS, "Access token issued (client_credentials)")
        return issued

    def _authorization_code(self, request: Request, form: dict[str, str], address: str) -> Issued:
        client = self._authenticate_client(request, form)
        if client.kind != "app":
            raise OAuthError("unauthorized_client", "This client may not use the authorization code flow")
        code = form.get("code", "")
        username, scope, patient, nonce = self.tokens.redeem_code(
            code, client.client_id, form.get("redirect_uri", ""), form.get("code_verifier", "")
        )
        user = self.oidc_users.pop(code, None) or self.registry.user(username)
        if user is None or not user.active:
            raise OAuthError("invalid_grant", "The account is not active")
        issued = self.tokens.issue_for_user(user, client, ScopeSet.parse(scope), patient, nonce)
        if issued.id_token:
            issued = replace(issued, id_token=self._id_token(request, user, client, nonce))
        self._audit_login(self._user_actor(user, client, address), OUTCOME_SUCCESS, "Access token issued")
        return issued

    def _refresh(self, request: Request, form: dict[str, str], address: str) -> Issued:
        client = self._authenticate_client(request, form)
        username, scope, patient = self.tokens.redeem_refresh(form.get("refresh_token", ""), client.client_id)
        user = self.registry.user(username)
        if user is None or not user.active:
            raise OAuthError("invalid_grant", "The account is not active")
        granted = ScopeSet.parse(scope)
        if form.get("scope"):
            granted = narrow(ScopeSet.parse(form["scope"]), granted, frozenset({"user", "patient"}))
        issued = self.tokens.issue_for_user(user, client, granted, patient)
        self._audit_login(self._user_actor(user, client, address), OUTCOME_SUCCESS, "Access token refreshed")
        return issued

    def _id_token(self, request: Request, user: User, client: Client, nonce: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.origin(request),
            "sub": user.username,
            "aud": client.client_id,
            "iat": now,
            "exp": now + self.tokens.access_seconds,
        }
        for key, value in (("fhirUser", user.fhir_user), ("name", user.name), ("nonce", nonce)):
            if value:
                claims[key] = value
        return self.keys.sign(claims)

    def _authenticate_client(self, request: Request, form: dict[str, str]) -> Client:
        """private_key_jwt, client_secret_basic / _post, or a public client (PKCE protects its code)."""
        audiences = {f"{self.origin(request)}/auth/token", f"{request.url.scheme}://{request.url.netloc}/auth/token"}
        if form.get("client_assertion"):
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                raise OAuthError("invalid_client", "Unsupported client_assertion_type", 401)
            return self.tokens.client_from_assertion(form["client_assertion"], form.get("client_id"), audiences)
        client_id, secret = _basic_auth(request) or (form.get("client_id", ""), form.get("client_secret"))
        client = self.registry.client(client_id)
        if client is None or not client.active:
            raise OAuthError("invalid_client", "Unknown or inactive client", 401)
        if client.secret_hash:
            if not secret or not check_password(secret, client.secret_hash):
                raise OAuthError("invalid_client", "The client secret is not right", 401)
        elif not client.public:
            raise OAuthError("invalid_client", "This client must authenticate with a private_key_jwt assertion", 401)
        return client

    def _scopes(self, requested: str | None, client: Client, contexts: frozenset[str]) -> ScopeSet:
        try:
            wanted = ScopeSet.parse(requested or "")
        except InvalidScope as exc:
            raise OAuthError("invalid_scope", str(exc)) from None
        if not requested:
            raise OAuthError("invalid_scope", "scope is required")
        granted = narrow(wanted, ScopeSet.parse(client.scopes), contexts)
        if not granted.resources:
            raise OAuthError("invalid_scope", "None of the requested scopes may be granted to this client")
        return granted

    # --- audit --------------------------------------------------------------------------------------------
    def _user_actor(self, user: User, client: Client, address: str) -> Actor:
        return Actor(
            "user",
            user.username,
            user.role,
            client.client_id,
            user.organisation,
            purpose=user.purpose,
            patient=user.patient,
            fhir_user=user.fhir_user,
            name=user.name,
            address=address,
        )

    def _audit_login(self, actor: Actor, outcome: str, desc: str) -> None:
        record = AuditRecord(actor, new_request_id(), "login", "E", outcome, now_instant(), outcome_desc=desc)
        self.trail.record(record, wait=False)


def smart_configuration(origin: str) -> dict[str, Any]:
    """The SMART discovery document (https://hl7.org/fhir/smart-app-launch/conformance.html)."""
    return {
        "issuer": origin,
        "jwks_uri": f"{origin}/auth/jwks",
        "authorization_endpoint": f"{origin}/auth/authorize",
        "token_endpoint": f"{origin}/auth/token",
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384", "RS256", "ES256"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "scopes_supported": [
            "openid",
            "fhirUser",
            "launch/patient",
            "offline_access",
            "online_access",
            "patient/*.cruds",
            "user/*.cruds",
            "system/*.cruds",
            "patient/*.rs",
            "user/*.rs",
            "system/*.rs",
        ],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": SMART_CAPABILITIES,
    }


def capability_security(origin: str) -> dict[str, Any]:
    """CapabilityStatement.rest.security: the SMART service and its OAuth URIs (read by SMART clients)."""
    return {
        "cors": False,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth 2.0 with SMART on FHIR v2",
            }
        ],
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [
                    {"url": "authorize", "valueUri": f"{origin}/auth/authorize"},
                    {"url": "token", "valueUri": f"{origin}/auth/token"},
                ],
            }
        ],
    }


# --- helpers ------------------------------------------------------------------------------------------------


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            break
    return dict(parse_qsl(body[:MAX_FORM].decode("utf-8", "replace"), keep_blank_values=True))


def _basic_auth(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    from urllib.parse import unquote

    return unquote(user), unquote(password)


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _anonymous(subject: str, client_id: str, address: str) -> Actor:
    safe = "".join(c for c in subject if c.isalnum() or c in "-_.@:")[:64] or "unknown"
    client = "".join(c for c in client_id if c.isalnum() or c in "-_.@:")[:64] or "unknown"
    return Actor("anonymous", safe, "none", client, address=address)


def _with_query(uri: str, params: dict[str, str]) -> str:
    sep = "&" if urlsplit(uri).query else "?"
    return f"{uri}{sep}{urlencode(params)}"


def _redirect_error(redirect_uri: str, err: OAuthError, state: str | None) -> Response:
    params = {"error": err.error, "error_description": err.description}
    if state:
        params["state"] = state
    return RedirectResponse(_with_query(redirect_uri, params), status_code=303)


PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action {}"
STYLE = (
    "body{font-family:Arial,sans-serif;max-width:28em;margin:3em auto;color:#212b32}"
    "label{display:block;margin-top:1em}input{width:100%;padding:.4em;font-size:1em}"
    "button{margin-top:1.5em;padding:.5em 1.5em;background:#007f3b;color:#fff;border:0;font-size:1em}"
    ".error{color:#d5281b;font-weight:bold}"
)


def _login_page(signed: str, client: Client, redirect_uri: str, wants_patient: bool, oidc: bool) -> HTMLResponse:
    name = html.escape(client.name or client.client_id)
    patient = (
        '<label for="patient">Patient id (optional: the record to open)</label>'
        '<input id="patient" name="patient" autocomplete="off">'
        if wants_patient
        else ""
    )
    external = (
        f'<p><a href="/auth/oidc/start?{urlencode({"request": signed})}">Sign in with your organisation</a></p>'
        if oidc
        else ""
    )
    body = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Sign in - sharedcare</title>"
        f"<style>{STYLE}</style></head><body><h1>Sign in</h1><p><b>{name}</b> is asking to use the shared care "
        f"record for you.</p><!--error--><form method=post action=/auth/authorize>"
        f'<input type=hidden name=request value="{html.escape(signed)}">'
        '<label for="username">User name</label><input id="username" name="username" autocomplete="username">'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password">'
        f"{patient}<button type=submit>Sign in</button></form>{external}</body></html>"
    )
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(redirect_uri))
    headers = {"content-security-policy": PAGE_CSP.format(f"'self' {origin}"), **NO_STORE}
    return HTMLResponse(body, headers=headers)


def _with_error(page: HTMLResponse, message: str) -> HTMLResponse:
    body = bytes(page.body).replace(b"<!--error-->", f'<p class="error">{html.escape(message)}</p>'.encode())
    headers = {k: v for k, v in page.headers.items() if k not in ("content-length", "content-type")}
    return HTMLResponse(body, status_code=401, headers=headers)


def _error_page(message: str, status: int, retry: str | None = None) -> HTMLResponse:
    body = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>sharedcare</title><style>{STYLE}</style>"
        f'</head><body><h1>Sign-in problem</h1><p class="error">{html.escape(message)}</p></body></html>'
    )
    headers = {"content-security-policy": PAGE_CSP.format("'none'"), **NO_STORE}
    if retry:
        headers["retry-after"] = retry
    return HTMLResponse(body, status_code=status, headers=headers)
