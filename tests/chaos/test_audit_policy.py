"""The dependency audit's policy (scripts/audit-deps.py, decision 238) over pip-audit's JSON report:
a fixable vulnerability fails, one with no fix is printed and passes, no data is said and passes
(or fails under ORDERBRIDGE_AUDIT_STRICT=1)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "audit-deps.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dep(name: str, *vulns: tuple[str, list[str]]) -> dict[str, object]:
    return {"name": name, "version": "1.0", "vulns": [{"id": v, "fix_versions": f} for v, f in vulns]}


def test_a_vulnerability_with_a_fix_fails_naming_the_version() -> None:
    code, lines = load().judge({"dependencies": [dep("httpx"), dep("jinja2", ("GHSA-1", ["3.1.9"]))]})
    assert code == 1
    assert "VULNERABLE: jinja2 1.0: GHSA-1 (fixed in 3.1.9)" in lines
    assert lines[-1].startswith("pip-audit: 2 packages audited, 1 fixable")


def test_a_vulnerability_without_a_fix_is_printed_and_does_not_fail() -> None:
    code, lines = load().judge({"dependencies": [dep("orjson", ("PYSEC-9", []))]})
    assert code == 0
    assert lines[0] == "UNFIXED (not failing the run): orjson 1.0: PYSEC-9 (no fixed version published yet)"


@pytest.mark.parametrize(("strict", "expected"), [("", 0), ("1", 2)])
def test_no_vulnerability_data_is_said_and_fails_only_when_strict(
    monkeypatch: pytest.MonkeyPatch, strict: str, expected: int
) -> None:
    monkeypatch.setenv("ORDERBRIDGE_AUDIT_STRICT", strict)
    report = {
        "dependencies": [{"name": "alembic", "skip_reason": "Dependency not found on PyPI and could not be audited"}]
    }
    code, lines = load().judge(report)
    assert code == expected
    assert lines[0].startswith("NOT AUDITED:")


def test_a_package_unknown_to_the_index_is_listed_as_not_audited() -> None:
    report = {"dependencies": [dep("httpx"), {"name": "private-pkg", "skip_reason": "Dependency not found on PyPI"}]}
    code, lines = load().judge(report)
    assert code == 0 and lines[-1].endswith("NOT AUDITED (unknown to the index): private-pkg")
