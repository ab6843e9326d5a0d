"""A client for another sharedcare's change feed: one keep-alive HTTP connection, stdlib only.

Used by the continuity replica. Pages are asked for with `_body=base64` so each version's stored bytes arrive
exactly as the primary holds them, whatever they contain.
"""

from __future__ import annotations

import base64
import http.client
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from sharedcare.store.changes import Change, ChangePage


class FeedError(Exception):
    """The primary answered, but not with a feed page (e.g. 401, 503 at capacity, an older schema)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


class FeedClient:
    def __init__(self, base_url: str, token: str = "", timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the primary must be an http(s) URL such as http://host:8080, got {base_url!r}")
        self.scheme, self.netloc = parts.scheme, parts.netloc
        self.path = parts.path.rstrip("/").removesuffix("/fhir") + "/fhir/_changes"
        self.token, self.timeout = token, timeout
        self._conn: http.client.HTTPConnection | None = None

    def get(self, since: int, count: int, wait: float) -> ChangePage:
        query = urlencode({"since": since, "_count": count, "_wait": wait, "_body": "base64"})
        headers = {"accept": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        conn = self._connection(wait)
        try:
            conn.request("GET", f"{self.path}?{query}", headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if resp.status != 200:
            raise FeedError(resp.status, data[:300].decode("utf-8", "replace"))
        return parse_page(orjson.loads(data))

    def _connection(self, wait: float) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self.netloc, timeout=self.timeout + wait)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def parse_page(data: dict[str, Any]) -> ChangePage:
    entries = [
        Change(
            e["position"],
            e["type"],
            e["id"],
            e["version"],
            e["lastUpdated"],
            e["method"],
            None if e.get("deleted") else base64.b64decode(e["body"]),
        )
        for e in data["entries"]
    ]
    return ChangePage(data["epoch"], data["since"], data["head"], entries)
