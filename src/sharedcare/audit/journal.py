"""The read-audit journal (SQLite): a process's AuditEvents, synced to disk before the read they record is answered.

Why: committing each small group of read events into the hash chain is a SQLite write transaction (the chain's
head, the log row, its index rows, a signed head: a dozen dirty pages and an fsync), and several server processes
would queue on the one write lock for it. Appending the events to a file of this process's own and syncing it
costs one small write and an fsync, and keeps the promise that nothing is shown without a durable record. The
events are then folded into the chain in larger batches (`AuditTrail`), and the journal is emptied.

A process that dies leaves its journal behind; the next process to start (or the next fold of any process) folds
it, skipping events already in the chain, so each event is chained exactly once.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

SUFFIX = ".journal"


def folder_for(sqlite_path: str) -> Path:
    return Path(f"{sqlite_path}-audit")


class Journal:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._kept: list[Path] = []  # earlier files whose fold failed: folded again with the next
        self._open()

    def _open(self) -> None:
        self.path = self.folder / f"{os.getpid()}-{time.time_ns()}{SUFFIX}"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.size = 0

    def append(self, lines: list[bytes]) -> None:
        """Write the events, one JSON per line, and return once they are on disk."""
        data = b"".join(line + b"\n" for line in lines)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        os.fdatasync(self._fd)
        self.size += len(data)

    def rotate(self) -> list[Path]:
        """Go on in a fresh file; returns the files whose events are about to be folded."""
        os.close(self._fd)
        done, self._kept = [*self._kept, self.path], []
        self._open()
        return done

    def keep(self, files: list[Path]) -> None:
        """The fold of `files` failed: keep them until a later fold succeeds."""
        self._kept = [*files, *self._kept]

    def discard(self, files: list[Path]) -> None:
        """Their events are in the chain."""
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def close(self) -> None:
        os.close(self._fd)
        if self.size == 0 and not self._kept:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def orphans(self) -> list[Path]:
        """Journals left by processes that have gone."""
        return [p for p in sorted(self.folder.glob(f"*{SUFFIX}")) if not _alive(_pid(p))]


def read_lines(path: Path) -> list[bytes]:
    """The complete lines of a journal (a line cut short by a crash was never acknowledged: it is dropped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [line for line in data[: data.rfind(b"\n") + 1].split(b"\n") if line]


def _pid(path: Path) -> int:
    try:
        return int(path.name.split("-", 1)[0])
    except ValueError:
        return -1


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
