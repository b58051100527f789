"""The adversarial suite's pytest wiring: hypothesis profiles and the "inputs tried" summary line.

``ORDERBRIDGE_ADVERSARIAL_EXAMPLES`` sets how many generated batches each generated test draws
(default 6, CI's run: about 70 generated orders per road and database, well under a minute); raise it for a longer
hunt, e.g. ``ORDERBRIDGE_ADVERSARIAL_EXAMPLES=200 pytest tests/adversarial``.
"""

from __future__ import annotations

from typing import Any

from tests.adversarial.harness import TALLY, summary_line


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TALLY:
        return
    terminalreporter.section("adversarial suite")
    terminalreporter.write_line(summary_line())
