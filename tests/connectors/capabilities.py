"""The contract suites run by declared capability (decision 73).

A contract test that exercises a capability is marked ``@requires(Capability.X)``; an autouse
fixture in each contract class reads the connector's declaration and skips the test, with the
reason, when the connector does not declare it. A capability declared is therefore a capability
proven against the sandbox — and one not declared is a test shown as skipped, never silently
absent. Tests without a mark (credentials, faults, the declaration's own consistency) run for
every connector of the role.
"""

from __future__ import annotations

from typing import Any

import pytest

from orderbridge.connectors.base import Capability, Declaration

MARK = "capability"


def requires(capability: Capability) -> pytest.MarkDecorator:
    return getattr(pytest.mark, MARK)(capability)


def undeclared(node: Any, declaration: Declaration) -> str | None:
    """The skip reason for ``node`` under ``declaration``, or None when every capability its marks
    require is declared."""
    wanted = [mark.args[0] for mark in node.iter_markers(MARK)]
    missing = sorted(c.value for c in wanted if c not in declaration.capabilities)
    if not missing:
        return None
    return f"{declaration.kind} does not declare {', '.join(missing)}: that contract does not apply"


def gate(request: pytest.FixtureRequest, declaration: Declaration) -> None:
    reason = undeclared(request.node, declaration)
    if reason is not None:
        pytest.skip(reason)
