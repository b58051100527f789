"""How the portal words a root cause of held orders (the dashboard and the exceptions screen).

A cause's headline is a count and what it is, in the reader's language — "37 orders held",
"3 fulfilment pushes held (2 orders)", "2 orders not stored" — followed on the page by the cause's
label (``labels.reason_label``), the value it is about and the domain's own sentence. Built here,
in Python, because plurals with a formatted count do not go through Jinja's ``ngettext`` cleanly.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from babel.numbers import format_decimal

from orderbridge.services.queries import HoldGroup
from orderbridge.web import i18n


def number(n: int) -> str:
    """A count in the reader's language ("1,234" / "1 234")."""
    return format_decimal(n, locale=i18n.current_locale())


def headline(group: HoldGroup) -> str:
    n = group.orders
    if group.kind == "push":
        pushes = i18n.ngettext(
            "%(num)s fulfilment push held", "%(num)s fulfilment pushes held", group.pushes, num=number(group.pushes)
        )
        orders = i18n.ngettext("%(num)s order", "%(num)s orders", n, num=number(n))
        return f"{pushes} ({orders})"
    if group.kind == "quarantine":
        return i18n.ngettext("%(num)s order not stored", "%(num)s orders not stored", n, num=number(n))
    if group.kind == "skip":
        return i18n.ngettext("%(num)s order skipped", "%(num)s orders skipped", n, num=number(n))
    return i18n.ngettext("%(num)s order held", "%(num)s orders held", n, num=number(n))


def key(group: HoldGroup) -> str:
    """A stable id for a cause's elements on the page (htmx keeps a typed value across refreshes)."""
    return hashlib.sha1(f"{group.kind}\0{group.code}\0{group.value}".encode()).hexdigest()[:12]


def query(group: HoldGroup) -> str:
    """The exceptions screen's address for this one cause."""
    return "/holds?" + urlencode({"code": group.code, "value": group.value})
