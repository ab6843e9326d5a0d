"""Keep credentials and personal data out of logs, whoever logs them (our code, uvicorn, libraries).

A logging filter rewrites each record's message: bearer tokens and JWTs, OAuth parameters (code, tokens,
assertions, secrets, passwords, PKCE verifiers), query strings of FHIR URLs (search values can be names, NHS
numbers, dates of birth) and bare ten-digit NHS-number-like values are replaced by `[redacted]`.
"""

from __future__ import annotations

import logging
import re

PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    re.compile(
        r"(?i)((?:access_token|refresh_token|id_token|code|client_secret|client_assertion|password|code_verifier"
        r"|assertion|state)=)[^&\s\"']+"
    ),
    re.compile(r"(/fhir/[^\s?\"']*\?)[^\s\"']+"),
    re.compile(r"(?<!\d)()\d{3}[ -]?\d{3}[ -]?\d{4}(?!\d)"),
]


def scrub(text: str) -> str:
    for pattern in PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


def _scrub_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:
        return
    cleaned = scrub(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        _scrub_record(record)
        return True


def install() -> None:
    """Scrub every log record as it is created, whichever logger or handler it goes to (idempotent)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "sharedcare_scrubbing", False):
        return

    def scrubbing_factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        _scrub_record(record)
        return record

    scrubbing_factory.sharedcare_scrubbing = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(scrubbing_factory)
