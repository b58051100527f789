"""What the generated suites tried, carried to pytest's terminal summary — also under pytest-xdist.

The adversarial suite (:data:`tests.adversarial.harness.TALLY`) and the webhook fuzz
(``tests.web.test_webhook_fuzz.TRIED``) count their inputs in module globals. Under xdist those
globals live in the worker processes: each worker hands its counts to the controller through
``workeroutput`` (``pytest_sessionfinish``), the controller adds them up (``pytest_testnodedown``)
and the root ``conftest.py`` prints one summary from whichever process holds the counts.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

#: webhook-fuzz outcomes whose 2xx says the order is in the ledger
STORED = frozenset({"inserted", "changed", "unchanged", "stale", "tied"})


def fuzz_line(backend: str, counts: Counter[str]) -> str:
    total = sum(n for k, n in counts.items() if k.isdigit())
    by_status = ", ".join(f"{k}: {n}" for k, n in sorted(counts.items()) if k.isdigit())
    stored = sum(n for k, n in counts.items() if k in STORED)
    return f"webhook fuzz on {backend}: {total} inputs tried ({by_status}); {stored} stored an order"


class Tallies:
    """The counts of this process, plus those the workers handed over."""

    def __init__(self) -> None:
        self.adversarial: Counter[tuple[str, str]] = Counter()
        self.fuzz: dict[str, Counter[str]] = {}
        self.chaos: list[str] = []

    def local(self) -> dict[str, Any]:
        """This process's counts, as plain JSON-able values."""
        harness = sys.modules.get("tests.adversarial.harness")
        fuzz = sys.modules.get("tests.web.test_webhook_fuzz")
        chaos = sys.modules.get("tests.chaos.test_chaos")
        return {
            "adversarial": [[s, k, n] for (s, k), n in harness.TALLY.items()] if harness else [],
            "fuzz": {b: dict(c) for b, c in fuzz.TRIED.items()} if fuzz else {},
            "chaos": list(chaos.SUMMARY) if chaos else [],
        }

    def add(self, counts: dict[str, Any]) -> None:
        for s, k, n in counts.get("adversarial", []):
            self.adversarial[(s, k)] += n
        for backend, c in counts.get("fuzz", {}).items():
            self.fuzz.setdefault(backend, Counter()).update(c)
        self.chaos.extend(line for line in counts.get("chaos", []) if line not in self.chaos)

    def lines(self) -> list[tuple[str, list[str]]]:
        """(section, lines) for the terminal summary: this process's counts and the workers'."""
        self.add(self.local())
        sections: list[tuple[str, list[str]]] = []
        if self.adversarial:
            from tests.adversarial.harness import summary_line

            sections.append(("adversarial suite", [summary_line(self.adversarial)]))
        if self.fuzz:
            sections.append(("webhook fuzz", [fuzz_line(b, c) for b, c in self.fuzz.items()]))
        if self.chaos:
            sections.append(("chaos suite", list(self.chaos)))
        return sections
