"""The server's keys, kept in the store (`auth_keys`) so every process and the CLI on that store share them.

On first start an ES256 (P-256) signing key and a random pseudonymisation secret are generated. Tokens are
signed with the newest active signing key and verified against every signing key still held, so a key can be
rotated (`sharedcare keys rotate` inserts a new one) without invalidating tokens already issued.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from joserfc import jws, jwt
from joserfc.jwk import ECKey, KeySet

ALG = "ES256"


class KeyRing:
    def __init__(self, signing: list[tuple[str, ECKey]], pseudonym_secret: bytes) -> None:
        self.kid, self.key = signing[0]
        self.verify_keys = KeySet([_with_kid(key, kid) for kid, key in signing])
        self.pseudonym_secret = pseudonym_secret

    @classmethod
    def load(cls, store: Any) -> KeyRing:
        """The store's keys, generating them on first use (one creator at a time)."""
        d = store.dialect
        with store.writing() as cur:
            store.lock_key(cur, "auth-keys")
            rows = _rows(cur, d)
            if not any(kind == "signing" for _, kind, _ in rows):
                _insert(cur, d, "signing", ECKey.generate_key("P-256").as_pem(private=True).decode())
            if not any(kind == "pseudonym" for _, kind, _ in rows):
                _insert(cur, d, "pseudonym", secrets.token_hex(32))
            rows = _rows(cur, d)
        signing = [(kid, ECKey.import_key(material)) for kid, kind, material in rows if kind == "signing"]
        secret = next(bytes.fromhex(m) for _, kind, m in rows if kind == "pseudonym")
        return cls(signing, secret)

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        return jwt.encode({"alg": ALG, "kid": self.kid, "typ": typ}, claims, self.key)

    def decode(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Verify the signature only (claims are the caller's to check): (header, claims)."""
        result = jwt.decode(token, self.verify_keys, algorithms=[ALG])
        return dict(result.header), dict(result.claims)

    def sign_bytes(self, payload: bytes) -> str:
        return jws.serialize_compact({"alg": ALG, "kid": self.kid}, payload, self.key)

    def check_bytes(self, compact: str) -> bytes | None:
        """The payload of a compact JWS signed by one of our keys, or None if it is not."""
        try:
            return bytes(jws.deserialize_compact(compact, self.verify_keys, algorithms=[ALG]).payload)
        except Exception:
            return None

    def public_jwks(self) -> dict[str, Any]:
        return self.verify_keys.as_dict(private=False)


def _with_kid(key: ECKey, kid: str) -> ECKey:
    data = key.as_dict(private=True)
    data["kid"] = kid
    return ECKey.import_key(data)


def _rows(cur: Any, d: Any) -> list[tuple[str, str, str]]:
    cur.execute("SELECT kid, kind, material FROM auth_keys WHERE active = 1 ORDER BY created_at DESC, kid")
    return [(r[0], r[1], r[2]) for r in cur.fetchall()]


def _insert(cur: Any, d: Any, kind: str, material: str) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    cur.execute(
        d.sql("INSERT INTO auth_keys (kid, kind, material, created_at, active) VALUES (?, ?, ?, ?, 1)"),
        (secrets.token_urlsafe(12), kind, material, now),
    )


def rotate(store: Any) -> str:
    """Add a new signing key; it signs from now on, the old ones still verify. Returns the new kid."""
    with store.writing() as cur:
        store.lock_key(cur, "auth-keys")
        _insert(cur, store.dialect, "signing", ECKey.generate_key("P-256").as_pem(private=True).decode())
        return str(_rows(cur, store.dialect)[0][0])
