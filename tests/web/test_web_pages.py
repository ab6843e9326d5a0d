"""The web application through its HTTP interface (in process): sign-in, sessions, CSRF, roles, and each role's
main journey, checked against what the service and the audit trail record."""

from __future__ import annotations

import re

from conftest import Region, csrf_of, sign_in
from starlette.testclient import TestClient

PASSWORD = "sharedcare-demo"


def _digits(nhs: str) -> str:
    return nhs.replace(" ", "")


def test_pages_need_sign_in_and_come_back_after(client: TestClient) -> None:
    first = client.get("/patients", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/sign-in?next=%2Fpatients"
    page = client.get("/sign-in?next=%2Fpatients")
    done = client.post(
        "/sign-in",
        data={"username": "clinician", "password": PASSWORD, "next": "/patients", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/patients"


def test_wrong_password_is_refused_without_saying_which_part(client: TestClient) -> None:
    resp = sign_in(client, "clinician", "not-the-password")
    assert resp.status_code == 401
    assert "The user name or password is not right" in resp.text
    assert client.get("/patients", follow_redirects=False).status_code == 303


def test_forms_without_the_csrf_token_or_from_another_origin_are_refused(client: TestClient) -> None:
    client.get("/sign-in")
    assert client.post("/sign-in", data={"username": "clinician", "password": PASSWORD}).status_code == 403
    token = csrf_of(client.get("/sign-in").text)
    crossed = client.post(
        "/sign-in",
        data={"username": "clinician", "password": PASSWORD, "csrf_token": token},
        headers={"origin": "https://evil.example"},
    )
    assert crossed.status_code == 403


def test_session_cookie_and_security_headers(client: TestClient) -> None:
    page = client.get("/sign-in")
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    csp = page.headers["content-security-policy"]
    assert "script-src 'self' 'nonce-" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["server-timing"].startswith("app;dur=")
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'nonce="{nonce}"' in page.text


def test_sign_in_rotates_the_session_and_sign_out_ends_it(client: TestClient) -> None:
    client.get("/sign-in")
    before = client.cookies.get("sharedcare_session")
    sign_in(client, "nurse", PASSWORD)
    after = client.cookies.get("sharedcare_session")
    assert before and after and before != after
    token = csrf_of(client.get("/patients").text)
    client.post(f"/sign-out?csrf_token={token}")
    assert client.get("/patients", follow_redirects=False).status_code == 303


def test_no_open_redirect_after_sign_in(client: TestClient) -> None:
    page = client.get("/sign-in")
    resp = client.post(
        "/sign-in",
        data={
            "username": "clinician",
            "password": PASSWORD,
            "next": "//evil.example/x",
            "csrf_token": csrf_of(page.text),
        },
        follow_redirects=False,
    )
    assert resp.headers["location"] == "/patients"


def test_roles_reach_only_their_pages(client: TestClient) -> None:
    sign_in(client, "patient", PASSWORD)
    assert client.get("/patients").status_code == 403
    assert client.get("/privacy/alerts").status_code == 403
    assert client.get("/my-record").status_code == 200


def test_clinician_finds_by_nhs_number_and_sees_every_source(client: TestClient, region: Region) -> None:
    sign_in(client, "clinician", PASSWORD)
    found = client.get("/patients", params={"by": "nhs", "nhs_number": _digits(region.demo.patient_nhs)})
    assert found.status_code == 200 and region.demo.patient_nhs in found.text
    assert f'href="/patients/{region.demo.patient_id}"' in found.text
    record = client.get(f"/patients/{region.demo.patient_id}")
    assert record.status_code == 200
    assert region.demo.patient_nhs in record.text  # the banner shows the NHS number as 3-3-4
    sources = client.get(f"/patients/{region.demo.patient_id}/sources").text
    assert sources.count('<tr class="nhsuk-table__row">') >= 3  # header row + 2 or more organisations
    for section in ("problems", "medications", "allergies", "encounters", "results", "documents", "care-plans"):
        assert client.get(f"/patients/{region.demo.patient_id}/{section}").status_code == 200


def test_find_by_name_and_birth_date_validates_first(client: TestClient, region: Region) -> None:
    sign_in(client, "clinician", PASSWORD)
    bad = client.get("/patients", params={"by": "nhs", "nhs_number": "9990000019"})
    assert bad.status_code == 400 and "check digit" in bad.text
    missing = client.get("/patients", params={"by": "name", "family": "Gray"})
    assert missing.status_code == 400 and "Enter the date of birth" in missing.text


def test_break_glass_needs_a_reason_then_opens_the_record_and_alerts(client: TestClient, region: Region) -> None:
    sign_in(client, "nurse", PASSWORD)  # the browser tests break glass as the clinician: grants are per person
    found = client.get("/patients", params={"by": "nhs", "nhs_number": _digits(region.demo.other_nhs)})
    pid = re.search(r'href="/patients/([^"]+)"', found.text).group(1)
    refused = client.get(f"/patients/{pid}", follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == f"/patients/{pid}/access"
    page = client.get(f"/patients/{pid}/access")
    short = client.post(
        f"/patients/{pid}/access", data={"kind": "break-glass", "reason": "urgent", "csrf_token": csrf_of(page.text)}
    )
    assert short.status_code == 400 and "at least 10 characters" in short.text
    reason = "Collapsed in clinic, needs medication history"
    granted = client.post(
        f"/patients/{pid}/access", data={"kind": "break-glass", "reason": reason, "csrf_token": csrf_of(page.text)}
    )
    assert granted.status_code == 200 and "Emergency access (break glass)" in granted.text
    client.cookies.clear()
    sign_in(client, "privacy.officer", PASSWORD)
    alerts = client.get("/privacy/alerts")
    assert "Collapsed in clinic" in alerts.text and "Sam Okafor" in alerts.text
    alert_id = re.search(r'href="/privacy/alerts/([^"?]+)"', alerts.text).group(1)
    detail = client.get(f"/privacy/alerts/{alert_id}")
    assert detail.status_code == 200 and "Viewed the whole record" in detail.text


def test_patient_adds_a_home_reading_and_what_matters(client: TestClient, region: Region) -> None:
    sign_in(client, "patient", PASSWORD)
    page = client.get("/my-record/blood-pressure")
    token = csrf_of(page.text)
    form = {
        "systolic": "131",
        "diastolic": "84",
        "pulse": "",
        "day": "2",
        "month": "1",
        "year": "2025",
        "time": "07:45",
        "csrf_token": token,
    }
    wrong = client.post("/my-record/blood-pressure", data={**form, "diastolic": "140"})
    assert wrong.status_code == 400 and "must be lower than systolic" in wrong.text
    added = client.post("/my-record/blood-pressure", data=form)
    assert added.status_code == 200 and "131/84 mmHg has been added" in added.text
    assert "2 January 2025 at 07:45" in added.text
    said = client.post(
        "/my-record/what-matters-to-me", data={"statement": "Walking my dog every morning.", "csrf_token": token}
    )
    assert said.status_code == 200 and "Walking my dog every morning." in said.text
    client.cookies.clear()
    sign_in(client, "clinician", PASSWORD)
    seen = client.get(f"/patients/{region.demo.patient_id}")
    assert "Walking my dog every morning." in seen.text and "Written by the patient" in seen.text


def test_patient_sees_who_has_looked(client: TestClient, region: Region) -> None:
    sign_in(client, "nurse", PASSWORD)
    client.get(f"/patients/{region.demo.patient_id}")
    client.cookies.clear()
    sign_in(client, "patient", PASSWORD)
    page = client.get("/my-record/who-has-looked")
    assert page.status_code == 200 and "Sam Okafor" in page.text and "Nurse" in page.text


def test_privacy_officer_searches_the_audit_trail(client: TestClient, region: Region) -> None:
    sign_in(client, "privacy.officer", PASSWORD)
    page = client.get("/privacy/audit", params={"search": "1", "patient": _digits(region.demo.patient_nhs)})
    assert page.status_code == 200 and "event" in page.text
    bad = client.get("/privacy/audit", params={"search": "1", "from": "yesterday"})
    assert bad.status_code == 400


def test_without_nhsuk_frontend_installed_pages_still_work_unstyled() -> None:
    from starlette.applications import Starlette

    from sharedcare.web.assets import Assets
    from sharedcare.web.site import build_web

    web = build_web(lambda req: None, accounts=None, assets=Assets(None))
    with TestClient(Starlette(routes=web.routes())) as bare:
        page = bare.get("/sign-in")
        assert page.status_code == 200 and "styles are not installed" in page.text
        assert "nhsuk-frontend.min.css" not in page.text
        assert bare.get("/assets/nhsuk-frontend.min.css").status_code == 404
        assert bare.get("/assets/app.css").status_code == 200
        assert bare.get("/assets/../site.py").status_code == 404
