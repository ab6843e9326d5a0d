"""Browser sessions: an opaque random id in a cookie, the session itself (who, CSRF secret) kept on the server.

Why server-side: signing out must really end a session, and the cookie should carry nothing a thief could
replay elsewhere or read. The cookie is HttpOnly, SameSite=Lax and Secure whenever the site is served over
HTTPS; the id is rotated at sign-in (no session fixation). Sessions end after `idle_seconds` without a request
and `max_seconds` after sign-in. Forms carry a per-session CSRF token (compared in constant time) and requests
whose Origin names another site are refused. Given a `SessionTable`, sessions live in the database, so every
server process (`serve --workers N`) knows them and a restart signs nobody out; without one, in this process.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from sharedcare.access.actor import Actor
from sharedcare.access.scopes import ScopeSet

COOKIE = "sharedcare_session"
CSRF_FIELD = "csrf_token"


@dataclass
class Session:
    id: str
    csrf: str
    created: float
    seen: float
    username: str | None = None
    actor: Any = None  # the verified Actor of the signed-in person (sharedcare.access.actor.Actor)
    actor_expires: float = 0.0  # when the access token behind `actor` expires; renewed before then
    flash: list[tuple[str, str]] = field(default_factory=list)  # (kind, message) shown once on the next page
    data: dict[str, Any] = field(default_factory=dict)
    stored: str | None = field(default=None, repr=False)  # the body last saved to the table (nothing changed?)
    stored_at: float = 0.0  # when it was saved

    @property
    def signed_in(self) -> bool:
        return self.username is not None and self.actor is not None

    def check_csrf(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf, token or "")

    def pop_flash(self) -> list[tuple[str, str]]:
        shown, self.flash = self.flash, []
        return shown


class SessionStore:
    def __init__(
        self, *, idle_seconds: int = 1800, max_seconds: int = 12 * 3600, capacity: int = 20000, table: Any = None
    ) -> None:
        self.idle_seconds, self.max_seconds, self.capacity = idle_seconds, max_seconds, capacity
        self.table = table  # sharedcare.store.web_sessions.SessionTable, or None: this process's memory
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()
        self._swept = 0.0

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = time.time()
        if self.table is not None:
            return self._load(session_id, now)
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if self._expired(session, now):
                del self._sessions[session_id]
                return None
            session.seen = now
            self._sessions.move_to_end(session_id)
            return session

    def new(self) -> Session:
        now = time.time()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        if self.table is None:
            with self._lock:
                self._sessions[session.id] = session
                while len(self._sessions) > self.capacity:
                    self._sessions.popitem(last=False)  # the least recently used goes first
        return session

    def save(self, session: Session) -> None:
        """After a request: write a session that changed (or was last written a minute ago, so it stays alive)."""
        if self.table is None:
            return
        body = _dump(session)
        if body == session.stored and session.seen - session.stored_at < TOUCH_SECONDS:
            return
        self.table.save(session.id, body, session.created, session.seen)
        session.stored, session.stored_at = body, session.seen
        self._sweep(session.seen)

    def rotate(self, old: Session) -> Session:
        """A fresh id and CSRF secret for a session that changes privilege (sign-in); the old id stops working."""
        self.end(old.id)
        fresh = self.new()
        fresh.flash = old.flash
        return fresh

    def end(self, session_id: str) -> None:
        if self.table is not None:
            self.table.delete(session_id)
            return
        with self._lock:
            self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return self.table.count() if self.table is not None else len(self._sessions)

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.seen > self.idle_seconds or now - session.created > self.max_seconds

    def _load(self, session_id: str, now: float) -> Session | None:
        row = self.table.load(session_id)
        if row is None:
            return None
        body, created, seen = row
        session = _load(session_id, body, created, seen)
        if self._expired(session, now):
            self.table.delete(session_id)
            return None
        session.seen = now
        return session

    def _sweep(self, now: float) -> None:
        if now - self._swept > SWEEP_SECONDS:
            self._swept = now
            self.table.sweep(now - self.idle_seconds, now - self.max_seconds)


TOUCH_SECONDS = 60  # an unchanged session's row is rewritten at most this often (its idle clock)
SWEEP_SECONDS = 300  # how often a process deletes sessions that have ended


def _dump(session: Session) -> str:
    actor = session.actor
    return orjson.dumps(
        {
            "csrf": session.csrf,
            "username": session.username,
            "actor": None if actor is None else {**_fields(actor), "scopes": actor.scopes.text()},
            "actor_expires": session.actor_expires,
            "flash": session.flash,
            "data": session.data,
        }
    ).decode()


def _fields(actor: Actor) -> dict[str, Any]:
    return {f.name: getattr(actor, f.name) for f in fields(actor) if f.name != "scopes"}


def _load(session_id: str, stored: str, created: float, seen: float) -> Session:
    body = orjson.loads(stored)
    actor = body.get("actor")
    return Session(
        session_id,
        body["csrf"],
        created,
        seen,
        username=body.get("username"),
        actor=None if actor is None else Actor(**{**actor, "scopes": ScopeSet.parse(actor["scopes"])}),
        actor_expires=float(body.get("actor_expires") or 0.0),
        flash=[tuple(f) for f in body.get("flash") or []],
        data=body.get("data") or {},
        stored=stored,
        stored_at=seen,
    )


def cookie_header(session_id: str, *, secure: bool, max_age: int | None = None) -> str:
    parts = [f"{COOKIE}={session_id}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def same_origin(origin: str | None, host: str | None) -> bool:
    """A form post's Origin (when the browser sends one) must be this site."""
    if not origin or origin == "null":
        return origin is None
    bare = origin.split("://", 1)[-1]
    return bool(host) and bare == host
