"""The web application: Starlette routes at `/`, each page a client of the service through `Gateway`.

    build_web(handle, accounts)    # handle: the security boundary's in-process `handle(FhirRequest)`
    web.routes()                   # mounted by the composition root ahead of the API's own routes

One request, in order: find the session (cookie), check Origin and the CSRF token on a POST, require sign-in and
a role the page allows, renew the person's Actor when its token is due, run the page in a worker thread (FHIR
calls are synchronous), and send it with the security headers of `render.page_response`.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote

from jinja2 import Environment
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sharedcare.web.accounts import Accounts
from sharedcare.web.assets import Assets
from sharedcare.web.gateway import Gateway, Handler, ServiceError
from sharedcare.web.render import environment, page_response
from sharedcare.web.sessions import COOKIE, CSRF_FIELD, Session, SessionStore, cookie_header, same_origin

log = logging.getLogger("sharedcare.web")
MAX_FORM = 64 * 1024
STAFF = frozenset({"clinician", "nurse", "social-care", "administrator"})
CLINICAL = frozenset({"clinician", "nurse", "social-care"})
PATIENT = frozenset({"patient"})
PRIVACY = frozenset({"privacy-officer"})
ANYONE = frozenset({"clinician", "nurse", "social-care", "administrator", "patient", "privacy-officer", "analyst"})
HOME = {"patient": "/my-record", "privacy-officer": "/privacy/alerts", "analyst": "/analyst"}
NAVIGATION = {
    "staff": [("Find a patient", "/patients")],
    "patient": [
        ("Your record", "/my-record"),
        ("Blood pressure", "/my-record/blood-pressure"),
        ("What matters to you", "/my-record/what-matters-to-me"),
        ("Who has looked", "/my-record/who-has-looked"),
    ],
    "privacy-officer": [("Access alerts", "/privacy/alerts"), ("Audit search", "/privacy/audit")],
}

Page = Callable[["Ctx"], Response]


@dataclass
class Ctx:
    """One page request as a view sees it."""

    web: WebApp
    request: Request
    session: Session
    form: dict[str, str]
    started: float
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    @property
    def actor(self) -> Any:
        return self.session.actor

    @property
    def role(self) -> str:
        return str(getattr(self.actor, "role", ""))

    @property
    def query(self) -> dict[str, str]:
        return dict(self.request.query_params)

    @property
    def params(self) -> dict[str, str]:
        return dict(self.request.path_params)

    def gateway(self) -> Gateway:
        return Gateway(self.web.handle, self.actor, self.request.headers.get("x-request-id"))

    def flash(self, kind: str, message: str) -> None:
        self.session.flash.append((kind, message))

    def redirect(self, url: str) -> Response:
        return RedirectResponse(url, status_code=303)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        base = {
            "user": self.actor,
            "role": self.role,
            "navigation": self.web.navigation(self.role),
            "current_path": self.request.url.path,
            "csrf_token": self.session.csrf,
            "csrf_field": CSRF_FIELD,
            "flashes": self.session.pop_flash(),
            "assets_missing": self.web.assets.missing,
            "home_url": self.web.home(self.role) if self.session.signed_in else "/",
        }
        return page_response(
            self.web.env, template, {**base, **context}, nonce=self.nonce, started=self.started, status=status
        )


class WebApp:
    def __init__(
        self,
        handle: Handler,
        accounts: Accounts,
        *,
        assets: Assets | None = None,
        sessions: SessionStore | None = None,
        env: Environment | None = None,
        secure_cookies: bool | None = None,
    ) -> None:
        self.handle, self.accounts = handle, accounts
        self.assets = assets or Assets.locate()
        self.sessions = sessions or SessionStore()
        self.env = env or environment()
        self.secure_cookies = secure_cookies  # None: Secure when the request came over HTTPS
        self.org_names: dict[str, str] = {}  # ODS code → name: directory data, shared by all sessions

    # --- routing ------------------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        from sharedcare.web import views_auth, views_patient, views_privacy, views_staff

        pages: list[tuple[str, Page, Collection[str] | None, list[str]]] = [
            *views_auth.PAGES,
            *views_staff.PAGES,
            *views_patient.PAGES,
            *views_privacy.PAGES,
        ]
        routes: list[BaseRoute] = [self.assets.route()]
        for path, view, roles, methods in pages:
            routes.append(Route(path, self._endpoint(view, roles), methods=methods))
        return routes

    def navigation(self, role: str) -> list[tuple[str, str]]:
        return NAVIGATION.get("staff" if role in STAFF else role, [])

    @staticmethod
    def home(role: str) -> str:
        return HOME.get(role, "/patients")

    # --- one request --------------------------------------------------------------------------------------
    def _endpoint(self, view: Page, roles: Collection[str] | None) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            form: dict[str, str] = {}
            if request.method == "POST":
                body = await request.body()
                if len(body) > MAX_FORM:
                    return Response("The form is too large", status_code=413)
                form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            return await run_in_threadpool(self._run, view, roles, request, form, started)

        return endpoint

    def _run(
        self, view: Page, roles: Collection[str] | None, request: Request, form: dict[str, str], started: float
    ) -> Response:
        session = self.sessions.get(request.cookies.get(COOKIE))
        fresh = session is None
        if session is None:
            session = self.sessions.new()
        ctx = Ctx(self, request, session, form, started)
        response = self._guarded(ctx, view, roles)
        self.sessions.save(ctx.session)
        if ctx.session is not session or fresh:  # a new or rotated session: (re)set the cookie
            response.headers.append("set-cookie", cookie_header(ctx.session.id, secure=self._secure(request)))
        return response

    def _guarded(self, ctx: Ctx, view: Page, roles: Collection[str] | None) -> Response:
        request = ctx.request
        if request.method == "POST" and not self._post_allowed(ctx):
            return ctx.render(
                "error.jinja", 403, title="This form has expired", message="Go back, reload the page and try again."
            )
        if roles is not None:
            if not ctx.session.signed_in:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return ctx.redirect(f"/sign-in?next={quote(target, safe='')}")
            if not self._renew(ctx):
                return ctx.redirect("/sign-in")
            if ctx.role not in roles:
                return ctx.render(
                    "error.jinja",
                    403,
                    title="You cannot use this page",
                    message="This page is not available in your role.",
                )
        try:
            return view(ctx)
        except ServiceError as err:
            return self._service_error(ctx, err)

    def _post_allowed(self, ctx: Ctx) -> bool:
        host = ctx.request.headers.get("host")
        if not same_origin(ctx.request.headers.get("origin"), host):
            return False
        token = ctx.form.get(CSRF_FIELD) or ctx.query.get(CSRF_FIELD)  # the header's sign-out form: in its action
        return ctx.session.check_csrf(token)

    def _renew(self, ctx: Ctx) -> bool:
        """Swap in a fresh Actor shortly before its token expires; an account that has gone ends the session."""
        session = ctx.session
        if session.actor_expires > time.time():
            return True
        renewed = self.accounts.renew(session.username or "", _address(ctx.request))
        if renewed is None:
            self.sessions.end(session.id)
            session.username, session.actor = None, None
            return False
        session.actor, session.actor_expires = renewed.actor, renewed.expires_at
        return True

    def _service_error(self, ctx: Ctx, err: ServiceError) -> Response:
        if err.status == 404 or err.status == 410:
            return ctx.render("error.jinja", 404, title="Not found", message=err.message)
        if err.refused:
            return ctx.render("error.jinja", 403, title="You do not have access", message=err.message)
        log.warning("service error %s on %s: %s", err.status, ctx.request.url.path, err.message)
        return ctx.render(
            "error.jinja", 502 if err.status >= 500 else 400, title="Sorry, there is a problem", message=err.message
        )

    def _secure(self, request: Request) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def build_web(handle: Handler, accounts: Accounts, **options: Any) -> WebApp:
    return WebApp(handle, accounts, **options)
