"""Download switches: a channel connection's download rules in seed 001's plain words (issue #17).

Mortar's settings read "Download archived orders", "Download processed orders", "Download
unprocessed orders"; merchants think in those switches, not in status sets. Each switch here is a
view over :class:`~orderbridge.domain.rules.DownloadRules` — nothing new is stored:

============  =========================================  ==========================================
switch        on means                                   rule
============  =========================================  ==========================================
archived      orders closed/archived in the channel      ``include_closed``
processed     fulfilled ("processed") orders             ``"fulfilled"`` in the fulfilment statuses
unprocessed   unfulfilled (and partially fulfilled) ones  ``"unfulfilled"`` in them (on: + ``"partial"``)
cancelled     orders cancelled before they were posted   ``include_cancelled``
test          the channel's test orders                  ``include_test``
============  =========================================  ==========================================

A fulfilment rule of ``any`` has both status switches on; turning one off writes the explicit set
of the other statuses. An order a switch leaves out is *skipped* with a reason whose fix names the
switch (:func:`for_skip`), never dropped; turning the switch on re-evaluates what it had skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum

from orderbridge.domain.order import FulfilmentStatus
from orderbridge.domain.rules import DownloadRules


class Switch(StrEnum):
    ARCHIVED = "archived"
    PROCESSED = "processed"
    UNPROCESSED = "unprocessed"
    CANCELLED = "cancelled"
    TEST = "test"


#: what each switch does, in the seed's words (the CLI and the API say it; the portal translates it)
WORDS: Mapping[Switch, str] = {
    Switch.ARCHIVED: "Download archived orders (closed in the channel)",
    Switch.PROCESSED: "Download processed orders (already fulfilled)",
    Switch.UNPROCESSED: "Download unprocessed orders (not yet fulfilled, or partially)",
    Switch.CANCELLED: "Download cancelled orders",
    Switch.TEST: "Download test orders",
}

_EVERY = frozenset(s.value for s in FulfilmentStatus if s is not FulfilmentStatus.UNKNOWN)
_STATUSES: Mapping[Switch, frozenset[str]] = {
    Switch.PROCESSED: frozenset({FulfilmentStatus.FULFILLED.value}),
    Switch.UNPROCESSED: frozenset({FulfilmentStatus.UNFULFILLED.value, FulfilmentStatus.PARTIAL.value}),
}


def parse(name: str) -> Switch:
    try:
        return Switch(name.strip().lower())
    except ValueError:
        raise ValueError(f"no download switch {name!r}; the switches: {', '.join(s.value for s in Switch)}") from None


def read(rules: DownloadRules) -> dict[Switch, bool]:
    """Each switch's position under ``rules``."""
    statuses = rules.fulfilment_statuses
    every = "any" in statuses
    return {
        Switch.ARCHIVED: rules.include_closed,
        Switch.PROCESSED: every or _STATUSES[Switch.PROCESSED] <= statuses,
        # on while unfulfilled orders are taken (partially fulfilled ones are a channel's refinement)
        Switch.UNPROCESSED: every or FulfilmentStatus.UNFULFILLED.value in statuses,
        Switch.CANCELLED: rules.include_cancelled,
        Switch.TEST: rules.include_test,
    }


def apply(rules: DownloadRules, changes: Mapping[Switch, bool]) -> DownloadRules:
    """``rules`` with the switches in ``changes`` set (the others as they are)."""
    out = rules
    statuses = set(_EVERY if "any" in rules.fulfilment_statuses else rules.fulfilment_statuses)
    touched = False
    for switch, on in changes.items():
        if switch is Switch.ARCHIVED:
            out = replace(out, include_closed=on)
        elif switch is Switch.CANCELLED:
            out = replace(out, include_cancelled=on)
        elif switch is Switch.TEST:
            out = replace(out, include_test=on)
        else:
            touched = True
            statuses = statuses | _STATUSES[switch] if on else statuses - _STATUSES[switch]
    if touched:
        out = replace(out, fulfilment_statuses=frozenset({"any"}) if statuses >= _EVERY else frozenset(statuses))
    return out


def for_skip(code: str, value: str) -> Switch | None:
    """The switch that would take an order skipped ``(code, value)``, if one would."""
    if code == "closed_order":
        return Switch.ARCHIVED
    if code == "test_order":
        return Switch.TEST
    if code == "cancelled_order":
        return Switch.CANCELLED
    if code == "fulfillment_status_not_downloaded":
        for switch in (Switch.PROCESSED, Switch.UNPROCESSED):
            if value in _STATUSES[switch]:
                return switch
    return None
