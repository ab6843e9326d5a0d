"""The continuity replica: a complete local copy of a primary, kept from its change feed, served read-only.

The follower thread long-polls the primary's feed and applies each page in one local transaction: every version
verbatim (same type, id, version number, method, lastUpdated and bytes), its index rows computed by the same
indexer the primary uses, and the feed position saved in `meta` in that same transaction. So a replica that is
killed resumes exactly where its data ends, and a page, which never splits a primary transaction, is never
half-applied.

How current the data is: whenever a page reaches the primary's head, the replica knew everything the primary had
committed at that moment (`as_of`). `lag` is the time since then: small while the primary answers, growing while
it is down, and shown on every response (`X-Sharedcare-Replica-Lag`, `X-Sharedcare-Replica-As-Of`) and in
`/readyz`. When the primary returns, the follower picks up from its saved position and catches up.

It refuses to follow (and says so in `/readyz`, while still serving what it has) when the primary's feed epoch is
not the one it followed, e.g. after the primary was restored from a backup: its positions then mean something
else, and the replica must be seeded again from empty.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from sharedcare.fhir.index_rows import IndexRows
from sharedcare.resilience.feedclient import FeedClient, FeedError
from sharedcare.resilience.logs import event
from sharedcare.resilience.metrics import LAG_BUCKETS, Registry
from sharedcare.store.changes import Change, ChangePage
from sharedcare.store.sqlstore import SqlStore, SqlTxn

log = logging.getLogger("sharedcare.replica")
INSTANT = "%Y-%m-%dT%H:%M:%S.%fZ"


class Indexer(Protocol):
    def index(self, resource: dict[str, Any]) -> IndexRows: ...


@dataclass
class ReplicaState:
    position: int = 0
    epoch: str = ""
    primary_head: int = 0
    as_of: float | None = None  # wall time at which the replica last held everything the primary had committed
    last_contact: float | None = None
    last_error: str = ""
    stopped_reason: str = ""  # set when following is unsafe; the replica keeps serving what it has
    applied: int = 0


class Follower:
    def __init__(
        self,
        store: SqlStore,
        indexer: Indexer,
        client: FeedClient,
        metrics: Registry,
        *,
        batch: int = 1000,
        wait: float = 1.0,
    ) -> None:
        self.store, self.indexer, self.client = store, indexer, client
        self.batch, self.wait = batch, wait
        self.state = ReplicaState()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._recent_lags: deque[float] = deque(maxlen=20000)
        self._lag = metrics.histogram(
            "sharedcare_replica_apply_lag_seconds",
            "From a version's commit on the primary to its commit on the replica",
            buckets=LAG_BUCKETS,
        )
        self._applied = metrics.counter("sharedcare_replica_applied_total", "Versions applied from the feed")
        metrics.gauge(
            "sharedcare_replica_lag_seconds", "Seconds since the replica last held all of the primary", source=self.lag
        )
        metrics.gauge("sharedcare_replica_position", "Feed position applied", source=lambda: self.state.position)
        metrics.gauge(
            "sharedcare_replica_primary_head",
            "Primary's feed head as last seen",
            source=lambda: self.state.primary_head,
        )
        metrics.gauge(
            "sharedcare_replica_primary_up", "1 when the last call to the primary succeeded", source=self._primary_up
        )

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.load()
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="sharedcare-replica", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.wait + 15)
        self.client.close()

    def load(self) -> None:
        with self.store.reading() as cur:
            cur.execute("SELECT key, value FROM meta WHERE key IN ('replica_position', 'replica_epoch')")
            saved = dict(cur.fetchall())
            cur.execute("SELECT COUNT(*) FROM versions")
            versions = int(cur.fetchone()[0])
        self.state.position = int(saved.get("replica_position", 0))
        self.state.epoch = saved.get("replica_epoch", "")
        if versions and "replica_position" not in saved:
            self.state.stopped_reason = "the replica's database already holds data that did not come from a primary"

    def run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            if self.state.stopped_reason:
                self._stop.wait(1.0)
                continue
            try:
                self.poll_once()
                backoff = 0.2
            except (OSError, http.client.HTTPException, FeedError, ValueError) as exc:
                self._failed(exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
            except Exception as exc:  # a bug or a bad page: log it, keep serving, try again
                log.exception("replica: applying the feed failed")
                self._failed(exc)
                self._stop.wait(2.0)

    def poll_once(self) -> int:
        """Fetch one page from the primary and apply it; returns how many versions it applied."""
        page = self.client.get(self.state.position, self.batch, 0 if self._behind() else self.wait)
        received = time.time()
        if self.state.epoch and page.epoch != self.state.epoch:
            self.state.stopped_reason = (
                "the primary's change feed was renumbered (restored from a backup, or its feed migration was "
                "rolled back); seed this replica again from an empty database"
            )
            event(log, logging.ERROR, "replica stopped following", reason="feed epoch changed")
            return 0
        if page.head < self.state.position:
            self.state.stopped_reason = "the primary is behind this replica (restored from an older backup?)"
            event(log, logging.ERROR, "replica stopped following", reason="primary behind replica")
            return 0
        self.apply(page)
        self.state.primary_head = page.head
        self.state.last_contact = received
        if self.state.last_error:
            event(log, logging.INFO, "replica: primary reachable again", position=self.state.position)
        self.state.last_error = ""
        if page.complete:
            self.state.as_of = received
        return len(page.entries)

    # --- applying ----------------------------------------------------------------------------------
    def apply(self, page: ChangePage) -> None:
        if not page.entries and page.epoch == self.state.epoch:
            return
        with self.store.writing() as cur:
            for change in page.entries:
                self._apply_one(cur, change)
            self._save_position(cur, page.position, page.epoch)
        if self.state.as_of is not None:  # live following; the first catch-up from empty is not "lag"
            now = time.time()
            for change in page.entries:
                self._observe_lag(now, change.last_updated)
        self.state.position, self.state.epoch = page.position, page.epoch
        self.state.applied += len(page.entries)
        self._applied.inc(amount=len(page.entries))

    def _apply_one(self, cur: Any, change: Change) -> None:
        current = self.store.fetch_current(cur, change.type, change.id)
        if current is not None and current.version >= change.version:
            return  # already here (never expected: position and data commit together)
        rows = None if change.body is None else self.indexer.index(orjson.loads(change.body))
        txn = SqlTxn(self.store, cur, change.last_updated)
        txn.save(change.type, change.id, change.version, change.method, change.body, rows)

    def _save_position(self, cur: Any, position: int, epoch: str) -> None:
        sql = self.store.dialect.sql(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
        cur.execute(sql, ("replica_position", str(position)))
        cur.execute(sql, ("replica_epoch", epoch))

    def _observe_lag(self, now: float, last_updated: str) -> None:
        try:
            committed = datetime.strptime(last_updated, INSTANT).replace(tzinfo=UTC).timestamp()
        except ValueError:
            return
        lag = max(0.0, now - committed)
        self._lag.observe(lag)
        self._recent_lags.append(lag)

    # --- status ------------------------------------------------------------------------------------
    def _behind(self) -> bool:
        return self.state.primary_head > self.state.position

    def _failed(self, exc: BaseException) -> None:
        if not self.state.last_error:  # log the change of state, not every retry while the primary is down
            event(log, logging.WARNING, "replica: primary unavailable", error=type(exc).__name__)
        self.state.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"

    def _primary_up(self) -> float:
        return 0.0 if self.state.last_error or self.state.last_contact is None else 1.0

    def lag(self) -> float | None:
        """Seconds since the replica last held everything the primary had committed (None: not yet)."""
        return None if self.state.as_of is None else max(0.0, time.time() - self.state.as_of)

    def status(self) -> dict[str, Any]:
        lag = self.lag()
        lags = sorted(self._recent_lags)
        out: dict[str, Any] = {
            "mode": "read-only continuity replica",
            "position": self.state.position,
            "primary_head": self.state.primary_head,
            "primary_reachable": self._primary_up() == 1.0,
            "lag_seconds": None if lag is None else round(lag, 3),
            "as_of": None if self.state.as_of is None else _instant(self.state.as_of),
            "applied": self.state.applied,
        }
        if lags:
            out["apply_lag_p50"] = round(lags[len(lags) // 2], 4)
            out["apply_lag_p99"] = round(lags[min(len(lags) - 1, int(len(lags) * 0.99))], 4)
        if self.state.last_error:
            out["last_error"] = self.state.last_error
        if self.state.stopped_reason:
            out["stopped"] = self.state.stopped_reason
        return out

    def headers(self) -> list[tuple[bytes, bytes]]:
        lag = self.lag()
        out = [(b"x-sharedcare-mode", b"read-only-continuity")]
        if lag is None:
            return [*out, (b"x-sharedcare-replica-lag", b"unknown")]
        assert self.state.as_of is not None
        return [
            *out,
            (b"x-sharedcare-replica-lag", f"{lag:.3f}".encode()),
            (b"x-sharedcare-replica-as-of", _instant(self.state.as_of).encode()),
        ]


def _instant(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
