"""A file-export destination's posting schedule (``post_schedule``): the embedded runtime's poster
posts to it only when due; ``export run`` posts now."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orderbridge.runtime.schedule import Schedule
from orderbridge.runtime.worker import post_due, poster_loop
from orderbridge.services.connections import add_connection, update_connection
from orderbridge.services.hub import Hub
from orderbridge.services.sync import sync_channel
from tests.builders import order
from tests.connectors.file_export.env import delivered
from tests.fakes import FakeChannel, install
from tests.scoped import cid, tenant

T0 = datetime(2026, 3, 1, 1, 30, tzinfo=UTC)


def test_every_and_at_schedules_are_due_when_they_say() -> None:
    every = Schedule.parse("every 30m")
    assert every.due(None, T0) and not every.due(T0, T0 + timedelta(minutes=29))
    assert every.due(T0, T0 + timedelta(minutes=30))
    assert Schedule.parse("every 2 hours").every == timedelta(hours=2)
    nightly = Schedule.parse("at 02:00")
    assert not nightly.due(T0 - timedelta(hours=1), T0)  # last ran after yesterday's 02:00
    assert nightly.due(T0, T0 + timedelta(minutes=31))  # 02:01: today's slot passed since
    assert not nightly.due(T0 + timedelta(minutes=31), T0 + timedelta(hours=5))
    twice = Schedule.parse("at 02:00, 14:30")
    assert twice.last_slot(datetime(2026, 3, 1, 14, 0, tzinfo=UTC)) == datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    assert twice.last_slot(datetime(2026, 3, 1, 1, 0, tzinfo=UTC)) == datetime(2026, 2, 28, 14, 30, tzinfo=UTC)
    assert twice.last_slot(datetime(2026, 3, 1, 15, 0, tzinfo=UTC)) == datetime(2026, 3, 1, 14, 30, tzinfo=UTC)
    for bad in ("hourly", "every 0m", "at 25:00", "every -5m"):
        with pytest.raises(ValueError, match="post_schedule"):
            Schedule.parse(bad)


def _world(hub: Hub, drop: Path, schedule: str | None) -> None:
    channel = FakeChannel()
    channel.put(order(1))
    install(hub, channel)
    add_connection(tenant(hub), "books", "file_export", "", {}, {"directory": str(drop), "post_schedule": schedule})
    sync_channel(tenant(hub), cid(hub, "shop"))


def test_post_due_reads_the_connections_schedule_and_ignores_an_unreadable_one(hub: Hub, tmp_path: Path) -> None:
    _world(hub, tmp_path, "at 02:00")
    row = tenant(hub).load(cid(hub, "books"))
    last: dict[int, datetime] = {}
    assert post_due(tenant(hub), row, last, T0)  # never posted: due
    last[row.id] = T0
    assert not post_due(tenant(hub), row, last, T0 + timedelta(minutes=10))
    assert post_due(tenant(hub), row, last, T0 + timedelta(minutes=31))
    update_connection(tenant(hub), row.id, settings={"post_schedule": "sometimes"})
    assert post_due(tenant(hub), tenant(hub).load(row.id), last, T0 + timedelta(minutes=10))


def test_the_poster_waits_for_the_slot(hub: Hub, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    _world(hub, drop, "every 10m")
    clock = {"now": datetime.now(UTC)}
    hub.now = lambda: clock["now"]
    stop, wake = threading.Event(), threading.Event()
    thread = threading.Thread(target=poster_loop, args=(hub, stop, wake), kwargs={"tick_s": 0.05}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not delivered(drop) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(delivered(drop)) == 1  # due at once: never posted
        channel = hub.connectors[cid(hub, "shop")]
        channel.put(order(2))
        sync_channel(tenant(hub), cid(hub, "shop"))
        time.sleep(0.5)  # ten ticks: not due yet
        assert len(delivered(drop)) == 1
        clock["now"] += timedelta(minutes=11)
        deadline = time.monotonic() + 10
        while len(delivered(drop)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(delivered(drop)) == 2
    finally:
        stop.set()
        wake.set()
        thread.join(5)
