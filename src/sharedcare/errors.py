"""The exception tree of sharedcare; the edges (router for bundle entries, api for responses) turn these into
OperationOutcomes. The core raises, never builds HTTP responses.

    FhirError (500, exception)
    ├── InvalidRequest (400, invalid)          malformed JSON, bad parameters, validation failures
    │   └── UnprocessableEntity (422, processing)  well-formed but breaks a business rule
    ├── Unauthorized (401, login)
    ├── Forbidden (403, forbidden)
    ├── NotFound (404, not-found)
    ├── MethodNotAllowed (405, not-supported)
    ├── NotAcceptable (406, not-supported)
    ├── Conflict (409, conflict)
    │   └── MultipleMatches (412, multiple-matches)  conditional operation matched more than one
    ├── Gone (410, deleted)
    ├── PreconditionFailed (412, conflict)       If-Match version mismatch
    ├── PayloadTooLarge (413, too-costly)
    ├── UnsupportedMediaType (415, not-supported)
    ├── NotSupported (400, not-supported)
    └── TooCostly (400, too-costly)
"""

from __future__ import annotations

from collections.abc import Sequence

from sharedcare.types import Issue


class FhirError(Exception):
    status = 500
    issue_code = "exception"
    resource_key: str | None = None  # "Type/id" of the resource refused, when raised for one of several writes

    def __init__(self, message: str, *, expression: str | None = None, issues: Sequence[Issue] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.issues: list[Issue] = list(issues) or [Issue("error", self.issue_code, message, expression)]


class InvalidRequest(FhirError):
    status = 400
    issue_code = "invalid"


class UnprocessableEntity(InvalidRequest):
    status = 422
    issue_code = "processing"


class Unauthorized(FhirError):
    status = 401
    issue_code = "login"


class Forbidden(FhirError):
    status = 403
    issue_code = "forbidden"


class NotFound(FhirError):
    status = 404
    issue_code = "not-found"


class MethodNotAllowed(FhirError):
    status = 405
    issue_code = "not-supported"


class NotAcceptable(FhirError):
    status = 406
    issue_code = "not-supported"


class Conflict(FhirError):
    status = 409
    issue_code = "conflict"


class MultipleMatches(Conflict):
    status = 412
    issue_code = "multiple-matches"


class Gone(FhirError):
    status = 410
    issue_code = "deleted"


class PreconditionFailed(FhirError):
    status = 412
    issue_code = "conflict"


class PayloadTooLarge(FhirError):
    status = 413
    issue_code = "too-costly"


class UnsupportedMediaType(FhirError):
    status = 415
    issue_code = "not-supported"


class NotSupported(FhirError):
    status = 400
    issue_code = "not-supported"


class TooCostly(FhirError):
    status = 400
    issue_code = "too-costly"
