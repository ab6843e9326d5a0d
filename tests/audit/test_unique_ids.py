"""AuditEvent and request ids: unique within a process, and a forked child does not repeat its parent's."""

from __future__ import annotations

import os
import sys
import uuid

import pytest

from sharedcare.ids import unique_id


def test_ids_are_uuids_and_distinct() -> None:
    ids = [unique_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(str(uuid.UUID(i)) == i for i in ids[:100])


@pytest.mark.skipif(sys.platform == "win32", reason="uses fork")
def test_a_forked_child_draws_a_new_prefix() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then out without running the parent's cleanup
        os.write(write, " ".join(unique_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 4096).decode().split()
    os.close(read)
    parent = [unique_id() for _ in range(3)]
    assert len(child) == 3
    assert {c[:18] for c in child}.isdisjoint({p[:18] for p in parent})  # the 64-bit prefix differs
