"""Reading the change feed: every committed version, in commit order, from a position (see migration 2).

A page never splits a transaction: after `limit` entries it carries on while the next entries share the last one's
`lastUpdated` (every version a transaction writes carries the transaction's one timestamp, and a transaction's
positions are consecutive), so a follower that applies a page atomically never shows half a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sharedcare.errors import NotSupported
from sharedcare.store.schema import Dialect

SELECT = (
    "SELECT c.pos, v.type, v.id, v.version, v.last_updated, v.method, v.body "
    "FROM changes c JOIN versions v ON v.seq = c.seq WHERE c.pos > ? ORDER BY c.pos LIMIT ?"
)


class FeedStore(Protocol):
    dialect: Dialect

    def reading(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Change:
    position: int
    type: str
    id: str
    version: int
    last_updated: str
    method: str
    body: bytes | None  # None: a deletion


@dataclass(frozen=True, slots=True)
class ChangePage:
    epoch: str  # names the numbering; a follower whose epoch differs must start again
    since: int
    head: int  # the highest position committed when the page was read
    entries: list[Change]

    @property
    def position(self) -> int:
        """Where the next page starts: the last entry's position, or `since` when there was nothing new."""
        return self.entries[-1].position if self.entries else self.since

    @property
    def complete(self) -> bool:
        """True when this page reached the head: the reader now has everything committed when it was read."""
        return self.position >= self.head


class ChangeFeed:
    def __init__(self, store: FeedStore) -> None:
        self.store = store

    def read(self, since: int, limit: int = 1000) -> ChangePage:
        with self.store.reading() as cur:
            epoch, head = self._head(cur)
            entries = self._fetch(cur, since, limit)
            if len(entries) == limit:
                entries += self._rest_of_transaction(cur, entries[-1])
        return ChangePage(epoch, since, head, entries)

    def head(self) -> int:
        with self.store.reading() as cur:
            return self._head(cur)[1]

    def _head(self, cur: Any) -> tuple[str, int]:
        cur.execute("SELECT value FROM meta WHERE key = 'feed_epoch'")
        row = cur.fetchone()
        if row is None:
            raise NotSupported("The change feed needs schema version 2 or later: run `sharedcare migrate`")
        cur.execute("SELECT COALESCE(MAX(pos), 0) FROM changes")
        return str(row[0]), int(cur.fetchone()[0])

    def _fetch(self, cur: Any, since: int, limit: int) -> list[Change]:
        cur.execute(self.store.dialect.sql(SELECT), (since, limit))
        return [Change(r[0], r[1], r[2], r[3], r[4], r[5], None if r[6] is None else bytes(r[6])) for r in cur]

    def _rest_of_transaction(self, cur: Any, last: Change) -> list[Change]:
        """The entries after `last` that belong to its transaction (same timestamp, consecutive positions)."""
        more: list[Change] = []
        while True:
            chunk = self._fetch(cur, last.position, 200)
            same = _prefix_with_time(chunk, last.last_updated)
            more += same
            if len(same) < len(chunk) or not chunk:
                return more
            last = same[-1]


def _prefix_with_time(items: list[Change], last_updated: str) -> list[Change]:
    out = []
    for item in items:
        if item.last_updated != last_updated:
            break
        out.append(item)
    return out
