"""The test seam: named crash points where a test can make the process kill itself (SIGKILL).

A foundation module (it imports no other layer), so services, connectors and the runtime can all
mark their crash points without importing each other.

``ORDERBRIDGE_CRASH_AT="post.after_send:3"`` kills the process the 3rd time execution reaches
``crashpoint("post.after_send")``. It exists to prove, from the sandboxes' own ledgers, that a
process killed at any of these instructions loses nothing and posts nothing twice. With the
variable unset it costs one dict lookup.

A test that runs the hub in its own process (a stateful property test) injects a crash instead:
``inject("amend.after_send", 2)`` raises :class:`InjectedCrash` the 2nd time execution reaches that
point — what the crash's transaction had not committed is lost, as with SIGKILL; ``finally`` blocks
still run (a lease is given back at once rather than expiring).
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}
_target: tuple[str, int] | None = None
_injected: tuple[str, int] | None = None
_loaded = False


class InjectedCrash(BaseException):
    """Raised at a crash point :func:`inject` armed; a ``BaseException`` so that no handler of
    ``Exception`` in the hub takes it for a failure to record and carry on from."""


def inject(name: str | None, n: int = 1) -> None:
    """Arm (or, with None, disarm) an in-process crash at the ``n``-th reach of ``name`` (tests)."""
    global _injected
    _injected = None if name is None else (name, n)
    _counts.clear()


def _load() -> None:
    global _target, _loaded
    _loaded = True
    spec = os.environ.get("ORDERBRIDGE_CRASH_AT", "")
    if spec:
        name, _, n = spec.partition(":")
        _target = (name, int(n or "1"))


def crashpoint(name: str) -> None:
    if not _loaded:
        _load()
    if _injected is not None and _injected[0] == name:
        _counts[name] = _counts.get(name, 0) + 1
        if _counts[name] >= _injected[1]:
            globals()["_injected"] = None  # once: the restarted run goes on
            raise InjectedCrash(name)
        return
    if _target is None or _target[0] != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
