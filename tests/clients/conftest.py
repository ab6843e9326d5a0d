"""A live HTTP server (uvicorn on a free port, in a thread) for tests that drive real FHIR client libraries."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from sharedcare.app import Server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_base(server: Server) -> Iterator[str]:
    port = _free_port()
    config = uvicorn.Config(server.asgi, host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/fhir"
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
