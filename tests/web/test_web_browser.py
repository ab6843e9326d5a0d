"""Each role's journey in headless Chromium (Debian's, via Playwright): every page visited is checked with axe-core
(no serious or critical WCAG 2.1 A/AA violations) and photographed at phone and desktop sizes into
tests/web/artifacts/."""

from __future__ import annotations

import pytest
from conftest import Region, look

PASSWORD = "sharedcare-demo"


def _submit(page: object, button: str) -> None:
    """Press a form's button and wait for the page it leads to."""
    with page.expect_navigation():
        page.get_by_role("button", name=button).click()


def _sign_in(page: object, username: str) -> None:
    page.goto("/sign-in")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    _submit(page, "Sign in")


def test_clinician_finds_and_reads_a_record_from_several_organisations(page: object, region: Region) -> None:
    page.goto("/sign-in")
    look(page, "01-sign-in")
    _sign_in(page, "clinician")
    page.fill("#nhs_number", region.demo.patient_nhs)
    _submit(page, "Search by NHS number")
    look(page, "02-clinician-find-patient")
    with page.expect_navigation():
        page.click(".sc-person a")
    assert page.locator(".sc-banner .sc-nhs-number").inner_text() == region.demo.patient_nhs
    sources = page.locator(".sc-source-list li").count()
    assert sources >= 2, "the record should join data from several organisations"
    look(page, "03-clinician-record-summary")
    for section in ("results", "encounters", "medications", "care-plans", "sources"):
        with page.expect_navigation():
            page.click(f".sc-record-nav a[href$='/{section}']")
        assert page.locator(f".sc-record-nav a[aria-current='page'][href$='/{section}']").count() == 1
        look(page, f"04-clinician-record-{section}")
    page.click(".sc-record-nav a[href$='/results']")
    assert page.locator("svg.sc-chart").count() >= 1


def test_clinician_breaks_glass_with_a_reason(page: object, region: Region) -> None:
    _sign_in(page, "clinician")
    page.goto(f"/patients?by=nhs&nhs_number={region.demo.other_nhs.replace(' ', '')}")
    with page.expect_navigation():
        page.click(".sc-person a")
    assert "/access" in page.url
    look(page, "05-clinician-access-request")
    page.check("#kind-break-glass")
    page.fill("#reason", "Brought in unconscious; need medicines and allergies")
    _submit(page, "Ask for access")
    assert page.locator(".sc-grant").is_visible()
    assert page.locator(".sc-banner").is_visible()
    look(page, "06-clinician-record-after-break-glass")


def test_patient_adds_a_blood_pressure_reading_and_sees_it(page: object, region: Region) -> None:
    _sign_in(page, "patient")
    assert page.url.endswith("/my-record")
    look(page, "07-patient-record")
    with page.expect_navigation():
        page.click("a.nhsuk-header__navigation-link[href='/my-record/blood-pressure']")
    page.fill("#systolic", "142")
    page.fill("#diastolic", "91")
    page.fill("#day", "3")
    page.fill("#month", "2")
    page.fill("#year", "2025")
    page.fill("#time", "08:10")
    _submit(page, "Add reading")
    assert "142/91 mmHg has been added" in page.locator(".nhsuk-notification-banner").inner_text()
    page.click("text=Blood pressure readings as a table")
    assert page.locator("td", has_text="3 February 2025 at 08:10").count() == 1
    look(page, "08-patient-blood-pressure")
    page.goto("/my-record/what-matters-to-me")
    page.fill("#statement", "Staying independent at home and seeing my grandchildren.")
    _submit(page, "Save")
    assert "Staying independent" in page.locator(".sc-panel--matters").inner_text()
    look(page, "09-patient-what-matters")
    page.goto("/my-record/who-has-looked")
    look(page, "10-patient-who-has-looked")


def test_privacy_officer_sees_the_break_glass_alert(page: object, region: Region) -> None:
    _sign_in(page, "clinician")
    page.goto(f"/patients?by=nhs&nhs_number={region.demo.other_nhs.replace(' ', '')}")
    pid = page.locator(".sc-person a").get_attribute("href").split("/")[2]
    page.goto(f"/patients/{pid}/access")
    page.check("#kind-break-glass")
    page.fill("#reason", "Out of hours emergency call, patient confused")
    _submit(page, "Ask for access")
    page.context.clear_cookies()
    _sign_in(page, "privacy.officer")
    assert page.url.endswith("/privacy/alerts")
    assert page.locator("td", has_text="Out of hours emergency call").count() >= 1
    look(page, "11-privacy-alerts")
    with page.expect_navigation():
        page.locator("a[href^='/privacy/alerts/']").first.click()
    look(page, "12-privacy-alert-review")
    page.goto(f"/privacy/audit?search=1&patient={pid}")
    look(page, "13-privacy-audit-search")


@pytest.mark.parametrize("username", ["nurse", "social.worker", "admin", "analyst"])
def test_other_roles_sign_in_to_their_start_page(page: object, username: str) -> None:
    _sign_in(page, username)
    assert "/sign-in" not in page.url
    look(page, f"14-{username.replace('.', '-')}-start")
