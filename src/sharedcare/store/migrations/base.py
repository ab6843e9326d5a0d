"""What a migration is: a number, a name, and the statements that move a store up to it or back down from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sharedcare.store.schema import Dialect


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    up: Callable[[Dialect], list[str]]  # statements from number-1 to number
    down: Callable[[Dialect], list[str]]  # statements from number back to number-1


@dataclass(frozen=True)
class Step:
    """One migration to run in one direction, with the exact statements (what `migrate --check` prints)."""

    number: int
    name: str
    direction: str  # "up" | "down"
    statements: tuple[str, ...]

    @property
    def version_after(self) -> int:
        return self.number if self.direction == "up" else self.number - 1
