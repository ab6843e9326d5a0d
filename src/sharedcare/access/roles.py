"""The role table: what each role may read and write, which sensitive categories it sees, how it gets access.

Roles follow national RBAC in spirit (https://digital.nhs.uk/developer/guides-and-documentation/security-and-
authorisation/national-rbac-for-developers): access needs a role plus a legitimate relationship with the patient;
administrative roles see demographics and administration only; analysts work on secondary use, never direct care.
`system` is an organisation's system (SMART Backend Services); `administrator` as a *system* is the store's operator.
"""

from __future__ import annotations

from dataclasses import dataclass

CLINICIAN = "clinician"
NURSE = "nurse"
SOCIAL_CARE = "social-care"
ADMINISTRATOR = "administrator"
ANALYST = "analyst"
PRIVACY_OFFICER = "privacy-officer"
PATIENT = "patient"
SYSTEM = "system"
PEOPLE_ROLES = (CLINICIAN, NURSE, SOCIAL_CARE, ADMINISTRATOR, ANALYST, PRIVACY_OFFICER, PATIENT)
SYSTEM_ROLES = (SYSTEM, ADMINISTRATOR, ANALYST)

DIRECT_CARE = "direct-care"
SECONDARY_USE = "secondary-use"
PURPOSE_CODES = {DIRECT_CARE: "TREAT", SECONDARY_USE: "HOPERAT"}  # v3 PurposeOfUse
EMERGENCY_CODE = "ETREAT"

ANY = frozenset({"*"})
DEMOGRAPHIC_TYPES = frozenset({"Patient", "RelatedPerson"})
DIRECTORY_TYPES = frozenset(
    {"Organization", "Practitioner", "PractitionerRole", "Location", "HealthcareService", "Endpoint"}
)
ADMIN_TYPES = (
    DEMOGRAPHIC_TYPES
    | DIRECTORY_TYPES
    | frozenset({"Appointment", "AppointmentResponse", "Schedule", "Slot", "EpisodeOfCare", "Encounter", "Coverage"})
)
SOCIAL_CARE_TYPES = ADMIN_TYPES | frozenset(
    {
        "CarePlan",
        "CareTeam",
        "Goal",
        "Flag",
        "AllergyIntolerance",
        "Communication",
        "DocumentReference",
        "Task",
        "ServiceRequest",
        "Consent",
        "QuestionnaireResponse",
    }
)
SOCIAL_CARE_WRITES = frozenset({"CarePlan", "CareTeam", "Goal", "Communication", "Task", "QuestionnaireResponse"})
PATIENT_WRITES = frozenset({"Observation", "QuestionnaireResponse", "Communication", "Consent"})
PRIVACY_OFFICER_TYPES = DEMOGRAPHIC_TYPES | DIRECTORY_TYPES | frozenset({"AuditEvent", "Consent"})
NEVER_WRITABLE = frozenset({"AuditEvent"})

SENSITIVE_ALL = frozenset(
    {"sexual-health", "ivf", "termination", "gender-reassignment", "safeguarding", "third-party", "restricted"}
)


@dataclass(frozen=True, slots=True)
class RolePolicy:
    """One role's rights. `reads`/`writes` are resource types ("*" for any); deletes are for systems only."""

    reads: frozenset[str]
    writes: frozenset[str]
    deletes: bool
    needs_relationship: bool  # patient data only through a legitimate relationship (or a grant)
    sees_sensitive: frozenset[str]  # categories shown even when written by another organisation
    purposes: frozenset[str]
    break_glass: bool = False
    self_claim: bool = False
    reads_audit: bool = False  # searches the whole audit trail (privacy officer)
    unrestricted: bool = False  # the store operator: no patient or sensitivity restriction

    def may_read(self, type: str) -> bool:
        return "*" in self.reads or type in self.reads

    def may_write(self, type: str) -> bool:
        return type not in NEVER_WRITABLE and ("*" in self.writes or type in self.writes)


DIRECT = frozenset({DIRECT_CARE})
CLINICAL = RolePolicy(
    reads=ANY,
    writes=ANY,
    deletes=False,
    needs_relationship=True,
    sees_sensitive=frozenset({"safeguarding", "third-party"}),
    purposes=DIRECT,
    break_glass=True,
    self_claim=True,
)
PEOPLE: dict[str, RolePolicy] = {
    CLINICIAN: CLINICAL,
    NURSE: CLINICAL,
    SOCIAL_CARE: RolePolicy(
        reads=SOCIAL_CARE_TYPES,
        writes=SOCIAL_CARE_WRITES,
        deletes=False,
        needs_relationship=True,
        sees_sensitive=frozenset({"safeguarding"}),
        purposes=DIRECT,
        break_glass=True,
        self_claim=True,
    ),
    ADMINISTRATOR: RolePolicy(
        reads=ADMIN_TYPES,
        writes=frozenset({"Patient", "Appointment", "Schedule", "Slot", "RelatedPerson"}),
        deletes=False,
        needs_relationship=True,
        sees_sensitive=frozenset(),
        purposes=DIRECT,
        self_claim=True,
    ),
    ANALYST: RolePolicy(
        reads=ANY,
        writes=frozenset(),
        deletes=False,
        needs_relationship=False,
        sees_sensitive=frozenset(),
        purposes=frozenset({SECONDARY_USE}),
    ),
    PRIVACY_OFFICER: RolePolicy(
        reads=PRIVACY_OFFICER_TYPES,
        writes=frozenset(),
        deletes=False,
        needs_relationship=False,
        sees_sensitive=frozenset(),
        purposes=DIRECT,
        reads_audit=True,
    ),
    PATIENT: RolePolicy(
        reads=ANY,
        writes=PATIENT_WRITES,
        deletes=False,
        needs_relationship=False,  # limited to their own compartment instead
        sees_sensitive=frozenset({"sexual-health", "ivf", "termination", "gender-reassignment"}),
        purposes=DIRECT,
    ),
}
SYSTEMS: dict[str, RolePolicy] = {
    SYSTEM: RolePolicy(
        reads=ANY,
        writes=ANY,
        deletes=True,
        needs_relationship=True,
        sees_sensitive=frozenset(),
        purposes=DIRECT,
    ),
    ADMINISTRATOR: RolePolicy(
        reads=ANY,
        writes=ANY,
        deletes=True,
        needs_relationship=False,
        sees_sensitive=SENSITIVE_ALL,
        purposes=frozenset({DIRECT_CARE, SECONDARY_USE}),
        reads_audit=True,
        unrestricted=True,
    ),
    ANALYST: PEOPLE[ANALYST],
}


def role_policy(kind: str, role: str) -> RolePolicy | None:
    """The policy for a role held by a person (`user`) or a system; None for an unknown pairing."""
    if kind in ("internal", "dev"):
        return SYSTEMS[ADMINISTRATOR]
    table = SYSTEMS if kind == "system" else PEOPLE
    return table.get(role)
