"""Wiring of the resilience pieces into one server: what `app.build` asks for, kept out of the composition root.

`Operations` owns the metrics registry, readiness, the change feed, and the background workers (the replica's
follower, the Subscription dispatcher). Workers start when the ASGI app starts serving (its lifespan) and stop when
it stops, so building a Server for a test or a CLI command starts no thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from sharedcare.api.admission import Admission
from sharedcare.api.observe import Observe
from sharedcare.api.ops import OpsHooks, ops_routes
from sharedcare.api.readonly import ReadOnly
from sharedcare.fhir.index_rows import IndexRows
from sharedcare.resilience.feedclient import FeedClient
from sharedcare.resilience.health import Health
from sharedcare.resilience.logs import configure_logging
from sharedcare.resilience.metrics import Registry
from sharedcare.resilience.replica import Follower
from sharedcare.resilience.subscriptions import Dispatcher
from sharedcare.settings import Settings
from sharedcare.store.changes import ChangeFeed
from sharedcare.store.sqlstore import SqlStore

# Probes and scrapes must answer under overload; the change feed too, so a replica keeps up while the primary is
# saturated (a feed request waits asynchronously, holding no worker thread, and only operators' replicas call it).
ADMISSION_EXEMPT = ("/healthz", "/readyz", "/metrics", "/fhir/_changes")


class Indexer(Protocol):
    def index(self, resource: dict[str, Any]) -> IndexRows: ...


class Worker(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Operations:
    settings: Settings
    store: SqlStore
    metrics: Registry
    health: Health
    feed: ChangeFeed
    follower: Follower | None = None
    dispatcher: Dispatcher | None = None
    workers: list[Worker] = field(default_factory=list)
    started: bool = False

    def routes(self) -> list[BaseRoute]:
        hooks = OpsHooks(
            readiness=self.health.readiness,
            metrics=self.health.render,
            feed=self.feed.read,
            feed_head=self.feed.head,
            feed_token=self.settings.feed_token,
        )
        return ops_routes(hooks)

    def middleware(self) -> list[Middleware]:
        s = self.settings
        stack = [
            Middleware(
                Observe,  # outermost: refused requests are counted and logged too
                metrics=self.metrics,
                access_log=s.access_log,
                extra_headers=self.follower.headers if self.follower else None,
            ),
            Middleware(
                Admission,
                max_in_flight=s.max_in_flight,
                max_queue=s.max_queue,
                queue_timeout=s.queue_timeout_ms / 1000,
                retry_after=s.retry_after,
                exempt=ADMISSION_EXEMPT,
                metrics=self.metrics,
            ),
        ]
        if self.follower is not None:
            stack.append(Middleware(ReadOnly))
        return stack

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        configure_logging(self.settings.log_level, self.settings.log_format)
        await run_in_threadpool(self.start)
        try:
            yield
        finally:
            await run_in_threadpool(self.stop)

    def start(self) -> None:
        if not self.started:
            for worker in self.workers:
                worker.start()
            self.started = True

    def stop(self) -> None:
        if self.started:
            for worker in reversed(self.workers):
                worker.stop()
            self.started = False


def build_operations(settings: Settings, store: SqlStore, indexer: Indexer) -> Operations:
    metrics = Registry()
    ops = Operations(settings, store, metrics, Health(store, metrics), ChangeFeed(store))
    if settings.replica_primary:
        client = FeedClient(settings.replica_primary, settings.feed_token)
        ops.follower = Follower(store, indexer, client, metrics, wait=settings.replica_wait_ms / 1000)
        ops.health.replica = ops.follower
        ops.workers.append(ops.follower)
    elif settings.subscription_endpoints:
        allowed = tuple(p.strip() for p in settings.subscription_endpoints.split(",") if p.strip())
        ops.dispatcher = Dispatcher(store, metrics, allowed=allowed)
        ops.workers.append(ops.dispatcher)
    return ops
