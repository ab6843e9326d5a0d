"""The caller of a request (Actor) and the per-request context that write hooks and audit read.

An Actor comes from a verified access token (or is synthesised for the development open mode and for in-process
calls). The request context lives in a ContextVar because the repository's write hooks, which run inside the
write transaction, have no request argument: that is how a write's AuditEvent learns who made it.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sharedcare.access.roles import ADMINISTRATOR, DIRECT_CARE, RolePolicy, role_policy
from sharedcare.access.scopes import ScopeSet
from sharedcare.ids import unique_id

ALL_SCOPES = ScopeSet.parse("system/*.cruds")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is asking: a person (`user`), an organisation's system (`system`), the open mode (`dev`) or the server
    itself (`internal`). `organisation` is an ODS code; `patient` is the patient in context (a patient user's own
    record, or a SMART launch patient); `fhir_user` links a person to their Practitioner/Patient resource."""

    kind: str
    subject: str
    role: str
    client_id: str
    organisation: str | None = None
    scopes: ScopeSet = ALL_SCOPES
    purpose: str = DIRECT_CARE
    patient: str | None = None
    fhir_user: str | None = None
    name: str | None = None
    token_id: str | None = None
    address: str | None = None

    @property
    def policy(self) -> RolePolicy | None:
        return role_policy(self.kind, self.role)

    @property
    def unrestricted(self) -> bool:
        policy = self.policy
        return policy is not None and policy.unrestricted

    @property
    def is_person(self) -> bool:
        return self.kind == "user"

    def parties(self) -> tuple[str, ...]:
        """The references a legitimate relationship may name for this actor: its organisation and its person."""
        out = [f"Organization/{self.organisation}"] if self.organisation else []
        if self.fhir_user and self.fhir_user.split("/")[0] in ("Practitioner", "PractitionerRole"):
            out.append(self.fhir_user)
        return tuple(out)


INTERNAL = Actor("internal", "sharedcare", ADMINISTRATOR, "sharedcare")
DEV_OPEN = Actor("dev", "dev-open", ADMINISTRATOR, "dev-open")


@dataclass
class RequestContext:
    """One request (or nested Bundle entry) as audit sees it; write hooks append to `writes`."""

    actor: Actor
    request_id: str
    interaction: Any = None  # sharedcare.access.boundary.Interaction, once classified
    writes: list[Any] = field(default_factory=list)  # StoredResource of every version committed by this request
    parent: RequestContext | None = None
    restrictions: dict[tuple[str | None, str], Any] = field(default_factory=dict)  # (type, perm) → Restriction
    audited: bool = False  # the request's AuditEvent is already written (e.g. with a break-glass alert)
    export_access: Any = None  # $export bound to a restricted caller: access, pseudonymise, owner (boundary)


CURRENT: ContextVar[RequestContext | None] = ContextVar("sharedcare_request", default=None)


def current() -> RequestContext | None:
    return CURRENT.get()


def current_actor() -> Actor:
    ctx = CURRENT.get()
    return ctx.actor if ctx is not None else INTERNAL


class request_context:  # noqa: N801 - used as a function: `with request_context(actor) as ctx`
    """The current request's context for the duration of a `with` block (nested ones keep their parent). A class
    rather than a generator-based context manager: it is entered on every request and write hook."""

    __slots__ = ("ctx", "token")

    def __init__(self, actor: Actor, request_id: str | None = None) -> None:
        parent = CURRENT.get()
        rid = request_id or (parent.request_id if parent else new_request_id())
        self.ctx = RequestContext(actor, rid, parent=parent)

    def __enter__(self) -> RequestContext:
        self.token = CURRENT.set(self.ctx)
        return self.ctx

    def __exit__(self, *exc: object) -> None:
        CURRENT.reset(self.token)


def new_request_id() -> str:
    return unique_id()
