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


def _reseed() -> None:
    """A forked child must not repeat its parent's ids."""
    global _prefix, _counter
    _prefix, _counter = secrets.randbits(64), itertools.count(1)


os.register_at_fork(after_in_child=_reseed)


def unique_id() -> str:
    return str(uuid.UUID(int=(_prefix << 64) | (next(_counter) & 0xFFFFFFFFFFFFFFFF)))
