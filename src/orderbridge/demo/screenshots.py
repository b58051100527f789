"""``orderbridge demo --screenshots DIR``: a picture of each main screen, over the demo's data.

The pictures in ``docs/screenshots/`` are made by this, not by hand, so they show the portal as it
is (``scripts/screenshots.sh`` runs it). It signs in to the portal over the finished demo with
Debian's Chromium driven by Playwright — both development tools (``make setup`` installs them),
imported only here — and saves one PNG per screen: the dashboard, the inbox, the page of a held
order, the exceptions, the mappings, the connections and the audits.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orderbridge.demo import DemoRun, demo_login, portal_running
from orderbridge.errors import SettingsError

CHROMIUM = Path(os.environ.get("ORDERBRIDGE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: file name → the portal's path (a held order's page is found from the exceptions screen)
SCREENS: dict[str, str] = {
    "dashboard": "/dashboard",
    "inbox": "/orders",
    "exceptions": "/holds",
    "mappings": "/mappings",
    "connections": "/connections",
    "audits": "/audits",
}


def take_screenshots(run: DemoRun, folder: Path, *, say: Callable[[str], None] = lambda _m: None) -> list[Path]:
    """Save ``<screen>.png`` for each main screen in ``folder``; return the paths written. A screen
    the portal does not serve is left out and ``say`` is told."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise SettingsError(
            "screenshots need Playwright, a development dependency",
            hint="Run `make setup` (it installs the development tools), then use `.venv/bin/orderbridge`.",
        ) from None
    if not CHROMIUM.is_file():
        raise SettingsError(
            f"screenshots need Chromium at {CHROMIUM}",
            hint="Run `scripts/install-browser.sh` as root (Debian's chromium), or set ORDERBRIDGE_CHROMIUM.",
        )
    folder.mkdir(parents=True, exist_ok=True)
    email, password = demo_login(run)
    written: list[Path] = []
    with portal_running(run) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="en-US")
            sign_in(page, url, email, password)
            for name, path in SCREENS.items():
                if not _opened(page, url + path, name, say):
                    continue
                written.append(_save(page, folder, name))
                if name == "exceptions":
                    held = held_order_path(page)
                    if held is not None and _opened(page, url + held, "a held order's page", say):
                        written.append(_save(page, folder, "order-held"))
        finally:
            browser.close()
    return written


def sign_in(page: Any, url: str, email: str, password: str) -> None:
    page.goto(url + "/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda u: "/login" not in u)


def held_order_path(page: Any) -> str | None:
    """The first order page linked from the exceptions screen (a held order), if it links one."""
    links = page.locator("main a[href^='/orders/']")
    return str(links.first.get_attribute("href")) if links.count() else None


def _opened(page: Any, url: str, name: str, say: Callable[[str], None]) -> bool:
    """Open ``url``; a screen the portal does not serve (yet) is said and left out, not photographed."""
    response = page.goto(url)
    if response is None or response.status != 200:
        status = response.status if response is not None else "no answer"
        say(f"not photographed: {name} ({url} answered {status})")
        return False
    if "/login" in page.url:
        raise AssertionError(f"the portal sent the screenshots' browser to sign in again at {url}")
    return True


def _save(page: Any, folder: Path, name: str) -> Path:
    page.wait_for_load_state("networkidle")
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
