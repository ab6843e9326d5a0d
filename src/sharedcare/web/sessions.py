"""Browser sessions: an opaque random id in a cookie, the session itself (who, CSRF secret) kept on the server.

Why server-side: signing out must really end a session, and the cookie should carry nothing a thief could
replay elsewhere or read. The cookie is HttpOnly, SameSite=Lax and Secure whenever the site is served over
HTTPS; the id is rotated at sign-in (no session fixation). Sessions end after `idle_seconds` without a request
and `max_seconds` after sign-in. Forms carry a per-session CSRF token (compared in constant time) and requests
whose Origin names another site are refused. Sessions live in this process: a restart signs everyone out.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

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

    @property
    def signed_in(self) -> bool:
        return self.username is not None and self.actor is not None

    def check_csrf(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf, token or "")

    def pop_flash(self) -> list[tuple[str, str]]:
        shown, self.flash = self.flash, []
        return shown


class SessionStore:
    def __init__(self, *, idle_seconds: int = 1800, max_seconds: int = 12 * 3600, capacity: int = 20000) -> None:
        self.idle_seconds, self.max_seconds, self.capacity = idle_seconds, max_seconds, capacity
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = time.time()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.seen > self.idle_seconds or now - session.created > self.max_seconds:
                del self._sessions[session_id]
                return None
            session.seen = now
            self._sessions.move_to_end(session_id)
            return session

    def new(self) -> Session:
        now = time.time()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > self.capacity:
                self._sessions.popitem(last=False)  # the least recently used goes first
        return session

    def rotate(self, old: Session) -> Session:
        """A fresh id and CSRF secret for a session that changes privilege (sign-in); the old id stops working."""
        self.end(old.id)
        fresh = self.new()
        fresh.flash = old.flash
        return fresh

    def end(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)


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
