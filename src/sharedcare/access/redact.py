"""Element-level redaction of what is shown: pseudonymisation for secondary use.

Secondary use (analysts) gets no direct identifiers (domain-uk.md §6: "ICO-standard anonymisation"): names,
contact details, addresses, photos and narrative are removed; identifier values are replaced by a keyed hash
(HMAC-SHA-256 under a per-store secret), stable across resources so records still link; birth dates keep the
year only. Resource ids are opaque server ids and are kept so that references still resolve.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

REMOVED = ("name", "telecom", "address", "photo", "contact", "text")
PSEUDONYM_PREFIX = "pseudonym:"


class Pseudonymiser:
    def __init__(self, key: bytes) -> None:
        self.key = key

    def pseudonym(self, system: str, value: str) -> str:
        digest = hmac.new(self.key, f"{system}|{value}".encode(), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:24]

    def resource(self, resource: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in resource.items() if k not in REMOVED}
        if isinstance(out.get("identifier"), list):
            out["identifier"] = [self._identifier(i) for i in out["identifier"] if isinstance(i, dict)]
        if isinstance(out.get("birthDate"), str):
            out["birthDate"] = out["birthDate"][:4]
        for field in ("contained",):
            if isinstance(out.get(field), list):
                out[field] = [self.resource(c) for c in out[field] if isinstance(c, dict)]
        return out

    def _identifier(self, identifier: dict[str, Any]) -> dict[str, Any]:
        system = str(identifier.get("system", ""))
        value = str(identifier.get("value", ""))
        return (
            {"system": system, "value": self.pseudonym(system, value)}
            if system
            else {"value": self.pseudonym("", value)}
        )

    def body(self, body: bytes) -> bytes:
        """A resource or a Bundle (each entry's resource) as JSON bytes, pseudonymised."""
        data = orjson.loads(body)
        if data.get("resourceType") == "Bundle":
            for entry in data.get("entry") or []:
                if isinstance(entry.get("resource"), dict):
                    entry["resource"] = self.resource(entry["resource"])
        else:
            data = self.resource(data)
        return orjson.dumps(data)
