"""Fixtures for the web application's tests: a small synthetic region loaded once, with the demo accounts, served
in process (TestClient) and, for the browser tests, by uvicorn on a loopback port to headless Chromium."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from sharedcare.app import Server, build
from sharedcare.generate.demo import load_records
from sharedcare.generate.region import RegionConfig, iter_region_records
from sharedcare.settings import Settings
from sharedcare.web.demo_accounts import DemoAccounts, create_demo_accounts

REGION_PEOPLE = 60


class Region:
    def __init__(self, server: Server, demo: DemoAccounts) -> None:
        self.server, self.demo = server, demo


@pytest.fixture(scope="session")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    """Security on, rate limits off, a 60-person region (seed 1): every web test shares it (read mostly)."""
    db = tmp_path_factory.mktemp("web") / "web.db"
    server = build(Settings(db=f"sqlite:///{db}", sqlite_synchronous="OFF", rate_limit_per_second=0))
    summary = load_records(server, iter_region_records(RegionConfig(patients=REGION_PEOPLE, seed=1)))
    assert not summary.errors, summary.errors
    demo = create_demo_accounts(server)
    try:
        yield Region(server, demo)
    finally:
        server.close()


@pytest.fixture
def client(region: Region) -> Iterator[TestClient]:
    with TestClient(region.server.asgi, base_url="http://testserver") as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(r"csrf_token=([^\"&]+)", html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str) -> object:
    token = csrf_of(client.get("/sign-in").text)
    return client.post("/sign-in", data={"username": username, "password": password, "csrf_token": token})


# --- a live server for the browser ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_url(region: Region) -> Iterator[str]:
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(region.server.asgi, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = Path(__file__).resolve().parents[2] / "src" / "sharedcare" / "web" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (scripts/test.sh installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def accessibility_violations(page: object) -> list[dict]:
    """axe-core (WCAG 2.0/2.1 A and AA rules) run in the page; the serious and critical violations."""
    if not AXE.is_file():
        pytest.skip("axe-core is not installed (npm install in src/sharedcare/web)")
    page.evaluate(AXE.read_text())  # evaluate is not subject to the page's Content-Security-Policy
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"][:5]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def look(page: object, name: str) -> None:
    """Check the page's accessibility and keep screenshots of it at phone and desktop widths."""
    violations = accessibility_violations(page)
    assert not violations, f"{name}: {violations}"
    ARTIFACTS.mkdir(exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


@pytest.fixture
def page(browser: object, live_url: str) -> Iterator[object]:
    """A fresh browser context (no cookies) per test, at desktop size."""
    context = browser.new_context(viewport=DESKTOP, base_url=live_url)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()
