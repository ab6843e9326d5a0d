"""A response's head and body leave in one write; the bytes on the wire are what uvicorn would have sent."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from sharedcare.serving import OneWrite, http_protocol

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\n"


class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def writelines(self, parts: Any) -> None:
        self.writes.append(b"".join(parts))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_head_waits_for_its_body() -> None:
    t = Transport()
    w = OneWrite(t)
    w.write(HEAD)
    assert t.writes == []
    w.write(b"ok")
    assert t.writes == [HEAD + b"ok"]


def test_a_head_alone_goes_at_flush_or_close() -> None:
    t = Transport()
    w = OneWrite(t)
    w.write(HEAD)
    w.flush()
    assert t.writes == [HEAD]
    w.write(HEAD)
    w.close()
    assert t.writes == [HEAD, HEAD] and t.closed


def test_other_writes_go_at_once() -> None:
    t = Transport()
    w = OneWrite(t)
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    whole = HEAD + b"ok"
    for data in (chunked, whole, b"HTTP/1.1 100 Continue\r\n\r\n", b"5\r\nhello\r\n"):
        w.write(data)
    assert t.writes == [chunked, whole, b"HTTP/1.1 100 Continue\r\n\r\n", b"5\r\nhello\r\n"]
    assert w.get_extra_info("peername") == "info:peername"


async def app(scope: dict, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = scope["path"].encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def test_pipelined_requests_over_uvicorn() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", http=http_protocol()))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        with socket.create_connection(sock.getsockname()) as c:
            requests = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /bb HTTP/1.1\r\nHost: x\r\n\r\n"
            c.sendall(requests + b"GET /ccc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := c.recv(65536):
                data += chunk
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    responses = data.split(b"HTTP/1.1 ")[1:]
    assert [r.split(b"\r\n", 1)[0] for r in responses] == [b"200 OK"] * 3
    assert responses[0].endswith(b"\r\n\r\n/a")
    assert b"content-length: 3\r\n" in responses[1] and responses[1].endswith(b"\r\n\r\n")
    assert responses[2].endswith(b"\r\n\r\n/ccc")
