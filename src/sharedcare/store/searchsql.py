"""Compile FHIR search criteria into SQL conditions over the index tables.

This is the part of search that conditional interactions need (`_id`, token, reference, string, uri); the full
engine (issue 3) extends this same compiler and index. Unsupported criteria raise rather than being ignored,
because a conditional update or delete that silently drops a criterion would touch the wrong resource.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sharedcare.errors import InvalidRequest, NotSupported
from sharedcare.fhir.normalize import normalize_string


class ParamInfo(Protocol):
    type: str


class ParamLookup(Protocol):
    def get(self, resource_type: str, code: str) -> ParamInfo | None: ...


class ConditionCompiler:
    def __init__(self, params: ParamLookup) -> None:
        self.params = params

    def compile(self, type: str, criteria: Sequence[tuple[str, str]]) -> tuple[str, list[Any]]:
        parts: list[str] = []
        args: list[Any] = []
        for name, value in criteria:
            sql, a = self.one(type, name, value)
            parts.append(sql)
            args += a
        return " AND ".join(parts), args

    def one(self, type: str, name: str, value: str) -> tuple[str, list[Any]]:
        code, _, modifier = name.partition(":")
        alternatives = split_or(value)
        if code == "_id":
            return f"r.id IN ({', '.join('?' * len(alternatives))})", alternatives
        param = self.params.get(type, code)
        if param is None:
            raise InvalidRequest(f"Unknown search parameter '{code}' for resource type {type}")
        builder = getattr(self, f"_{param.type}", None)
        if builder is None or modifier not in ("", "exact", "identifier"):
            raise NotSupported(f"Search parameter '{name}' ({param.type}) is not supported in this context")
        ors: list[str] = []
        args: list[Any] = []
        for alt in alternatives:
            sql, a = builder(type, code, modifier, alt)
            ors.append(sql)
            args += a
        return "(" + " OR ".join(ors) + ")", args

    def _exists(self, table: str, type: str, code: str, cond: str, args: list[Any]) -> tuple[str, list[Any]]:
        sql = (
            f"EXISTS (SELECT 1 FROM {table} i WHERE i.rid = r.rid AND i.type = ? AND i.param = ? AND {cond})"
        )
        return sql, [type, code, *args]

    def _token(self, type: str, code: str, modifier: str, value: str) -> tuple[str, list[Any]]:
        if "|" not in value:
            return self._exists("idx_token", type, code, "i.code = ?", [value])
        system, _, tok = value.partition("|")
        if not system:
            return self._exists("idx_token", type, code, "i.code = ? AND i.system IS NULL", [tok])
        if not tok:
            return self._exists("idx_token", type, code, "i.system = ?", [system])
        return self._exists("idx_token", type, code, "i.code = ? AND i.system = ?", [tok, system])

    def _reference(self, type: str, code: str, modifier: str, value: str) -> tuple[str, list[Any]]:
        if modifier == "identifier":
            return self._token(type, f"{code}:identifier", "", value)
        if "://" in value or value.startswith("urn:"):
            return self._exists("idx_reference", type, code, "i.url = ?", [value])
        if "/" in value:
            target_type, _, target_id = value.rpartition("/")
            return self._exists(
                "idx_reference", type, code, "i.target_type = ? AND i.target_id = ?", [target_type, target_id]
            )
        return self._exists("idx_reference", type, code, "i.target_id = ?", [value])

    def _string(self, type: str, code: str, modifier: str, value: str) -> tuple[str, list[Any]]:
        if modifier == "exact":
            return self._exists("idx_string", type, code, "i.exact = ?", [value])
        prefix = normalize_string(value)
        return self._exists(
            "idx_string", type, code, "i.value >= ? AND i.value < ?", [prefix, prefix + "\uffff"]
        )

    def _uri(self, type: str, code: str, modifier: str, value: str) -> tuple[str, list[Any]]:
        return self._exists("idx_uri", type, code, "i.uri = ?", [value])


def split_or(value: str) -> list[str]:
    """Split a parameter value on unescaped commas (http://hl7.org/fhir/R4/search.html#escaping)."""
    out, buf, escaped = [], [], False
    for ch in value:
        if escaped:
            buf.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    out.append("".join(buf))
    return out
