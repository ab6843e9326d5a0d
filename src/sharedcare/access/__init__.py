"""Access policy: who may see and change what, expressed as restrictions the store ANDs into its queries.

actor.py         the caller (Actor) and the per-request context (ContextVar)
scopes.py        SMART on FHIR v1/v2 scopes → which interactions on which types
roles.py         the role table: types readable/writable, sensitive categories seen, break glass
labels.py        sensitivity categories from meta.security and clinical codes
derive.py        relationships, consents and opt-outs derived from resources (pure)
restrictions.py  the typed filter form and its SQL builder (shared by read, history and search)
policy.py        actor + interaction → deny, or restrictions and redaction
tables.py        the access tables, kept in step with every write inside its transaction
grants.py        break-glass and self-claimed relationships: time-limited, alerting
boundary.py      the wrapper around the router that enforces all of it and reports to audit
"""
