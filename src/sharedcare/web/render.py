"""Jinja2 set up for the NHS.UK frontend templates (nhsuk-frontend-jinja) and our own, and the page response.

Autoescaping is on; `ChainableUndefined` is what the nhsuk-frontend-jinja macros expect. Every page is sent with
a Content-Security-Policy whose script nonce changes per response, `Cache-Control: no-store` (pages carry
personal data) and a `Server-Timing` header giving the server's time for the page.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, ChoiceLoader, Environment, FileSystemLoader, PackageLoader
from starlette.responses import HTMLResponse

from sharedcare.web import charts
from sharedcare.web import display as d

TEMPLATES = Path(__file__).resolve().parent / "templates"
CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self' https://assets.nhs.uk; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)


def environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(TEMPLATES), PackageLoader("nhsuk_frontend_jinja")]),
        autoescape=True,
        undefined=ChainableUndefined,
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        nhs_number=d.nhs_number,
        long_date=d.long_date,
        short_date=d.short_date,
        date_time=d.date_time,
        age=d.age,
        banner_name=d.banner_name,
        gender=d.gender,
        human_name=d.human_name,
    )
    env.globals.update(line_chart=charts.line_chart, point_text=charts.point_text, describe_series=charts.describe)
    return env


def page_response(
    env: Environment, template: str, context: dict[str, Any], *, nonce: str, started: float, status: int = 200
) -> HTMLResponse:
    html = env.get_template(template).render(**context, cspNonce=nonce)
    elapsed = (time.perf_counter() - started) * 1000
    headers = {
        "content-security-policy": CSP.format(nonce=nonce),
        "cache-control": "no-store",
        "server-timing": f"app;dur={elapsed:.1f}",
        "referrer-policy": "same-origin",
        "permissions-policy": "camera=(), microphone=(), geolocation=()",
    }
    return HTMLResponse(html, status_code=status, headers=headers)
