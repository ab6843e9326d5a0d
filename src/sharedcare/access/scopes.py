"""SMART on FHIR scopes, v1 and v2 (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).

A resource scope is `context/Type.perms[?param=value&...]`: context is `patient`, `user` or `system`; perms are the
v2 letters `cruds` (create, read, update, delete, search) or the v1 words `read`, `write` and `*`. A `?...` suffix
(v2 "granular" scope) grants the type only for resources matching those search criteria. Anything else (`openid`,
`fhirUser`, `launch`, `launch/patient`, `offline_access`, ...) is kept as a plain word.

Scopes only ever narrow: the role and the relationship rules in `policy` still apply to what a scope grants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl

CONTEXTS = ("patient", "user", "system")
PERMS = "cruds"
V1_PERMS = {"read": "rs", "write": "cud", "*": "cruds"}
SCOPE_RE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.([a-z*]+)(\?.*)?$")
Criteria = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Scope:
    context: str  # patient | user | system
    type: str  # a resource type or "*"
    perms: frozenset[str]  # letters of "cruds"
    criteria: Criteria = ()  # granular scope: the resource must match these search criteria

    def covers(self, type: str, perm: str) -> bool:
        return perm in self.perms and self.type in ("*", type)

    def text(self) -> str:
        perms = "".join(p for p in PERMS if p in self.perms)
        query = "&".join(f"{k}={v}" for k, v in self.criteria)
        return f"{self.context}/{self.type}.{perms}" + (f"?{query}" if query else "")


@dataclass(frozen=True, slots=True)
class ScopeGrant:
    """What the scopes grant for one type and permission.

    `patient_only`: granted only through `patient/` scopes, so only within the launch patient's compartment.
    `criteria`: None when granted unconditionally, else alternatives (any one suffices) from granular scopes.
    """

    patient_only: bool
    criteria: tuple[Criteria, ...] | None


class InvalidScope(ValueError):
    """A scope string that is neither a resource scope nor a known plain word."""


def parse_scope(text: str) -> Scope | None:
    """One scope word → Scope, or None for a non-resource scope; raises InvalidScope for a malformed one."""
    m = SCOPE_RE.match(text)
    if not m:
        if "/" in text and text.split("/", 1)[0] in CONTEXTS:
            raise InvalidScope(f"'{text}' is not a valid SMART resource scope")
        return None
    context, type, perms, query = m.groups()
    if perms in V1_PERMS:
        letters = V1_PERMS[perms]
    elif set(perms) <= set(PERMS) and len(set(perms)) == len(perms):
        letters = perms
    else:
        raise InvalidScope(f"'{text}': permissions must be letters of 'cruds' or read/write/*")
    criteria = tuple(parse_qsl(query[1:], keep_blank_values=True)) if query else ()
    return Scope(context, type, frozenset(letters), criteria)


@dataclass(frozen=True, slots=True)
class ScopeSet:
    """A token's scopes, parsed once; `grant()` answers what they allow for a type and permission."""

    resources: tuple[Scope, ...]
    words: frozenset[str]

    @staticmethod
    def parse(text: str) -> ScopeSet:
        return _parse_cached(" ".join(text.split()))

    def grant(self, type: str, perm: str) -> ScopeGrant | None:
        broad = [s for s in self.resources if s.context != "patient" and s.covers(type, perm)]
        narrow = [s for s in self.resources if s.context == "patient" and s.covers(type, perm)]
        chosen = broad or narrow
        if not chosen:
            return None
        if any(not s.criteria for s in chosen):
            return ScopeGrant(not broad, None)
        return ScopeGrant(not broad, tuple(s.criteria for s in chosen))

    def allows(self, type: str, perm: str) -> bool:
        return self.grant(type, perm) is not None

    def contexts(self) -> frozenset[str]:
        return frozenset(s.context for s in self.resources)

    def text(self) -> str:
        return " ".join([*(s.text() for s in self.resources), *sorted(self.words)])


@lru_cache(maxsize=1024)
def _parse_cached(text: str) -> ScopeSet:
    resources, words = [], set()
    for word in text.split():
        scope = parse_scope(word)
        if scope is None:
            words.add(word)
        else:
            resources.append(scope)
    return ScopeSet(tuple(resources), frozenset(words))


def narrow(requested: ScopeSet, allowed: ScopeSet, contexts: frozenset[str]) -> ScopeSet:
    """The part of `requested` that `allowed` covers, in the given contexts: what a token may actually carry.

    A requested scope keeps the permissions some allowed scope of the same context grants on its type (or `*`);
    a granular allowed scope passes only its own criteria on. Plain words pass only if allowed.
    """
    granted: list[Scope] = []
    for want in requested.resources:
        if want.context not in contexts:
            continue
        for have in allowed.resources:
            if have.context != want.context or have.type not in ("*", want.type):
                continue
            perms = want.perms & have.perms
            if not perms:
                continue
            criteria = have.criteria if have.criteria and want.criteria != have.criteria else want.criteria
            candidate = Scope(want.context, want.type, frozenset(perms), criteria)
            if candidate not in granted:
                granted.append(candidate)
    words = requested.words & allowed.words
    return ScopeSet(tuple(granted), frozenset(words))
