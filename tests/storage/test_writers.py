"""One writer per ledger fact: no module writes a ledger table but that table's repository.

The scan reads every module of ``src/orderbridge`` (migrations aside: they transform the schema and
its rows once, by revision) as a syntax tree and reports each statement that inserts into, updates
or deletes from a ledger table outside ``storage/repos/<its module>.py``:

- a call of an INSERT/UPDATE/DELETE construct or helper given the table — ``insert(orders)``,
  ``sa.update(postings)``, ``sqlite.insert(shipments)``, ``dialect_insert(conn)(orders)``,
  ``insert_rows(conn, events, …)``, ``_insert(conn)(fulfilment_pushes)``;
- the table's own ``.insert()`` / ``.update()`` / ``.delete()``;
- SQL text naming the table after ``INSERT INTO``, ``UPDATE`` or ``DELETE FROM``.

A table is recognised by the name it is imported under from ``orderbridge.storage.tables`` (any
alias), as an attribute of that module, or by its name in ``metadata.tables[...]``. What the scan
cannot see — a table passed around under another variable name — is what review is for; the test
below shows each pattern it does see being caught.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from orderbridge.domain.states import PushState
from orderbridge.storage import tables

SRC = Path(__file__).resolve().parents[2] / "src" / "orderbridge"
MIGRATIONS = "storage/migrations/"

#: each ledger table → the repository module that alone writes it
WRITERS = {
    "orders": "orders",
    "order_skus": "orders",
    "order_tallies": "orders",  # the tallies change with the states they count (decision 110)
    "reason_tallies": "order_reasons",  # and the reason tallies with the reasons (decision 147)
    "order_reasons": "order_reasons",
    "events": "events",
    "postings": "postings",
    "posting_attempts": "postings",
    "shipments": "shipments",
    "fulfilment_pushes": "fulfilment_pushes",
    # 0009: who signs in, the audit trail, tenant settings
    "users": "users",
    "web_sessions": "web_sessions",
    "api_tokens": "api_tokens",
    "login_attempts": "login_attempts",
    "user_actions": "user_actions",
    "tenant_settings": "tenant_settings",
    # 0015: manual orders (issue #14)
    "idempotency_keys": "idempotency_keys",
    "manual_numbers": "manual_numbers",
    # 0016: CSV imports kept between preview and confirmation
    "import_uploads": "imports",
    "import_chunks": "imports",
    # 0017: every version of an order's content (issue #15), appended by the orders writer through it
    "order_versions": "order_versions",
    # 0018: order updates (issue #15)
    "order_updates": "order_updates",
    # 0020: what is asked of an order at its channel (issue #16)
    "channel_intents": "channel_intents",
}
_TABLES_MODULE = "orderbridge.storage.tables"
_WRITE_WORDS = ("insert", "update", "delete", "upsert")
_SQL = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+[\"`]?(\w+)")


@dataclass(frozen=True)
class Write:
    path: str
    line: int
    table: str
    how: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.how} writes {self.table} (only storage/repos/{WRITERS[self.table]}.py may)"
        )


def _callee(node: ast.expr) -> str:
    """The last name of what is called: ``insert`` for ``sa.insert``, ``_insert`` for ``_insert(conn)``."""
    if isinstance(node, ast.Call):
        return _callee(node.func)
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _writes_word(name: str) -> bool:
    return any(word in name.lower() for word in _WRITE_WORDS)


def scan(source: str, path: str) -> list[Write]:
    tree = ast.parse(source)
    names: dict[str, str] = {}  # local name → ledger table
    modules: set[str] = set()  # local names of orderbridge.storage.tables
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == _TABLES_MODULE:
            for alias in node.names:
                if alias.name in WRITERS:
                    names[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module == "orderbridge.storage":
            modules.update(a.asname or a.name for a in node.names if a.name == "tables")
        elif isinstance(node, ast.Import):
            modules.update(a.asname for a in node.names if a.name == _TABLES_MODULE and a.asname)

    def table_of(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return names.get(node.id)
        if isinstance(node, ast.Attribute) and node.attr in WRITERS:
            base = node.value
            if isinstance(base, ast.Name) and base.id in modules:
                return node.attr
            if isinstance(base, ast.Attribute) and base.attr == "tables":  # orderbridge.storage.tables.orders
                return node.attr
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
            if isinstance(key, str) and key in WRITERS and _callee(node.value) == "tables":
                return key
        return None

    docstrings = {
        id(body[0].value)
        for body in (getattr(n, "body", None) for n in ast.walk(tree))
        if isinstance(body, list)
        and body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    }
    found: list[Write] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            callee = _callee(node.func)
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("insert", "update", "delete"):
                table = table_of(node.func.value)
                if table is not None:
                    found.append(Write(path, node.lineno, table, f"{table}.{node.func.attr}()"))
                    continue
            if _writes_word(callee):
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    table = table_of(arg)
                    if table is not None:
                        found.append(Write(path, node.lineno, table, f"{callee}(…{table}…)"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            for match in _SQL.finditer(node.value):
                if match.group(1) in WRITERS:
                    found.append(Write(path, node.lineno, match.group(1), f"SQL {match.group(0)!r}"))
    return found


def _allowed(write: Write) -> bool:
    return write.path == f"storage/repos/{WRITERS[write.table]}.py"


def violations(root: Path = SRC) -> list[Write]:
    out = []
    for file in sorted(root.rglob("*.py")):
        rel = file.relative_to(root).as_posix()
        if rel.startswith(MIGRATIONS):
            continue
        out.extend(w for w in scan(file.read_text(), rel) if not _allowed(w))
    return out


def test_no_ledger_table_is_written_outside_its_repository() -> None:
    found = violations()
    assert not found, "ledger tables written outside their one writer:\n" + "\n".join(map(str, found))


def test_each_repository_writes_its_own_table() -> None:
    """The repositories do write (the scan sees them), each only its own tables."""
    seen: dict[str, set[str]] = {}
    for file in sorted((SRC / "storage" / "repos").glob("*.py")):
        for w in scan(file.read_text(), f"storage/repos/{file.name}"):
            seen.setdefault(w.table, set()).add(file.stem)
    assert seen == {table: {module} for table, module in WRITERS.items()}


_VIOLATIONS = {
    "core insert": "from orderbridge.storage.tables import orders\nfrom sqlalchemy import insert\ninsert(orders)",
    "aliased update": "from orderbridge.storage.tables import postings as p\nimport sqlalchemy as sa\nsa.update(p)",
    "module attribute": "from orderbridge.storage import tables\nimport sqlalchemy as s\ns.delete(tables.shipments)",
    "module alias": "import orderbridge.storage.tables as t\nt.fulfilment_pushes.update()",
    "table method": "from orderbridge.storage.tables import events\nevents.insert()",
    "dialect insert": (
        "from orderbridge.storage.tables import fulfilment_pushes\nfrom sqlalchemy.dialects import sqlite\n"
        "sqlite.insert(fulfilment_pushes).on_conflict_do_nothing()"
    ),
    "helper of a helper": "from orderbridge.storage.tables import shipments\n_insert(conn)(shipments).values()",
    "bulk helper": "from orderbridge.storage.tables import posting_attempts\ninsert_rows(c, posting_attempts, (), [])",
    "conflict helper": "from orderbridge.storage.tables import order_reasons\ndialect_insert(conn)(order_reasons)",
    "keyword": "from orderbridge.storage.tables import orders\nupdate(table=orders)",
    "metadata": "from orderbridge.storage.tables import metadata\nupdate(metadata.tables['orders'])",
    "raw SQL": "conn.exec_driver_sql('UPDATE orders SET state = ? WHERE id = ?', ('posted', 1))",
    "raw SQL, quoted": "text('DELETE FROM \"postings\" WHERE id = 1')",
}


@pytest.mark.parametrize("source", list(_VIOLATIONS.values()), ids=list(_VIOLATIONS))
def test_the_scan_catches_a_write_outside_the_repository(source: str) -> None:
    found = scan(source, "services/elsewhere.py")
    assert found and not any(_allowed(w) for w in found)


def test_the_scan_fails_the_suite_for_a_planted_write(tmp_path: Path) -> None:
    """A copy of the tree with one planted write (the old ``retry_order`` state update) fails."""
    planted = tmp_path / "orderbridge"
    for file in SRC.rglob("*.py"):
        target = planted / file.relative_to(SRC)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(file.read_text())
    queries = planted / "services" / "queries.py"
    queries.write_text(
        queries.read_text()
        + "\n\ndef _planted(conn):\n    from sqlalchemy import update\n"
        + "    conn.execute(update(orders).where(orders.c.id == 1).values(state='held'))\n"
    )
    (found,) = set(violations(planted)) - set(violations())
    assert (found.path, found.table) == ("services/queries.py", "orders")


@pytest.mark.parametrize(
    "source",
    [
        "from orderbridge.storage.tables import orders\nselect(orders).where(orders.c.id == 1)",
        "from orderbridge.storage.tables import orders\nd = {}\nd.update(orders=1)",  # not the table
        "from orderbridge.storage.tables import mappings\nupdate(mappings)",  # not a ledger table
        '"""UPDATE orders is told in a docstring"""',
        "message = 'orders update later'",
    ],
)
def test_reads_and_other_tables_are_not_writes(source: str) -> None:
    assert scan(source, "services/elsewhere.py") == []


def test_the_push_states_check_names_every_declared_state() -> None:
    (check,) = [c for c in tables.fulfilment_pushes.constraints if c.name == "ck_fulfilment_pushes_status"]
    named = set(re.findall(r"'(\w+)'", str(check.sqltext)))  # type: ignore[attr-defined]
    assert named == {s.value for s in PushState}
