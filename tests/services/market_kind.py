"""A test-only marketplace kind (``fake_market``): Mirakl-like rules, in memory, enforcing its own
state machine and keeping a ledger of every call — and of every call it refused — so hub tests of
the planner can run before the Mirakl connector lands (registered like tests/connectors/extra_kind).

States WAITING_ACCEPTANCE → (accept) WAITING_DEBIT → (the operator's debit: :meth:`debit`) SHIPPING
→ (ship) SHIPPED; refuse before acceptance; cancel only while ``can_cancel``; tracking while SHIPPING
or SHIPPED, needing the URL for a carrier it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import msgspec

from orderbridge.connectors.base import Capability, CredentialField, Declaration, Role, Setting, SettingScope
from orderbridge.domain.channel_rules import (
    ActionSpec,
    ChannelAction,
    ChannelRules,
    Deadline,
    Outcome,
    RemoteLine,
    RemoteOrderState,
    RemoteShipment,
    TrackingField,
    Transition,
)
from orderbridge.domain.order import Order
from orderbridge.domain.push_plan import PlannedCall
from orderbridge.errors import HoldOrder, NotFound
from tests.fakes import DEFAULT_RULES, FakeChannel

A = ChannelAction
S = frozenset
MARKET_RULES = ChannelRules(
    states=("WAITING_ACCEPTANCE", "WAITING_DEBIT", "SHIPPING", "SHIPPED", "REFUSED", "CANCELED", "CLOSED"),
    terminal=S({"REFUSED", "CANCELED", "CLOSED"}),
    transitions=(
        Transition("WAITING_ACCEPTANCE", "WAITING_DEBIT", A.ACCEPT),
        Transition("WAITING_ACCEPTANCE", "REFUSED", A.REFUSE),
        Transition("WAITING_ACCEPTANCE", "REFUSED", None, "the acceptance deadline passes"),
        Transition("WAITING_DEBIT", "SHIPPING", None, "the operator debits the customer"),
        Transition("SHIPPING", "SHIPPED", A.SHIP),
        Transition("SHIPPING", "CANCELED", A.CANCEL),
        Transition("SHIPPED", "CLOSED", None),
    ),
    actions={
        A.ACCEPT: ActionSpec(A.ACCEPT, "OR21 accept", S({"WAITING_ACCEPTANCE"}), "WAITING_DEBIT", lines=True),
        A.REFUSE: ActionSpec(A.REFUSE, "OR21 refuse", S({"WAITING_ACCEPTANCE"}), "REFUSED", lines=True),
        A.TRACKING: ActionSpec(
            A.TRACKING, "OR23 tracking", S({"SHIPPING", "SHIPPED"}), None,
            requires=(TrackingField.NUMBER, TrackingField.CARRIER), url_unless_known_carrier=True,
        ),
        A.SHIP: ActionSpec(A.SHIP, "OR24 ship", S({"SHIPPING"}), "SHIPPED"),
        A.CANCEL: ActionSpec(A.CANCEL, "OR29 cancel", S({"SHIPPING"}), "CANCELED", needs_flag="can_cancel"),
        A.REFUND: ActionSpec(A.REFUND, "OR28 refund", S({"SHIPPED"}), None, lines=True),
    },
    reached={
        Outcome.SHIPPED: S({"SHIPPED", "CLOSED"}),
        Outcome.ACCEPTED: S({"WAITING_DEBIT", "SHIPPING", "SHIPPED", "CLOSED"}),
        Outcome.REFUSED: S({"REFUSED"}),
        Outcome.CANCELLED: S({"CANCELED", "REFUSED"}),
    },
    known_carriers=S({"ups", "dhl"}),
    deadlines=(
        Deadline("acceptance", S({"WAITING_ACCEPTANCE"}), "the order is refused automatically", 3600),
        Deadline("shipping", S({"WAITING_DEBIT", "SHIPPING"}), "the order is late", 6 * 3600),
    ),
    back_office="the marketplace back office, Orders › the order",
)  # fmt: skip

MARKET_DECL = Declaration(
    "fake_market",
    Role.CHANNEL,
    "Fake marketplace",
    frozenset({Capability.LIST_CHANGED, Capability.FETCH_ORDER, Capability.PUSH_FULFILMENT}),
    (CredentialField("token", "t"),),
    settings=(
        Setting("download_rules", "seed 000's rules", DEFAULT_RULES, SettingScope.HUB),
        Setting("auto_accept", "accept orders whose SKUs are mapped", True, SettingScope.HUB),
    ),
    channel_rules=MARKET_RULES,
)


@dataclass
class MarketOrder:
    state: str
    lines: dict[str, int]
    can_cancel: bool = False
    tracking: tuple[str, str] | None = None


@dataclass
class FakeMarket(FakeChannel):
    market: dict[str, MarketOrder] = field(default_factory=dict)
    #: every call accepted, as (order, call name); and every call refused (must stay empty)
    ledger: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)
    declaration: ClassVar[Declaration] = MARKET_DECL

    def put(self, order: Order) -> None:
        if not order.channel_state:
            due = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
            order = msgspec.structs.replace(
                order,
                channel_state="WAITING_ACCEPTANCE",
                deadlines=(("acceptance", due), ("shipping", due + timedelta(days=2))),
            )
        super().put(order)
        self.market.setdefault(
            order.external_id, MarketOrder(order.channel_state, {ln.external_id: ln.quantity for ln in order.lines})
        )

    # --- what a person does in the back office, and the operator ---------------------------------
    def accept_by_hand(self, external_id: str) -> None:
        assert self.market[external_id].state == "WAITING_ACCEPTANCE"
        self.market[external_id].state = "WAITING_DEBIT"

    def debit(self, external_id: str) -> None:
        if self.market[external_id].state == "WAITING_DEBIT":
            self.market[external_id].state = "SHIPPING"

    def cancel_by_hand(self, external_id: str) -> None:
        self.market[external_id].state = "CANCELED"

    # --- PlannedChannel ------------------------------------------------------------------------
    def remote_state(self, external_id: str) -> RemoteOrderState:
        m = self.market.get(external_id)
        if m is None:
            raise NotFound(f"fake market has no order {external_id}", hint="Check the order id.")
        shipped = m.state in ("SHIPPED", "CLOSED")
        return RemoteOrderState(
            external_id,
            m.state,
            tuple(RemoteLine(k, q, shipped=q if shipped else 0) for k, q in m.lines.items()),
            (RemoteShipment(external_id, m.tracking[0], m.tracking[1]),) if m.tracking else (),
            flags={"can_cancel": m.can_cancel},
            url=f"https://market.example/orders/{external_id}",
        )

    def _refuse(self, external_id: str, call: PlannedCall, why: str) -> Any:
        self.refused.append((external_id, call.call, why))
        raise HoldOrder(f"the marketplace refused {call.call}: {why}", code="channel_rejected")

    def perform(self, external_id: str, call: PlannedCall) -> str:
        if self.push_error is not None:
            raise self.push_error
        m = self.market[external_id]
        spec = MARKET_RULES.actions[call.action]
        if m.state not in spec.from_states:
            return str(self._refuse(external_id, call, f"order is {m.state}"))
        if spec.needs_flag and not m.can_cancel:
            return str(self._refuse(external_id, call, "can_cancel is false"))
        if call.action is A.TRACKING:
            assert call.tracking is not None
            m.tracking = (call.tracking.number, call.tracking.carrier)
        elif spec.to_state is not None:
            m.state = spec.to_state
        self.ledger.append((external_id, call.call))
        return f"{call.call}:{external_id}"
