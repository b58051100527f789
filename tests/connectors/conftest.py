"""Shared fixtures for connector tests: a sleep that records instead of waiting, a fake clock."""

from __future__ import annotations

import pytest


class FakeClock:
    """Monotonic time that moves only when ``sleep`` is called; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
