"""The test seam: named crash points where a test can make the process kill itself (SIGKILL).

A foundation module (it imports no other layer), so services, connectors and the runtime can all
mark their crash points without importing each other.

``ORDERBRIDGE_CRASH_AT="post.after_send:3"`` kills the process the 3rd time execution reaches
``crashpoint("post.after_send")``. It exists to prove, from the sandboxes' own ledgers, that a
process killed at any of these instructions loses nothing and posts nothing twice. With the
variable unset it costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}
_target: tuple[str, int] | None = None
_loaded = False


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
    if _target is None or _target[0] != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
