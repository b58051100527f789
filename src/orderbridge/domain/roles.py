"""Roles: what a portal user or an API token may do within its tenant.

Three roles, each containing the one below it (admin ⊃ operator ⊃ viewer): a viewer reads; an
operator also changes mappings and acts on orders (retry, reset, refresh, Sync now, audits, bulk
retry, acknowledge an alert); an admin also manages users, API tokens, connections and their
credentials, releases holds and sets notification settings. A check is always "does the role the
caller has allow the role the action needs" (:meth:`Role.allows`), never a comparison of names, so
a fourth role would be one line of ``_RANK``.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        """True when this role may do what ``needed`` may (admin allows everything)."""
        return _RANK[self] >= _RANK[Role(needed)]

    @classmethod
    def parse(cls, value: str) -> Role | None:
        """The role called ``value`` (case and surrounding spaces ignored); None for anything else."""
        try:
            return cls(value.strip().lower())
        except ValueError:
            return None


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}

#: the CHECK the ``role`` columns carry (``users``, ``api_tokens``; migration 0009)
ROLE_NAMES = tuple(r.value for r in Role)
