"""Readiness and storage metrics: what `/readyz` and `/metrics` report about the store (and the replica).

Ready means: the store answers a query, and its schema is the version this code expects (migrations current).
A replica is ready while its own store answers, whatever the primary's state: serving when the primary is down is
its purpose; its body says how current the data is. Storage gauges that need a scan are cached for a while so a
scrape every few seconds costs nothing.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Protocol

from sharedcare.resilience.metrics import Registry
from sharedcare.store.migrations import LATEST, current_version
from sharedcare.store.sqlstore import SqlStore


class ReplicaStatus(Protocol):
    def status(self) -> dict[str, Any]: ...


class Health:
    def __init__(self, store: SqlStore, metrics: Registry, *, cache_seconds: float = 15.0) -> None:
        self.store, self.metrics, self.cache_seconds = store, metrics, cache_seconds
        self.replica: ReplicaStatus | None = None
        self._stats: dict[str, float] = {}
        self._stats_at = 0.0
        self._lock = threading.Lock()
        metrics.gauge(
            "sharedcare_store_resources", "Current (not deleted) resources", source=lambda: self._stat("resources")
        )
        metrics.gauge("sharedcare_store_versions", "Stored versions", source=lambda: self._stat("versions"))
        metrics.gauge(
            "sharedcare_feed_head_position", "Highest change feed position", source=lambda: self._stat("head")
        )
        metrics.gauge("sharedcare_store_size_bytes", "Database size on disk", source=lambda: self._stat("size"))
        metrics.gauge("sharedcare_schema_version", "Schema version of the store", source=lambda: self._stat("schema"))
        self._probe = metrics.histogram("sharedcare_store_probe_seconds", "Time for the readiness query")

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        started = time.perf_counter()
        with self.store.reading() as cur:
            version = current_version(cur)
        self._probe.observe(time.perf_counter() - started)
        info: dict[str, Any] = {
            "storage": "ok",
            "backend": self.store.dialect.name,
            "schema_version": version,
            "schema_expected": LATEST,
        }
        ok = version == LATEST
        if version < LATEST:
            info["schema"] = "migrations pending: run `sharedcare migrate`"
        elif version > LATEST:
            info["schema"] = "the store was migrated by a newer sharedcare"
        if self.replica is not None:
            info["replica"] = self.replica.status()
        return ok, info

    def render(self) -> bytes:
        return self.metrics.render()

    def _stat(self, name: str) -> float | None:
        with self._lock:
            if time.monotonic() - self._stats_at > self.cache_seconds:
                self._stats = self._collect()
                self._stats_at = time.monotonic()
            return self._stats.get(name)

    def _collect(self) -> dict[str, float]:
        false = "FALSE" if self.store.dialect.name == "postgresql" else "0"
        out: dict[str, float] = {}
        with self.store.reading() as cur:
            cur.execute(f"SELECT COUNT(*) FROM resources WHERE deleted = {false}")
            out["resources"] = float(cur.fetchone()[0])
            cur.execute("SELECT COALESCE(MAX(seq), 0) FROM versions")  # versions are never deleted: max seq ~ count
            out["versions"] = float(cur.fetchone()[0])
            version = current_version(cur)
            out["schema"] = float(version)
            if version >= 2:
                cur.execute("SELECT COALESCE(MAX(pos), 0) FROM changes")
                out["head"] = float(cur.fetchone()[0])
            if self.store.dialect.name == "postgresql":
                cur.execute("SELECT pg_database_size(current_database())")
                out["size"] = float(cur.fetchone()[0])
        path = getattr(self.store, "path", None)
        if isinstance(path, str) and os.path.exists(path):
            out["size"] = float(sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p)))
        return out
