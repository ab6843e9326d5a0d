"""The audit trail: one FHIR AuditEvent per request, allowed or refused, kept append-only and hash-chained.

events.py   the AuditEvent builder (IHE BALP shape) from an AuditRecord
log.py      storage: staged inside write transactions, sealed into a hash chain, verified, searched
trail.py    the recorder: the repository write hook, the request recorder and the sealing thread
search.py   AuditEvent search and read for privacy officers, and a patient's own access log
"""
