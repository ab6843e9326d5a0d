"""Unique ids without a system call per id: a random 64-bit prefix per process and a counter.

`uuid.uuid4()` reads the OS random source every time, which on a busy virtual machine can cost more than the
request it labels. Request ids and AuditEvent ids need uniqueness, not unpredictability (nothing is secured by
them), so each process draws 64 random bits once and counts; the result is shaped as a UUID.
"""

from __future__ import annotations

import itertools
import os
import secrets
import uuid

_counter = itertools.count(1)
_prefix = secrets.randbits(64)
_pid = os.getpid()


def unique_id() -> str:
    global _prefix, _pid, _counter
    if os.getpid() != _pid:  # a forked child must not repeat its parent's ids
        _prefix, _pid, _counter = secrets.randbits(64), os.getpid(), itertools.count(1)
    return str(uuid.UUID(int=(_prefix << 64) | (next(_counter) & 0xFFFFFFFFFFFFFFFF)))
