"""The order page's Versions section (issue #15, change detection).

Every version the ledger keeps, each with its times and the classes of change from the one before,
and the field-level diff between two chosen versions: a plain ``<form method=get>`` on the order
page (``?from=m&to=n#versions``), so it works without JavaScript; without a choice the page shows
the previous version against the current. A version the order does not have is said in the section
(the service's :class:`~orderbridge.errors.NoSuchVersion`, its hint beside it), not as an error
page: the rest of the order is still worth reading. Every value in a diff came from a channel and
is rendered as text (Jinja's autoescape), never as markup.

No router of its own: the order page (``web/portal/order_page.py``) calls :func:`versions_context`.
"""

from __future__ import annotations

from typing import Any

from orderbridge.domain.changes import ChangeClass
from orderbridge.errors import NoSuchVersion
from orderbridge.services import order_versions
from orderbridge.services.scope import Scope
from orderbridge.web.i18n import N_, gettext

#: each class of change as a merchant reads it
CLASS_LABELS: dict[ChangeClass, str] = {
    ChangeClass.CANCELLED: N_("Order cancelled"),
    ChangeClass.LINES_CANCELLED: N_("Lines cancelled"),
    ChangeClass.REFUNDED: N_("Refunded"),
    ChangeClass.PARTIALLY_REFUNDED: N_("Partially refunded"),
    ChangeClass.PAYMENT_CAPTURED: N_("Payment captured"),
    ChangeClass.PAYMENT: N_("Payment changed"),
    ChangeClass.LINES: N_("Lines changed"),
    ChangeClass.TOTALS: N_("Totals changed"),
    ChangeClass.SHIPPING_ADDRESS: N_("Shipping changed"),
    ChangeClass.CUSTOMER: N_("Customer changed"),
    ChangeClass.FULFILMENT: N_("Fulfilment changed"),
    ChangeClass.NOTES: N_("Notes changed"),
}


def class_label(change: ChangeClass | str) -> str:
    return gettext(CLASS_LABELS[ChangeClass(change)])


def versions_context(
    scope: Scope, order_id: int, from_version: int | None = None, to_version: int | None = None
) -> dict[str, Any]:
    """What the Versions section renders: ``versions``, the ``version_diff`` chosen (or the default),
    and ``version_error`` when a chosen version does not exist."""
    listed = order_versions.list_versions(scope, order_id)
    found = None
    error = None
    if len(listed) > 1 or from_version is not None or to_version is not None:
        try:
            found = order_versions.diff_versions(scope, order_id, from_version, to_version)
        except NoSuchVersion as exc:
            error = exc
    return {"versions": listed, "version_diff": found, "version_error": error, "class_label": class_label}
