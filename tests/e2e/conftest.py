"""Browser tests: Playwright for Python driving Debian's Chromium against a real server on
loopback. No browser is downloaded: `make browser` (part of `make test`) installs Debian's
package when it is missing, and a missing browser fails here rather than skipping, so CI
cannot pass without having looked at the pages.

Every page visited through `visit` gets an accessibility check (axe-core, vendored in
tests/e2e/vendor; no serious or critical violation) and screenshots at 1280 and 390 px wide
in test-artifacts/screenshots/ (the README's are copied from there into docs/screenshots/)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path(os.environ.get("SIGNALBOX_CHROMIUM", "/usr/bin/chromium"))
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SHOTS = Path(os.environ.get("SIGNALBOX_SCREENSHOTS", Path(__file__).parents[2] / "test-artifacts" / "screenshots"))
WIDTHS = (1280, 390)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    with sync_playwright() as playwright:
        # Root in a container has no user namespace for Chromium's sandbox.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    # bypass_csp: axe is injected as an inline script, which a strict page policy would block.
    context = chromium.new_context(viewport={"width": WIDTHS[0], "height": 900}, bypass_csp=True)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in results["violations"] if v.get("impact") in ("serious", "critical")]


def describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}" for v in violations
    )


def visit(page: Page, url: str, shot: str | None = None) -> None:
    """Opens a page, checks it with axe at both widths, and saves its screenshots."""
    answer = page.goto(url)
    assert answer is not None and answer.status < 400, f"{url}: {answer.status if answer else 'no answer'}"
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        bad = accessibility_violations(page)
        assert not bad, f"{url} at {width} px:\n{describe(bad)}"
        if shot:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"{shot}-{width}.png"), full_page=True)
        # Nothing may need a sideways scroll on a phone.
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{url} at {width} px scrolls sideways by {overflow} px"
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def sign_in(page: Page, base: str, workspace: str, email: str, password: str) -> None:
    page.goto(f"{base}/login?workspace={workspace}")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/today**")
