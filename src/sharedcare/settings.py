"""Settings as one table: each entry's name, type, default and help feed the CLI, the environment
(`SHAREDCARE_<NAME>`) and the docs. Read once, at start-up, by the composition root."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Settings:
    db: str = field(
        default="sqlite:///sharedcare.db", metadata={"help": "sqlite:///path.db or postgresql://..."}
    )
    host: str = field(default="127.0.0.1", metadata={"help": "address the HTTP server listens on"})
    port: int = field(default=8080, metadata={"help": "port the HTTP server listens on"})
    max_body_bytes: int = field(
        default=32 * 1024 * 1024, metadata={"help": "largest request body accepted; larger gets 413"}
    )
    max_json_depth: int = field(
        default=64, metadata={"help": "deepest JSON nesting accepted in a request body"}
    )
    default_page_size: int = field(default=50, metadata={"help": "_count when a client does not ask"})
    max_page_size: int = field(default=1000, metadata={"help": "largest _count honoured"})
    validate_writes: bool = field(default=True, metadata={"help": "validate every write against R4"})
    sqlite_synchronous: str = field(
        default="FULL", metadata={"help": "SQLite synchronous pragma: FULL survives power loss"}
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"SHAREDCARE_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _coerce(f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _coerce(type_name: Any, raw: str) -> Any:
    if type_name in ("int", int):
        return int(raw)
    if type_name in ("bool", bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return raw
