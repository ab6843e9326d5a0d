"""Serving HTTP from several processes on one port: one listening socket, shared by a primary and its secondaries.

Why processes: a Python process runs one thread of Python at a time, so one process serves at most one core's
worth of requests. SQLite in WAL mode lets several processes read at once and queue their writes; PostgreSQL
always did. The primary builds the full server, including the background duties that must run once (reindex
jobs, the Subscription dispatcher, a replica's follower); each secondary serves requests only. The audit chain is
shared: each process seals its own events inside a write transaction that reads the chain's head first.

The primary restarts a secondary that dies, and stops them all when it stops; a secondary whose primary has gone
stops itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger("sharedcare.serving")
RESTART_PAUSE = 1.0  # seconds before a dead secondary is started again (no busy loop if it dies at once)


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket every process accepts on; the kernel hands each new connection to one of them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_uvicorn(asgi: Any, sock: socket.socket) -> None:
    """Serve `asgi` on an already listening socket until SIGINT/SIGTERM."""
    import uvicorn

    config = uvicorn.Config(asgi, log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


class Secondaries:
    """The primary's secondaries: started once the primary has built its server (so migrations are settled),
    restarted when they die, terminated when the primary stops."""

    def __init__(self, count: int, fd: int, db: str, workers: int) -> None:
        self.count, self.fd, self.db, self.workers = count, fd, db, workers
        self._procs: list[subprocess.Popen[bytes]] = []
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None

    def command(self) -> list[str]:
        return [
            *[sys.executable, "-m", "sharedcare", "serve", "--db", self.db],
            *["--workers", str(self.workers), "--listen-fd", str(self.fd)],
        ]

    def start(self) -> None:
        self._procs = [self._spawn() for _ in range(self.count)]
        self._watch = threading.Thread(target=self._keep_alive, name="sharedcare-secondaries", daemon=True)
        self._watch.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command(), pass_fds=(self.fd,))

    def _keep_alive(self) -> None:
        while not self._stop.wait(RESTART_PAUSE):
            for i, proc in enumerate(self._procs):
                if proc.poll() is not None and not self._stop.is_set():
                    log.warning("secondary %s exited with %s; starting another", proc.pid, proc.returncode)
                    self._procs[i] = self._spawn()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self._procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]


def watch_primary(primary_pid: int, every: float = 1.0, stop: Callable[[], None] | None = None) -> None:
    """In a secondary: stop (as on SIGTERM) once the primary has gone, even if it was killed without warning."""

    def loop() -> None:
        while True:
            time.sleep(every)
            if os.getppid() != primary_pid:
                (stop or (lambda: os.kill(os.getpid(), signal.SIGTERM)))()
                return

    threading.Thread(target=loop, name="sharedcare-watch-primary", daemon=True).start()


@contextlib.contextmanager
def secondaries(count: int, sock: socket.socket, settings: Any) -> Iterator[Secondaries | None]:
    """Run `count` secondaries on `sock` for the duration of the block (none when count is 0); they read the
same environment, so the same settings, with the primary's store and process count."""
    if count <= 0:
        yield None
        return
    group = Secondaries(count, sock.fileno(), settings.db, settings.workers)
    group.start()
    try:
        yield group
    finally:
        group.stop()
