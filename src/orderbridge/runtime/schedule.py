"""A destination's posting schedule (``post_schedule``: ``"every 30m"``, ``"every 2h"``,
``"at 02:00"`` UTC, several ``at`` times comma-separated): when the embedded runtime's poster may
post to it. Packages that import files often run one import a night; writing one file just before
it, instead of one per poster tick, is what their users expect.

Hand-written (no cron library): two forms, parsed and decided in a few lines, with no state but
the last time the poster posted to the destination. ``orderbridge sync`` and ``orderbridge export
run`` post now whatever the schedule says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

_EVERY = re.compile(r"^every\s+(\d{1,4})\s*(m|min|minutes?|h|hours?)$")
_AT = re.compile(r"^(?:at\s+)?([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class Schedule:
    every: timedelta | None = None
    at: tuple[time, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """``ValueError`` naming what cannot be read."""
        spec = text.strip().lower()
        every = _EVERY.match(spec)
        if every:
            n = int(every.group(1))
            if n <= 0:
                raise ValueError(f"post_schedule {text!r}: the interval must be positive")
            return cls(every=timedelta(hours=n) if every.group(2).startswith("h") else timedelta(minutes=n))
        times = []
        for part in spec.removeprefix("at").split(","):
            found = _AT.match(part.strip())
            if not found:
                raise ValueError(f"post_schedule {text!r}: use 'every N minutes', 'every N hours' or 'at HH:MM' (UTC)")
            times.append(time(int(found.group(1)), int(found.group(2))))
        return cls(at=tuple(sorted(times)))

    def last_slot(self, now: datetime) -> datetime:
        """The latest ``at`` time at or before ``now`` (UTC)."""
        day = now.date()
        candidates = [
            datetime.combine(d, t, tzinfo=now.tzinfo) for d in (day - timedelta(days=1), day) for t in self.at
        ]
        return max(c for c in candidates if c <= now)

    def due(self, last: datetime | None, now: datetime) -> bool:
        """Whether a post is due at ``now`` given the last scheduled one (None: none since start)."""
        if self.every is not None:
            return last is None or now - last >= self.every
        slot = self.last_slot(now)
        return last is None or last < slot
