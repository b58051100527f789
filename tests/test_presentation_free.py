"""The layers that decide what to do never spell how it reads: no CLI command, no URL of the hub.

A fix is data (``orderbridge/fixes.py``); the CLI renders it as a command (``cli/fixes.py``), an
alert as a link (``web/links.py``), the portal as a form. So no string in ``domain/``,
``services/``, ``connectors/``, ``storage/`` or ``runtime/`` may name an ``orderbridge <command>``
or build a URL: neither an ``http://``/``https://`` literal nor a string joining a base URL and a
path. Scanned with ``ast``, so docstrings (which describe the commands) are left alone.

Two things are not presentation and are allowed, each where it is named below: a connector talks
to its remote system, so it joins the connection's own ``base_url`` with its API's paths and may
declare the remote's default address (``DEFAULT_BASE_URL``); and migrations describe the stored
forms of the past, commands included (0007 rewrites them).
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "orderbridge"
LAYERS = ("domain", "services", "connectors", "storage", "runtime")
SKIPPED = ("storage/migrations/",)

COMMAND = re.compile(r"\borderbridge [a-z]")
URL_LITERAL = re.compile(r"https?://")
#: a connector joins the connection's own address with its remote API's paths
REMOTE_BASE = re.compile(r"^self\.(client\.)?base_url$")


@dataclass(frozen=True)
class Finding:
    where: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.what}"


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (or bare strings documenting an attribute)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        for stmt in body:
            if (
                isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            ):
                found.add(id(stmt.value))
    return found


def _mentions_url(node: ast.AST) -> str | None:
    """The source of an expression that names a URL (``settings.public_url``, ``base_url``), or None."""
    source = ast.unparse(node)
    return source if "url" in source.lower() else None


def _joins(node: ast.JoinedStr | ast.BinOp) -> Iterator[tuple[str, str]]:
    """(base expression, the literal after it) for each URL-named expression followed by a path."""
    parts: list[ast.AST] = list(node.values) if isinstance(node, ast.JoinedStr) else [node.left, node.right]
    for here, after in itertools.pairwise(parts):
        base = here.value if isinstance(here, ast.FormattedValue) else here
        if isinstance(base, ast.Constant):
            continue
        source = _mentions_url(base)
        if source is None:
            continue
        if "public_url" in source:
            yield source, "the hub's own address"
        elif isinstance(after, ast.Constant) and isinstance(after.value, str) and after.value.startswith("/"):
            yield source, after.value


def _allowed_constants(tree: ast.Module, in_connectors: bool) -> set[int]:
    """A connector's declared default address of its remote (``DEFAULT_BASE_URL = "https://…"``)."""
    if not in_connectors:
        return set()
    allowed: set[int] = set()
    for stmt in tree.body:
        targets = (
            stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        )
        value = getattr(stmt, "value", None)
        if any(isinstance(t, ast.Name) and t.id.endswith("BASE_URL") for t in targets) and isinstance(
            value, ast.Constant
        ):
            allowed.add(id(value))
    return allowed


def scan(path: Path) -> list[Finding]:
    return scan_source(path.relative_to(PACKAGE).as_posix(), path.read_text())


def scan_source(relative: str, text: str) -> list[Finding]:
    """The findings in module ``text``, found at ``relative`` (``services/notify/digest.py``)."""
    tree = ast.parse(text, filename=relative)
    docs = _docstrings(tree)
    in_connectors = relative.startswith("connectors/")
    allowed = _allowed_constants(tree, in_connectors)
    inside_fstring: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            inside_fstring.update(id(v) for v in node.values)
    findings: list[Finding] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docs or id(node) in allowed:
                continue
            if COMMAND.search(node.value):
                findings.append(Finding(relative, node.lineno, f"a CLI command in {node.value!r}"))
            if URL_LITERAL.search(node.value):
                findings.append(Finding(relative, node.lineno, f"a URL literal in {node.value!r}"))
        elif isinstance(node, ast.JoinedStr | ast.BinOp):
            if isinstance(node, ast.BinOp) and not isinstance(node.op, ast.Add):
                continue
            for base, path_part in _joins(node):
                if in_connectors and REMOTE_BASE.match(base):
                    continue
                findings.append(Finding(relative, node.lineno, f"a URL built from {base} and {path_part!r}"))
    return findings


def sources() -> list[Path]:
    found = []
    for layer in LAYERS:
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            if not any(skip in path.relative_to(PACKAGE).as_posix() for skip in SKIPPED):
                found.append(path)
    return found


def test_the_scan_covers_every_layer() -> None:
    scanned = {p.relative_to(PACKAGE).parts[0] for p in sources()}
    assert scanned == set(LAYERS)


def test_no_cli_command_and_no_url_is_spelled_below_the_entrypoints() -> None:
    findings = [f for path in sources() for f in scan(path)]
    assert not findings, "render fixes in cli/ or web/, not here:\n" + "\n".join(map(str, findings))


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ('x = "Map it: orderbridge mappings set sku A"', "a CLI command"),
        ('x = f"run orderbridge reconcile {name}"', "a CLI command"),
        ('x = "see https://hub.example.com/holds"', "a URL literal"),
        ("x = f\"{settings.public_url.rstrip('/')}/holds\"", "a URL built from"),
        ('x = settings.public_url + "/holds"', "a URL built from"),
        ('x = f"{base_url}/connections/{name}"', "a URL built from"),
        ('def f():\n    """Run ``orderbridge holds`` at https://x/."""\n', None),
        ('x = "OrderBridge retries automatically."', None),
        ('x = f"{row.name} at {self.base_url} (HTTP 404)"', None),
    ],
)
def test_the_scan_finds_commands_and_urls_and_leaves_docstrings(source: str, found: str | None) -> None:
    findings = scan_source("services/example.py", source)
    if found is None:
        assert findings == []
    else:
        assert findings and all(found in f.what for f in findings)


def test_a_connector_may_join_its_remote_address_but_not_the_hubs() -> None:
    where = "connectors/example/client.py"
    assert scan_source(where, 'DEFAULT_BASE_URL = "https://api.example.com"\nx = f"{self.base_url}/admin/x"') == []
    assert scan_source(where, 'x = f"{settings.public_url}/webhooks"')
    assert scan_source("services/example.py", 'x = f"{self.base_url}/admin/x"')
