"""Fixtures for the console's browser tests: a `roster serve --demo` the Rust test
`tests/console.rs` started (its root in ROSTER_CONSOLE_URL), reset before each test, and
Debian's Chromium driven by Playwright (never a downloaded browser)."""

import json
import os
import urllib.request

import pytest
from playwright.sync_api import sync_playwright

BASE = os.environ["ROSTER_CONSOLE_URL"].rstrip("/")
CHROMIUM = os.environ.get("ROSTER_CHROMIUM", "/usr/bin/chromium")
AXE = os.environ["ROSTER_AXE_JS"]
SHOTS = os.environ.get("ROSTER_CONSOLE_SHOTS")

DEMO = ("user@example.com", "144c9defac04969c7bfad8efaa8ea194")
JANE = ("jane@example.com", "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c")
DEMO_ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
DNS_ROLE = "87e7860bc4c445faba075646dac38cca"


def api(method, path, body=None, creds=DEMO, root=False):
    """A call to the API (or, with root, to the server's own paths) as `creds`."""
    url = BASE + (path if root else "/client/v4" + path)
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if creds:
        headers.update({"X-Auth-Email": creds[0], "X-Auth-Key": creds[1]})
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"null")


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(autouse=True)
def fresh_demo():
    status, _ = api("POST", "/_roster/reset", root=True, creds=None)
    assert status == 200
    api("DELETE", "/_roster/requests", root=True, creds=None)


def _page(browser, javascript):
    context = browser.new_context(
        java_script_enabled=javascript, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    errors = []
    # A page that tries to run markup as script, or breaks its own policy, fails the test.
    page.on("dialog", lambda d: errors.append(f"dialog: {d.message}") or d.dismiss())
    page.on(
        "console",
        lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.errors = errors
    page.javascript = javascript
    return context, page


@pytest.fixture
def page(browser):
    context, page = _page(browser, True)
    yield page
    assert page.errors == [], page.errors
    context.close()


@pytest.fixture
def page_nojs(browser):
    context, page = _page(browser, False)
    yield page
    assert page.errors == [], page.errors
    context.close()


@pytest.fixture(params=["javascript", "no javascript"])
def any_page(request, browser):
    """The same flow with JavaScript on (htmx swaps pages in place) and off (plain forms)."""
    context, page = _page(browser, request.param == "javascript")
    yield page
    assert page.errors == [], page.errors
    context.close()


def sign_in(page, creds=DEMO):
    page.goto(BASE + "/console/sign-in")
    page.get_by_label("Email").fill(creds[0])
    page.get_by_label("API key").fill(creds[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(BASE + "/console/")


def check_accessible(page, name):
    """No serious or critical axe-core violation on the page; a screenshot when asked.
    axe runs in the page, so only where JavaScript is on (the same pages are checked so)."""
    if not page.javascript:
        return
    with open(AXE) as f:
        page.evaluate(f.read())
    found = page.evaluate("axe.run().then(r => r.violations)")
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in found
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{name}: {bad}"
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)
