"""Serving HTTP from several processes on one port: a primary and its secondaries, each with its own socket.

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
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("sharedcare.serving")
# The event loop thread answers requests; background threads (audit folding, WAL checkpoints, bulk jobs) hold the
# interpreter lock for up to this long before the loop gets it back. Python's default, 5 ms, showed in the p99 of
# reads (2 processes, 8 clients: p99 17-21 ms at 5 ms, 12-15 ms at 1 ms, with the same throughput or better).
SWITCH_INTERVAL = 0.001
RESTART_PAUSE = 1.0  # seconds before a dead secondary is started again (no busy loop if it dies at once)


def listening_socket(host: str, port: int, *, shared: bool = False) -> socket.socket:
    """A socket on host:port. `shared` (SO_REUSEPORT): every process binds its own, and the kernel spreads new
    connections over them. (One socket inherited by all would not do: whichever process is awake accepts a whole
    burst of keep-alive connections, and the others sit idle.)"""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def run_uvicorn(asgi: Any, sock: socket.socket) -> None:
    """Serve `asgi` on an already listening socket until SIGINT/SIGTERM."""
    import uvicorn

    sys.setswitchinterval(SWITCH_INTERVAL)
    # uvicorn's access log is at INFO under a WARNING level, so never written; off, it is not built either (it
    # quoted every path). Requests are logged by sharedcare.api.observe.
    config = uvicorn.Config(asgi, log_level="warning", lifespan="on", http=http_protocol(), access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def http_protocol() -> Any:
    """uvicorn's httptools protocol, sending a response's head and body in one write (see `OneWrite`); uvicorn's
    own choice where httptools is missing."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "auto"

    class OneWriteProtocol(HttpToolsProtocol):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(OneWrite(transport))

        def on_response_complete(self) -> None:
            self.transport.flush()  # a head with no body to follow (HEAD, an empty body)
            super().on_response_complete()

    return OneWriteProtocol


class OneWrite:
    """A transport that holds a response head back until its body is written, and writes both at once.

    uvicorn writes a response's head and its body separately, and the event loop sends each at once: two send
    calls and two TCP segments per response, the client woken twice. Held is only a head that announces a
    Content-Length, so a body follows in the same response; it goes out with the first body write, at the end of
    the response, or at close, whichever comes first. The bytes on the wire are unchanged."""

    __slots__ = ("_transport", "_held")

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))
        elif data[:5] == b"HTTP/" and data[-4:] == b"\r\n\r\n" and b"\r\ncontent-length: " in data:
            self._held = data
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return bool(self._transport.is_closing())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class Secondaries:
    """The primary's secondaries: started once the primary has built its server (so migrations are settled),
    restarted when they die, terminated when the primary stops."""

    def __init__(self, count: int, settings: Any) -> None:
        self.count, self.settings = count, settings
        self._procs: list[subprocess.Popen[bytes]] = []
        self._ready_fd = -1
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None

    def command(self) -> list[str]:
        s = self.settings
        return [
            *[sys.executable, "-m", "sharedcare", "serve", "--db", s.db, "--host", s.host, "--port", str(s.port)],
            *["--workers", str(s.workers), "--secondary"],
        ]

    def start(self, ready_timeout: float = 120.0) -> None:
        """Start them and return once each is listening (or has failed to start)."""
        read_end, self._ready_fd = os.pipe()
        try:
            self._procs = [self._spawn() for _ in range(self.count)]
            _await_ready(read_end, self._procs, ready_timeout)
        except BaseException:
            self.stop()  # none left behind
            raise
        finally:
            os.close(read_end)
            os.close(self._ready_fd)
            self._ready_fd = -1
        self._watch = threading.Thread(target=self._keep_alive, name="sharedcare-secondaries", daemon=True)
        self._watch.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        if self._ready_fd < 0:  # a replacement: nobody waits for it
            return subprocess.Popen(self.command())
        return subprocess.Popen([*self.command(), "--ready-fd", str(self._ready_fd)], pass_fds=(self._ready_fd,))

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


def _await_ready(read_end: int, procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline, ready = time.monotonic() + timeout, 0
    while ready < len(procs) and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a secondary server process exited while starting")
        readable, _, _ = select.select([read_end], [], [], 0.2)
        if readable:
            ready += len(os.read(read_end, 64))
    if ready < len(procs):
        raise RuntimeError("the secondary server processes did not start in time")


def announce_ready(fd: int | None) -> None:
    """In a secondary: tell the primary this process is listening."""
    if fd is not None:
        os.write(fd, b"1")
        os.close(fd)


def watch_primary(primary_pid: int, every: float = 1.0) -> None:
    """In a secondary: stop (as on SIGTERM) once the primary has gone, even if it was killed without warning."""

    def loop() -> None:
        while True:
            time.sleep(every)
            if os.getppid() != primary_pid:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=loop, name="sharedcare-watch-primary", daemon=True).start()


@contextlib.contextmanager
def secondaries(count: int, settings: Any) -> Iterator[Secondaries | None]:
    """Run `count` secondaries on the primary's port for the duration of the block (none when count is 0); they
    read the same environment, so the same settings, with the primary's store, address and process count."""
    if count <= 0:
        yield None
        return
    group = Secondaries(count, settings)
    group.start()
    try:
        yield group
    finally:
        group.stop()
