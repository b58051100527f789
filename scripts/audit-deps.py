#!/usr/bin/env python3
"""Audit the hub's installed dependencies for known vulnerabilities with pip-audit (``make test``).

The policy (decision 238, docs/security.md "Dependency audit"):

- a vulnerability that has a fixed version fails the run (exit 1), naming the package, the
  advisory and the version that fixes it — upgrade the pin in pyproject.toml;
- a vulnerability with no fixed version yet does NOT fail the run, and is printed on a line of
  its own starting ``UNFIXED`` with its advisory, so it is seen in every CI log until a fix exists
  (the only other choice, failing, would block every change for something no change can mend);
- when the vulnerability service cannot be reached (no network, PyPI down) the dependencies are
  NOT audited and the run says so on a line starting ``NOT AUDITED``; it exits 0 unless
  ``ORDERBRIDGE_AUDIT_STRICT=1``, when it exits 2 — a flaky network must not stop the suite, and
  the next run with a network audits again;
- the hub itself (an editable install, not on PyPI) is skipped; a package the index does not know
  (a private or mirrored one) is listed as not audited; when the index knows none of them (a mirror
  without PyPI's per-version JSON API) the run says ``NOT AUDITED`` as for a network error.

Why a wrapper and not pip-audit's own exit code: pip-audit fails on every vulnerability alike and
on a network error alike; it has no "fixable only" switch. Its JSON report carries
``fix_versions`` per advisory, which is all this needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def main() -> int:
    venv_bin = Path(sys.executable).parent
    tool = venv_bin / "pip-audit"
    if not tool.exists():
        print("NOT AUDITED: pip-audit is not installed (pip install -e '.[dev]')", file=sys.stderr)
        return 2 if os.environ.get("ORDERBRIDGE_AUDIT_STRICT") == "1" else 0
    cmd = [str(tool), "--skip-editable", "--format", "json", "--progress-spinner", "off", "--timeout", "30"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        return _not_audited("pip-audit did not finish within 600 s")
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return _not_audited(last)
    code, lines = judge(report)
    for line in lines:
        print(line)
    return code


def judge(report: dict[str, Any]) -> tuple[int, list[str]]:
    """The policy over pip-audit's JSON report: (exit code, lines to print)."""
    lines: list[str] = []
    fixable: list[str] = []
    unfixed: list[str] = []
    for dep in report.get("dependencies", []):
        for vuln in dep.get("vulns", []):
            what = f"{dep['name']} {dep.get('version', '?')}: {vuln['id']}"
            if vuln.get("fix_versions"):
                fixable.append(f"{what} (fixed in {', '.join(vuln['fix_versions'])})")
            else:
                unfixed.append(f"{what} (no fixed version published yet)")
    deps = report.get("dependencies", [])
    audited = sum(1 for d in deps if "skip_reason" not in d)
    unknown = [d["name"] for d in deps if "not found" in str(d.get("skip_reason", "")).lower()]
    if deps and audited == 0:
        return _not_audited_line(
            f"the index answered no release data for any of the {len(deps)} packages "
            "(a mirror without PyPI's per-version JSON API?)"
        )
    lines += [f"UNFIXED (not failing the run): {line}" for line in unfixed]
    lines += [f"VULNERABLE: {line}" for line in fixable]
    lines.append(
        f"pip-audit: {audited} packages audited, {len(fixable)} fixable vulnerabilities, "
        f"{len(unfixed)} without a fix yet"
        + (f"; NOT AUDITED (unknown to the index): {', '.join(unknown)}" if unknown else "")
    )
    return (1 if fixable else 0), lines


def _not_audited_line(why: str) -> tuple[int, list[str]]:
    line = f"NOT AUDITED: no vulnerability data could be had ({why}); the dependencies were not checked"
    return (2 if os.environ.get("ORDERBRIDGE_AUDIT_STRICT") == "1" else 0), [line]


def _not_audited(why: str) -> int:
    code, lines = _not_audited_line(why)
    print(*lines, sep="\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
