"""FHIR R4 Subscription, rest-hook channel (http://hl7.org/fhir/R4/subscription.html), driven by the change feed.

A dispatcher thread reads the feed from its saved position (`meta.subscription_position`). For each created or
updated resource it finds the live Subscriptions (status `active` or `requested`: sharedcare never rewrites a
client's Subscription, so `requested` is served as if active) whose criteria name that resource type, and asks the
store whether the resource matches: the criteria plus `_id=<id>`, compiled by the same search compiler as any
search. A match is notified on the channel:

- no `channel.payload`: an empty POST to `channel.endpoint` (the R4 "ping");
- `channel.payload` set (e.g. `application/fhir+json`): PUT of the resource's stored bytes to
  `<endpoint>/<type>/<id>`, with that content type;
- each `channel.header` entry ("Name: value") is sent as a header.

Only endpoints under one of the configured prefixes (`subscription_endpoints`) are ever called: a server that
POSTs wherever any client asks is a request-forgery tool. With no prefixes configured the dispatcher does not run.

Delivery is at least once: the position is saved after a page's notifications are sent, so a crash re-sends at
most one page. A failing endpoint is retried a few times with back-off and then skipped (logged and counted), so
one dead receiver cannot stall everyone else's notifications. As R4 says, criteria apply to the new version, so
deletions notify nobody. Subscriptions on Subscription itself are ignored (they would notify about their own
status changes). Headers and endpoints are never logged: they often carry credentials.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from sharedcare.errors import FhirError
from sharedcare.resilience.logs import event
from sharedcare.resilience.metrics import Registry
from sharedcare.store.changes import Change, ChangeFeed
from sharedcare.store.sqlstore import SqlStore

log = logging.getLogger("sharedcare.subscriptions")
ACTIVE = ("active", "requested")
PAGE = 500


@dataclass(frozen=True)
class Subscription:
    id: str
    version: int
    status: str
    type: str  # the criteria's resource type
    criteria: tuple[tuple[str, str], ...]
    endpoint: str
    payload: str
    headers: tuple[tuple[str, str], ...]
    end: str | None

    def expired(self, now: str) -> bool:
        return self.end is not None and self.end < now


def parse_subscription(id: str, version: int, body: bytes) -> Subscription | None:
    """The parts of a stored Subscription the dispatcher needs; None when it is not an active rest-hook."""
    res = orjson.loads(body)
    channel = res.get("channel") or {}
    if res.get("status") not in ACTIVE or channel.get("type") != "rest-hook" or not channel.get("endpoint"):
        return None
    rtype, _, query = str(res.get("criteria", "")).partition("?")
    if not rtype or rtype == "Subscription":
        return None
    headers = []
    for line in channel.get("header") or []:
        name, sep, value = str(line).partition(":")
        if sep and name.strip():
            headers.append((name.strip(), value.strip()))
    criteria = tuple((k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "_format")
    end = _normalise_instant(res.get("end"))
    return Subscription(
        id,
        version,
        res["status"],
        rtype,
        criteria,
        channel["endpoint"],
        channel.get("payload") or "",
        tuple(headers),
        end,
    )


def _normalise_instant(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return None


def deliver(sub: Subscription, change: Change, timeout: float = 5.0) -> int:
    """Send one notification; returns the HTTP status (raises OSError/HTTPException when unreachable)."""
    parts = urlsplit(sub.endpoint)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.netloc, timeout=timeout)
    path = parts.path or "/"
    headers = dict(sub.headers)
    try:
        if sub.payload:
            url = f"{path.rstrip('/')}/{change.type}/{change.id}" + (f"?{parts.query}" if parts.query else "")
            headers["content-type"] = sub.payload
            conn.request("PUT", url, body=change.body, headers=headers)
        else:
            conn.request("POST", path + (f"?{parts.query}" if parts.query else ""), body=b"", headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


class Dispatcher:
    def __init__(
        self,
        store: SqlStore,
        metrics: Registry,
        *,
        allowed: tuple[str, ...] = (),
        send: Callable[[Subscription, Change], int] = deliver,
        interval: float = 0.25,
        attempts: int = 3,
    ) -> None:
        self.store, self.feed = store, ChangeFeed(store)
        self.allowed, self.send = allowed, send
        self.interval, self.attempts = interval, attempts
        self.position: int | None = None
        self._saved_at = 0.0
        self._subs: list[Subscription] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sent = metrics.counter(
            "sharedcare_subscription_notifications_total", "rest-hook notifications", ["outcome"]
        )

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="sharedcare-subscriptions", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.step() < PAGE:
                    self._stop.wait(self.interval)
            except FhirError as exc:  # e.g. the feed migration is not applied yet
                event(log, logging.WARNING, "subscriptions: feed unavailable", error=exc.message)
                self._stop.wait(5.0)
            except Exception:
                log.exception("subscriptions: dispatch failed")
                self._stop.wait(2.0)

    def step(self) -> int:
        """Process one page of the feed; returns how many changes it covered."""
        if self.position is None:
            self.position = self._load_position()
        page = self.feed.read(self.position, PAGE)
        if not page.entries:
            return 0
        if self._subs is None or any(c.type == "Subscription" for c in page.entries):
            self._subs = self._load_subscriptions()
        for change in page.entries:
            if change.body is not None and change.type != "Subscription":
                self._notify_matches(change)
        self.position = page.position
        if self._subs or time.monotonic() - self._saved_at > 5.0:  # idle servers write the position rarely
            self._save_position(page.position)
        return len(page.entries)

    def _notify_matches(self, change: Change) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for sub in self._subs or []:
            if sub.type != change.type or sub.expired(now):
                continue
            if not sub.endpoint.startswith(self.allowed):
                self._sent.inc("endpoint-not-allowed")
                continue
            try:
                matched = self.store.search_ids(change.type, [*sub.criteria, ("_id", change.id)], 1)
            except FhirError:
                self._sent.inc("bad-criteria")
                continue
            if matched:
                self._notify(sub, change)

    def _notify(self, sub: Subscription, change: Change) -> None:
        for attempt in range(self.attempts):
            try:
                status = self.send(sub, change)
                if 200 <= status < 300:
                    self._sent.inc("delivered")
                    return
            except (OSError, http.client.HTTPException):
                pass
            if attempt + 1 < self.attempts and not self._stop.wait(0.5 * 2**attempt):
                continue
            break
        self._sent.inc("failed")
        event(log, logging.WARNING, "subscription notification failed", subscription=sub.id, type=change.type)

    def _load_subscriptions(self) -> list[Subscription]:
        false = "FALSE" if self.store.dialect.name == "postgresql" else "0"
        with self.store.reading() as cur:
            cur.execute(
                "SELECT r.id, v.version, v.body FROM resources r JOIN versions v ON v.seq = r.seq "
                f"WHERE r.type = 'Subscription' AND r.deleted = {false}"
            )
            rows = cur.fetchall()
        return [s for r in rows if (s := _safe_parse(r[0], r[1], bytes(r[2]))) is not None]

    def _load_position(self) -> int:
        with self.store.reading() as cur:
            cur.execute("SELECT value FROM meta WHERE key = 'subscription_position'")
            row = cur.fetchone()
        if row is not None:
            return int(row[0])
        head = self.feed.head()  # first start: notify what happens from now on, not the whole history
        self._save_position(head)
        return head

    def _save_position(self, position: int) -> None:
        sql = self.store.dialect.sql(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
        with self.store.writing() as cur:
            cur.execute(sql, ("subscription_position", str(position)))
        self._saved_at = time.monotonic()


def _safe_parse(id: str, version: int, body: bytes) -> Subscription | None:
    try:
        return parse_subscription(id, version, body)
    except (ValueError, TypeError, KeyError):
        return None
