"""Seed 002 in a real browser: a package that imports files refuses one with an error file; the
order page shows the package's words at the top (as text, never markup), and "Retry now" writes
the order to a new file — with the embedded worker running, over the hub's real HTTP server."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orderbridge.services.connections import add_connection
from tests.browser.conftest import sign_in
from tests.browser.world import World, running_world

MESSAGE = "<img src=x onerror=alert(1)> Item 'TEE' has no ledger account"


def _files(drop: Path) -> list[Path]:
    return sorted(p for p in drop.iterdir() if p.is_file() and p.suffix == ".csv")


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text("utf-8"), newline="")))


@pytest.fixture(scope="module")
def drop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("drop")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path, drop: Path) -> Iterator[World]:
    def seed(w: World) -> None:
        columns = ["order_id", "order_number", "sku", "quantity", "total"]
        add_connection(
            w.scope, "books", "file_export", "", {}, {"directory": str(drop), "template": {"columns": columns}}
        )

    with running_world(tmp_path_factory.mktemp("file-export"), sqlite_template, seed=seed) as w:
        yield w


def test_the_packages_refusal_is_on_the_order_page_and_retry_writes_a_new_file(
    world: World, drop: Path, page: Any, shot: Any
) -> None:
    world.wait_for("the orders' file in the drop directory", lambda: bool(_files(drop)))
    (first,) = _files(drop)
    external_id = _rows(first)[0]["order_id"]
    (drop / f"{first.name}.err").write_text(MESSAGE, encoding="utf-8")
    world.wait_for("the refusal to hold the order", lambda: world.states()[external_id] == "held")

    oid = world.order_id(external_id)
    sign_in(page, world, "operator", next_path=f"/orders/{oid}")
    problem = page.locator("section[aria-labelledby='problem-title']")
    assert "Rejected by the destination" in problem.inner_text()
    assert MESSAGE in problem.inner_text()  # the package's words, as text
    assert page.locator("img[src='x']").count() == 0 and not page.watched.dialogs
    shot(page, "refused-by-the-package")

    page.get_by_role("button", name="Retry now").click()
    world.wait_for(
        "the order to be written to a new file",
        lambda: any(r["order_id"] == external_id for f in _files(drop) if f != first for r in _rows(f)),
    )
    world.wait_for("the order to be posted again", lambda: world.states()[external_id] == "posted")
    page.reload()
    assert "Posted" in page.locator("h1").inner_text()
    assert not page.watched.page_errors
