"""The storage seam: what the service layer may ask of a store, whatever the engine.

Two implementations share one SQL body (`sqlstore.SqlStore`): SQLite (embedded default) and PostgreSQL.
Every write goes through `transact`, which runs a unit of work atomically: all of it commits or none of it does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sharedcare.fhir.index_rows import IndexRows
from sharedcare.types import StoredResource

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    type: str | None = None  # None: system history
    id: str | None = None
    since: str | None = None  # instant, inclusive
    at: str | None = None  # versions current at this instant
    count: int = 50
    offset: int = 0
    snapshot: int | None = None  # highest sequence number visible: keeps pages stable while writes happen


@dataclass(frozen=True, slots=True)
class HistoryPage:
    entries: list[StoredResource]
    snapshot: int
    total: int | None


class Txn(Protocol):
    """A write transaction in progress; everything done through it commits together."""

    now: str  # the transaction's timestamp (FHIR instant, UTC)

    def lock(self, key: str) -> None:
        """Serialise writers on a key (e.g. a conditional-create criterion) until commit."""

    def current(self, type: str, id: str) -> StoredResource | None: ...

    def save(
        self, type: str, id: str, version: int, method: str, body: bytes | None, rows: IndexRows | None
    ) -> StoredResource: ...

    def search_ids(self, type: str, params: Sequence[tuple[str, str]], limit: int = 2) -> list[str]: ...


class Store(Protocol):
    def read(self, type: str, id: str) -> StoredResource | None: ...

    def vread(self, type: str, id: str, version: int) -> StoredResource | None: ...

    def history(self, query: HistoryQuery) -> HistoryPage: ...

    def transact(self, work: Callable[[Txn], T], *, large: bool = False) -> T:
        """Run `work` in one transaction. `large`: it may change a great many pages (a bulk load's commit group,
        a re-link), so it should not share its transaction with other callers' work."""

    def search_ids(self, type: str, params: Sequence[tuple[str, str]], limit: int = 2) -> list[str]: ...

    def count(self) -> int: ...

    def close(self) -> None: ...
