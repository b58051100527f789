"""Browser tests' wiring: Debian's Chromium driven by Playwright over the hub's real HTTP server.

- The browser is the system's ``chromium`` (``scripts/install-browser.sh``, run by ``make setup``),
  never one downloaded by Playwright. Missing, the tests skip with the command to install it —
  except under ``CI=true``, where a missing browser fails them: CI must prove the journeys.
- ``world`` (one per module): the hub's HTTP server, a Shopify and a ShipStation sandbox on real
  ports and the embedded worker, seeded with orders, some held (``tests/browser/world.py``).
- ``page``: a fresh browser context per test (its own cookies), recording every dialog, console
  error and page error; at teardown it saves a screenshot under ``test-artifacts/screenshots/``
  (gitignored; CI keeps the folder as the run's artefacts).
- ``shot(page, name)``: a named screenshot in the same folder, for the steps of a journey.
- ``assert_accessible(page)``: axe-core (axe-playwright-python) on the page; fails listing every
  serious or critical violation with the elements it found.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.browser.world import World, running_world

CHROMIUM = Path(os.environ.get("ORDERBRIDGE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ORDERBRIDGE_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "screenshots"
#: what fails the accessibility check (axe's impacts: minor, moderate, serious, critical)
BLOCKING_IMPACTS = ("serious", "critical")


def _missing_browser() -> str | None:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return None
    return (
        f"Chromium is not installed at {CHROMIUM}: run `scripts/install-browser.sh` as root (it runs "
        "`apt-get update && apt-get install -y --no-install-recommends chromium fonts-liberation`), "
        "or set ORDERBRIDGE_CHROMIUM to a Chromium binary"
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    missing = _missing_browser()
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the browser tests cannot run: {missing}", pytrace=False)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("browser"), sqlite_template) as running:
        yield running


@dataclass
class Watched:
    """What a page did that a test may assert on: dialogs opened, console errors, uncaught errors."""

    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)  # "failed to load" ones are in bad_responses
    page_errors: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)  # subresources answered ≥ 400 (not the favicon)


def _artefact_name(nodeid: str, suffix: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("tests/browser/")[-1]).strip("_")[:150] + suffix


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(10_000)
    p = context.new_page()
    watched = Watched()
    p.watched = watched

    def on_dialog(dialog: Any) -> None:
        watched.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.accept()  # hx-confirm's confirmation: a test that clicks an irreversible action accepts it

    p.on("dialog", on_dialog)

    def on_console(message: Any) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            watched.console_errors.append(message.text)

    def on_response(response: Any) -> None:
        sub = response.request.resource_type != "document"
        if response.status >= 400 and sub and not response.url.endswith("/favicon.ico"):  # Chromium asks for it
            watched.bad_responses.append(f"{response.status} {response.url}")

    p.on("console", on_console)
    p.on("response", on_response)
    p.on("pageerror", lambda e: watched.page_errors.append(str(e)))
    try:
        yield p
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            p.screenshot(path=str(ARTIFACTS / _artefact_name(request.node.nodeid, "-last.png")), full_page=True)
        finally:
            context.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Any:
    """``shot(page, "step")`` saves a full-page screenshot of a journey's step as a test artefact."""

    def take(p: Any, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / _artefact_name(request.node.nodeid, f"-{name}.png")
        p.screenshot(path=str(path), full_page=True)
        return path

    return take


def assert_accessible(p: Any, what: str = "", *, impacts: tuple[str, ...] = BLOCKING_IMPACTS) -> None:
    """axe-core on the page as it is now; fail listing each violation of a blocking impact."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(p)
    blocking = [v for v in results.response["violations"] if v.get("impact") in impacts]
    if blocking:
        lines = [f"axe found {len(blocking)} serious/critical violation(s) on {what or p.url}:"]
        for v in blocking:
            targets = ", ".join(" ".join(map(str, n.get("target", []))) for n in v.get("nodes", [])[:5])
            lines.append(f"- {v['id']} ({v['impact']}): {v['help']} — {targets}  [{v.get('helpUrl', '')}]")
        raise AssertionError("\n".join(lines))


def sign_in(p: Any, world: World, role: str = "admin", *, next_path: str = "/account") -> None:
    """Sign in through the real form as the world's user of ``role``; wait until the page asked for."""
    from tests.browser.world import PASSWORD

    p.goto(f"{world.url}/login?next={next_path}")
    p.get_by_label("E-mail address").fill(world.email(role))
    p.get_by_label("Password").fill(PASSWORD)
    p.get_by_role("button", name="Sign in").click()
    p.wait_for_url(f"{world.url}{next_path}")


@pytest.fixture
def signed_in(page: Any, world: World) -> Any:
    """A page signed in as the world's admin, on /account."""
    sign_in(page, world, "admin")
    return page
