"""Signing in and out, and the landing page for each role."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import Response

from sharedcare.web.site import ANYONE, Ctx, _address

ROLE_NAMES = {
    "clinician": "Clinician",
    "nurse": "Nurse",
    "social-care": "Social care practitioner",
    "administrator": "Administrator",
    "analyst": "Analyst",
    "privacy-officer": "Privacy officer",
    "patient": "Patient",
}


def home(ctx: Ctx) -> Response:
    if ctx.session.signed_in:
        return ctx.redirect(ctx.web.home(ctx.role))
    return ctx.redirect("/sign-in")


def sign_in(ctx: Ctx) -> Response:
    target = _safe_next(ctx.query.get("next") or ctx.form.get("next"))
    if ctx.request.method == "GET":
        if ctx.session.signed_in:
            return ctx.redirect(target or ctx.web.home(ctx.role))
        return ctx.render("sign_in.jinja", next=target, errors={}, username="")
    username = ctx.form.get("username", "").strip()
    password = ctx.form.get("password", "")
    errors = {}
    if not username:
        errors["username"] = "Enter your user name"
    if not password:
        errors["password"] = "Enter your password"
    if errors:
        return ctx.render("sign_in.jinja", 400, next=target, errors=errors, username=username)
    address = _address(ctx.request)
    if ctx.web.accounts.throttled(address):
        errors["username"] = "Too many attempts to sign in. Wait a minute and try again"
        return ctx.render("sign_in.jinja", 429, next=target, errors=errors, username=username)
    signed = ctx.web.accounts.sign_in(username, password, address)
    if signed is None:
        errors["username"] = "The user name or password is not right"
        return ctx.render("sign_in.jinja", 401, next=target, errors=errors, username=username)
    ctx.session = ctx.web.sessions.rotate(ctx.session)
    ctx.session.username, ctx.session.actor = signed.username, signed.actor
    ctx.session.actor_expires = signed.expires_at
    return ctx.redirect(target or ctx.web.home(signed.actor.role))


def sign_out(ctx: Ctx) -> Response:
    if ctx.session.signed_in:
        ctx.web.accounts.sign_out(ctx.session.actor)
    ctx.web.sessions.end(ctx.session.id)
    ctx.session = ctx.web.sessions.new()
    ctx.flash("success", "You have signed out")
    return ctx.redirect("/sign-in")


def analyst(ctx: Ctx) -> Response:
    return ctx.render("analyst.jinja")


def _safe_next(value: str | None) -> str | None:
    """Only a path on this site (never `//host` or a full URL): no open redirect after sign-in."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else None


PAGES = [
    ("/", home, None, ["GET"]),
    ("/sign-in", sign_in, None, ["GET", "POST"]),
    ("/sign-out", sign_out, None, ["POST"]),
    ("/analyst", analyst, ANYONE, ["GET"]),
]
