"""Admission control: a bounded number of requests in progress and a bounded queue in front of them.

Without it, overload turns into timeouts: every request is accepted, each waits for a worker thread and the store,
latency grows without limit and so does memory. Here a request either gets one of `max_in_flight` slots, or waits
in a queue of at most `max_queue` for at most `queue_timeout` seconds, or is answered at once with 503, a
`Retry-After` header and an OperationOutcome (issue code `throttled`). What is admitted therefore waits at most the
queue timeout plus its own work, and what is refused costs microseconds and no body is read.

Probes and scrapes (`exempt`) bypass the gate, so an overloaded server still reports itself alive and measurable.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from sharedcare.fhir.outcome import outcome_bytes
from sharedcare.resilience.metrics import Registry
from sharedcare.types import Issue


class Admission:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_in_flight: int,
        max_queue: int,
        queue_timeout: float,
        retry_after: int = 1,
        exempt: Sequence[str] = ("/healthz", "/readyz", "/metrics"),
        metrics: Registry | None = None,
    ) -> None:
        self.app = app
        self.max_in_flight, self.max_queue, self.queue_timeout = max_in_flight, max_queue, queue_timeout
        self.retry_after = retry_after
        self.exempt = frozenset(exempt)
        self.in_flight = 0  # slots held (a slot is handed straight to the next waiter on release)
        self._queue: deque[asyncio.Future[None]] = deque()  # plain futures: no primitive bound to one event loop
        registry = metrics or Registry()
        self._rejected = registry.counter(
            "sharedcare_http_rejected_total", "Requests refused by admission control", ["reason"]
        )
        self._wait = registry.histogram("sharedcare_http_queue_wait_seconds", "Time admitted requests queued")
        registry.gauge("sharedcare_http_in_flight", "Requests in progress", source=lambda: self.in_flight)
        registry.gauge("sharedcare_http_queued", "Requests waiting for a slot", source=lambda: self.waiting)

    @property
    def waiting(self) -> int:
        return len(self._queue)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if self.in_flight < self.max_in_flight and not self._queue:
            self.in_flight += 1  # a free slot and nobody waiting: `_admit`'s first case, without its coroutine
        else:
            reason = await self._admit()
            if reason is not None:
                self._rejected.inc(reason)
                await self._refuse(send, reason)
                return
        try:
            await self.app(scope, receive, send)
        finally:
            self._release()

    async def _admit(self) -> str | None:
        """None once a slot is held; otherwise why the request is refused."""
        if self.in_flight < self.max_in_flight and not self._queue:
            self.in_flight += 1
            return None
        if len(self._queue) >= self.max_queue:
            return "queue-full"
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(slot)
        started = time.monotonic()
        try:
            await asyncio.wait_for(slot, self.queue_timeout)
        except TimeoutError:
            return "queue-timeout"
        except BaseException:  # the client went away: give back a slot handed over at the last moment
            if slot.done() and not slot.cancelled():
                self._release()
            raise
        finally:
            if slot in self._queue:
                self._queue.remove(slot)
        self._wait.observe(time.monotonic() - started)
        return None

    def _release(self) -> None:
        """Hand the slot to the oldest live waiter, or free it."""
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.in_flight -= 1

    async def _refuse(self, send: Send, reason: str) -> None:
        text = (
            f"The server is at capacity ({self.in_flight} requests in progress, {self.waiting} waiting; {reason}). "
            f"Retry after {self.retry_after} s."
        )
        body = outcome_bytes([Issue("error", "throttled", text)])
        headers = [
            (b"content-type", b"application/fhir+json; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(self.retry_after).encode()),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
