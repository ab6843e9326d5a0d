"""Signing people in to the web application: a small interface, and its implementation on the auth package.

The web layer needs two things from authentication: check a user name and password, and give back the Actor the
service should see. `LocalAccounts` does that with the auth package's local accounts: the password check, the
same access tokens `/auth/token` issues (so the Actor is exactly what a SMART app for that user would present),
and the same login audit (AuditEvent 110114), successes and failures alike. After `failures_per_minute` failed
sign-ins from one address within a minute, that address must wait (guessing passwords gets slow).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sharedcare.access.actor import Actor, new_request_id
from sharedcare.access.policy import now_instant
from sharedcare.access.scopes import ScopeSet
from sharedcare.audit.events import OUTCOME_MINOR, OUTCOME_SUCCESS, AuditRecord
from sharedcare.auth.passwords import check_password
from sharedcare.auth.registry import Client, User

WEB_CLIENT_ID = "sharedcare-web"
STAFF_SCOPES = "openid fhirUser user/*.cruds"
PATIENT_SCOPES = "openid fhirUser launch/patient patient/*.cruds"


@dataclass(frozen=True)
class SignedIn:
    username: str
    actor: Actor
    expires_at: float  # epoch seconds: renew the actor before then


class Accounts(Protocol):
    def sign_in(self, username: str, password: str, address: str) -> SignedIn | None:
        """The signed-in person, or None (wrong name or password, inactive account); audited either way."""

    def renew(self, username: str, address: str) -> SignedIn | None:
        """A fresh Actor for a live session, or None if the account has gone or been deactivated."""

    def sign_out(self, actor: Actor) -> None:
        """Record the sign-out."""

    def throttled(self, address: str) -> bool:
        """Too many sign-in attempts from this address just now."""


class LocalAccounts:
    """Accounts kept by `sharedcare user add` (scrypt passwords), tokens from the server's TokenService."""

    def __init__(self, security: Any, *, failures_per_minute: int = 10) -> None:
        self.registry, self.tokens, self.trail = security.registry, security.tokens, security.trail
        self.failures_per_minute = failures_per_minute
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self.client = Client(
            WEB_CLIENT_ID, "app", "app", "direct-care", f"{STAFF_SCOPES} {PATIENT_SCOPES}", name="sharedcare web"
        )

    def throttled(self, address: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = self._failures.get(address)
            while recent and now - recent[0] > 60:
                recent.popleft()
            return bool(recent) and len(recent) >= self.failures_per_minute

    def _failed(self, address: str) -> None:
        with self._lock:
            if len(self._failures) > 10000:
                self._failures.clear()  # bounded memory under a flood of addresses
            self._failures.setdefault(address, deque()).append(time.monotonic())

    def sign_in(self, username: str, password: str, address: str) -> SignedIn | None:
        user = self.registry.user(username) if username else None
        ok = check_password(password, user.password_hash if user else None)
        if not ok or user is None or not user.active:
            self._audit(_anonymous(username, address), OUTCOME_MINOR, "Web sign-in failed")
            self._failed(address)
            return None
        signed = self._issue(user, address)
        self._audit(signed.actor, OUTCOME_SUCCESS, "Signed in to the web application")
        return signed

    def renew(self, username: str, address: str) -> SignedIn | None:
        user = self.registry.user(username)
        if user is None or not user.active:
            return None
        return self._issue(user, address)

    def sign_out(self, actor: Actor) -> None:
        self._audit(actor, OUTCOME_SUCCESS, "Signed out of the web application")

    def _issue(self, user: User, address: str) -> SignedIn:
        scopes = ScopeSet.parse(PATIENT_SCOPES if user.role == "patient" else STAFF_SCOPES)
        issued = self.tokens.issue_for_user(user, self.client, scopes, user.patient if user.role == "patient" else None)
        actor = self.tokens.actor(issued.access_token)  # verified exactly as the API edge verifies a bearer token
        return SignedIn(user.username, replace(actor, address=address), time.time() + issued.expires_in - 30)

    def _audit(self, actor: Actor, outcome: str, desc: str) -> None:
        record = AuditRecord(actor, new_request_id(), "login", "E", outcome, now_instant(), outcome_desc=desc)
        self.trail.record(record, wait=False)


def _anonymous(subject: str, address: str) -> Actor:
    safe = "".join(c for c in subject if c.isalnum() or c in "-_.@:")[:64] or "unknown"
    return Actor("anonymous", safe, "none", WEB_CLIENT_ID, address=address)
