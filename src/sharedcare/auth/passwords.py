"""Password hashes for local accounts: scrypt (RFC 7914) from the standard library, with a per-hash salt.

Stored as `scrypt$N$r$p$salt$hash` (hex), so parameters can be raised later without breaking old hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

N, R, P = 2**14, 8, 1
DUMMY = "scrypt$16384$8$1$00$00"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    """Constant-time check; an unknown user is checked against a dummy hash so timing does not tell."""
    try:
        scheme, n, r, p, salt, digest = (stored or DUMMY).split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    except (ValueError, MemoryError):
        return False
    return stored is not None and hmac.compare_digest(got.hex(), digest)
