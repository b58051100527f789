"""An order's versions and the diff between any two (issue #15, change detection).

Every version the ledger wrote stays in ``order_versions`` (decision 150); this reads them for the
tenant of the scope only — an order of another tenant is :class:`~orderbridge.errors.NotFound`,
exactly like a missing one — and diffs two with :func:`orderbridge.domain.changes.diff_canonical`
(the canonical forms as stored, so an empty diff means the same content hash). A version asked for
that the order does not have is :class:`~orderbridge.errors.NoSuchVersion`, naming the ones it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orderbridge.domain.canonical import order_from_json
from orderbridge.domain.changes import ChangeClass, OrderDiff, diff_canonical
from orderbridge.domain.order import Order
from orderbridge.errors import NoSuchVersion
from orderbridge.services.order_story import order_row
from orderbridge.services.scope import Scope
from orderbridge.storage.repos import order_versions as version_repo


@dataclass(frozen=True, slots=True)
class VersionInfo:
    version: int
    #: the channel's time of the version (None: it did not say)
    updated_at: datetime | None
    #: when the hub recorded it
    recorded_at: datetime
    content_hash: str
    #: the classes of change from the version before it (empty for the first)
    classes: tuple[ChangeClass, ...]
    #: the summary of that change ("" for the first)
    summary: str
    #: whether the version could be read (an unreadable one has no content to diff)
    readable: bool


@dataclass(frozen=True, slots=True)
class VersionDiff:
    order_id: int
    number: str
    from_version: int
    to_version: int
    diff: OrderDiff


def _ranked(classes: frozenset[ChangeClass]) -> tuple[ChangeClass, ...]:
    order = list(ChangeClass)
    return tuple(sorted(classes, key=order.index))


def _diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> OrderDiff:
    """The diff of two stored forms; an unreadable side diffs as an empty form (every field changed)."""
    return diff_canonical(before or {}, after or {})


def list_versions(scope: Scope, order_id: int) -> list[VersionInfo]:
    """Every version of the tenant's order, oldest first, each with what changed from the one before."""
    with scope.db.read() as conn:
        order_row(conn, scope, order_id)
        rows = version_repo.versions_of(conn, scope.tenant_id, order_id)
    out: list[VersionInfo] = []
    previous: version_repo.VersionRow | None = None
    for row in rows:
        d = _diff(previous.canonical, row.canonical) if previous is not None else OrderDiff()
        out.append(
            VersionInfo(
                row.version,
                row.updated_at,
                row.recorded_at,
                row.content_hash,
                _ranked(d.classes),
                d.summary() if previous is not None else "",
                row.canonical is not None,
            )
        )
        previous = row
    return out


def _missing(version: int, have: list[int], field: str) -> NoSuchVersion:
    if not have:
        return NoSuchVersion(f"the ledger keeps no version {version} of the order", hint="Refresh it from the channel.")
    span = f"version {have[0]}" if len(have) == 1 else f"versions {have[0]} to {have[-1]}"
    return NoSuchVersion(
        f"the order has no version {version}",
        hint=f"It has {span}: ask for one of them (or leave it out: the previous and the current).",
        field=field,
    )


def diff_versions(
    scope: Scope, order_id: int, from_version: int | None = None, to_version: int | None = None
) -> VersionDiff:
    """The diff between versions ``from_version`` and ``to_version`` of the tenant's order; by
    default the current one (``to``) against the one before it (``from``: ``to - 1``, or ``to``
    itself for an order with one version — an empty diff)."""
    with scope.db.read() as conn:
        row = order_row(conn, scope, order_id)
        rows = {r.version: r for r in version_repo.versions_of(conn, scope.tenant_id, order_id)}
    have = sorted(rows)
    if not have:  # an order stored before versions were kept and never migrated: nothing to compare
        raise NoSuchVersion(f"the ledger keeps no versions of order {row.number}", hint="Refresh it from the channel.")
    to = have[-1] if to_version is None else to_version
    if to not in rows:
        raise _missing(to, have, "to")
    start = (max((v for v in have if v < to), default=to)) if from_version is None else from_version
    if start not in rows:
        raise _missing(start, have, "from")
    return VersionDiff(order_id, str(row.number), start, to, _diff(rows[start].canonical, rows[to].canonical))


def version_of(scope: Scope, order_id: int, n: int) -> Order:
    """Version ``n`` of the tenant's order, as the canonical order it was; :class:`NoSuchVersion`
    when the order has no such version or it could not be read."""
    with scope.db.read() as conn:
        order_row(conn, scope, order_id)
        found = version_repo.version_of(conn, scope.tenant_id, order_id, n)
        if found is None:
            have = [r.version for r in version_repo.versions_of(conn, scope.tenant_id, order_id)]
            raise _missing(n, have, "version")
    if found.canonical is None:
        raise NoSuchVersion(f"version {n} of the order could not be read", hint="Its raw payload is on the order.")
    return order_from_json(found.canonical)
