"""The browser application (NHS.UK design system): server-rendered pages for clinicians, patients and privacy
officers, each page a client of the service layer through in-process FHIR requests (see `gateway`)."""

from __future__ import annotations

from typing import Any

from sharedcare.web.site import WebApp, build_web


def web_for(security: Any, handle: Any) -> WebApp:
    """The web application on the server's security (local accounts) and its boundary's in-process `handle`."""
    from sharedcare.store.web_sessions import SessionTable
    from sharedcare.web.accounts import LocalAccounts
    from sharedcare.web.sessions import SessionStore

    sessions = SessionStore(table=SessionTable(security.store))  # known to every server process
    return build_web(handle, LocalAccounts(security), sessions=sessions)


__all__ = ["WebApp", "build_web", "web_for"]
