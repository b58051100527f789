"""Pure mapping between Mirakl's OR11 order JSON and OrderBridge's domain (no I/O, no clock).

:func:`order_from_json` turns one OR11 order into an :class:`Order`: ``channel_state`` is Mirakl's
``order_state`` as Mirakl names it, ``deadlines`` are ``acceptance`` and ``shipping`` (sorted by
name, aware UTC), money is ``Decimal`` (the client parses with :mod:`orderbridge.exactjson`), the
raw payload is kept as the exact JSON text. Payment and fulfilment statuses follow the state:
before the debit the order is ``pending``, from ``SHIPPING`` on it is ``paid`` (``refunded`` /
``partially_refunded`` once OR28 refunds exist), ``REFUSED``/``CANCELED`` are ``voided`` and
cancelled; ``SHIPPED`` and later are ``fulfilled``.

Unknown enum values are tolerated, never fatal: a state Mirakl adds is kept as it is in
``channel_state``, the statuses become ``unknown`` with the value in ``unknown_values`` (the hub
holds the order naming it, ``unknown_status``) and the planner refuses to act on it. Whatever
cannot be read (a price that is not a number, a naive date, no id) makes an
:class:`UnreadableOrder` naming the problem — the mapper never raises.

:func:`remote_state` is what the push planner reads: the state, each line with its own state, the
order's tracking as one :class:`RemoteShipment` covering the whole order (Mirakl keeps one tracking
per order), ``can_cancel``, the refunded total, the deadlines and the back-office link.

Country codes: Mirakl's addresses carry ISO 3166 alpha-3 codes (``FRA``); the domain speaks
alpha-2. :data:`ALPHA3` covers the countries Mirakl marketplaces sell to in practice (a table
here rather than a dependency for forty lines); any other alpha-3 code is kept as it is, and a
destination that limits its length holds the order naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from orderbridge import exactjson
from orderbridge.connectors.base import ChannelRecord, UnreadableOrder
from orderbridge.domain import limits
from orderbridge.domain.channel_rules import RemoteLine, RemoteOrderState, RemoteShipment
from orderbridge.domain.money import Money, MoneyError
from orderbridge.domain.order import (
    Address,
    FulfilmentStatus,
    Order,
    OrderLine,
    PaymentStatus,
    RawJson,
    ShippingLine,
    fulfillable,
)

Json = Mapping[str, Any]

BEFORE_DEBIT = frozenset({"STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"})
PAID = frozenset({"SHIPPING", "SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"})
SHIPPED = frozenset({"SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"})
ENDED = frozenset({"REFUSED", "CANCELED"})
KNOWN_STATES = BEFORE_DEBIT | PAID | ENDED

ALPHA3 = {
    "AUT": "AT", "BEL": "BE", "BGR": "BG", "CHE": "CH", "CYP": "CY", "CZE": "CZ", "DEU": "DE", "DNK": "DK",
    "ESP": "ES", "EST": "EE", "FIN": "FI", "FRA": "FR", "GBR": "GB", "GRC": "GR", "HRV": "HR", "HUN": "HU",
    "IRL": "IE", "ISL": "IS", "ITA": "IT", "LIE": "LI", "LTU": "LT", "LUX": "LU", "LVA": "LV", "MCO": "MC",
    "MLT": "MT", "NLD": "NL", "NOR": "NO", "POL": "PL", "PRT": "PT", "ROU": "RO", "SVK": "SK", "SVN": "SI",
    "SWE": "SE", "USA": "US", "CAN": "CA", "AUS": "AU", "NZL": "NZ", "JPN": "JP", "BRA": "BR", "MEX": "MX",
    "MAR": "MA", "TUR": "TR", "GLP": "GP", "MTQ": "MQ", "REU": "RE", "GUF": "GF", "MYT": "YT",
}  # fmt: skip


class _Problem(ValueError):
    """Something in the record that cannot be read (the UnreadableOrder's problem)."""


def order_id(raw: Any) -> str:
    value = raw.get("order_id") if isinstance(raw, Mapping) else None
    if not isinstance(value, str) or not value.strip() or len(value) > limits.EXTERNAL_ID.max_chars:
        raise _Problem(f"the order has no usable Mirakl order_id ({limits.shorten(str(value), limits.QUOTE_CHARS)!r})")
    return value


def parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise _Problem(f"{name} is missing")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Problem(f"{name} {value!r} is not an ISO 8601 date") from None
    if when.tzinfo is None:
        raise _Problem(f"{name} {value!r} has no time zone")
    return when.astimezone(UTC)


def _optional_time(value: Any, name: str) -> datetime | None:
    return None if value in (None, "") else parse_time(value, name)


def _money(value: Any, currency: str, name: str) -> Money:
    if isinstance(value, float):  # the client parses exactly; a float means someone else parsed it
        value = repr(value)
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal, type(None))):
        raise _Problem(f"{name} {value!r} is not an amount")
    try:
        return Money.parse(value, currency)
    except (MoneyError, InvalidOperation) as exc:
        raise _Problem(f"{name}: {exc}") from None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def deadlines(raw: Json) -> tuple[tuple[str, datetime], ...]:
    """``(name, due)`` sorted by name: what Mirakl gives of ``acceptance`` and ``shipping``."""
    found = []
    for name, key in (("acceptance", "acceptance_deadline"), ("shipping", "shipping_deadline")):
        due = _optional_time(raw.get(key), key)
        if due is not None:
            found.append((name, due))
    return tuple(sorted(found))


def _address(raw: Any) -> Address | None:
    if not isinstance(raw, Mapping):
        return None
    country = _text(raw.get("country_iso_code")).upper()
    name = " ".join(p for p in (_text(raw.get("firstname")), _text(raw.get("lastname"))) if p)
    street2 = _text(raw.get("street_2"))
    return Address(
        name=name,
        company=_text(raw.get("company")),
        address1=_text(raw.get("street_1")),
        address2=street2,
        city=_text(raw.get("city")),
        province_code=_text(raw.get("state")),
        postal_code=_text(raw.get("zip_code")),
        country_code=ALPHA3.get(country, country),
        phone=_text(raw.get("phone")),
    )


def _refunded(lines: list[Any], currency: str) -> Money:
    total = Money.zero(currency)
    for line in lines:
        for refund in line.get("refunds") or () if isinstance(line, Mapping) else ():
            if isinstance(refund, Mapping):
                total = total + _money(refund.get("amount"), currency, "refund amount")
    return total


def order_from_json(raw: Json) -> ChannelRecord:
    """One OR11 order → :class:`Order`, or an :class:`UnreadableOrder` naming what could not be read."""
    try:
        return _order(raw)
    except (_Problem, MoneyError, TypeError, ValueError, AttributeError) as exc:
        return _unreadable(raw, str(exc) or type(exc).__name__)


def _order(raw: Json) -> Order:
    external_id = order_id(raw)
    currency = _text(raw.get("currency_iso_code")) or "EUR"
    state = _text(raw.get("order_state"))
    updated = parse_time(raw.get("last_updated_date"), "last_updated_date")
    created = parse_time(raw.get("created_date"), "created_date")
    raw_lines = raw.get("order_lines")
    if not isinstance(raw_lines, list):
        raise _Problem("order_lines is not a list")
    lines = []
    for item in raw_lines:
        if not isinstance(item, Mapping):
            raise _Problem("an order line is not an object")
        line_id = item.get("order_line_id")
        if not isinstance(line_id, str) or not line_id:
            raise _Problem("an order line has no order_line_id")
        quantity = item.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            raise _Problem(f"line {line_id}: quantity {quantity!r} is not a whole number")
        if item.get("price_unit") is not None:
            unit = _money(item.get("price_unit"), currency, f"line {line_id} price_unit")
        else:
            total = _money(item.get("price"), currency, f"line {line_id} price")
            unit = Money(total.amount / quantity if quantity else total.amount, currency)
        line_state = _text(item.get("order_line_state")) or state
        remaining = 0 if line_state in ENDED or line_state in SHIPPED else None
        lines.append(
            OrderLine(
                external_id=line_id,
                sku=_text(item.get("offer_sku")) or None,
                title=_text(item.get("product_title")) or _text(item.get("offer_sku")),
                quantity=quantity,
                unit_price=unit,
                product_id=_text(item.get("product_sku")) or None,
                fulfillable_quantity=fulfillable(quantity, remaining),
            )
        )
    subtotal = _money(raw.get("price"), currency, "price")
    total = _money(raw.get("total_price"), currency, "total_price")
    shipping = _money(raw.get("shipping_price"), currency, "shipping_price")
    refunded = _refunded(raw_lines, currency)
    unknown: tuple[tuple[str, str], ...] = ()
    if state in BEFORE_DEBIT:
        payment = PaymentStatus.PENDING
    elif state in PAID:
        payment = PaymentStatus.PAID
        if refunded.amount > 0:
            payment = PaymentStatus.REFUNDED if refunded.amount >= total.amount else PaymentStatus.PARTIALLY_REFUNDED
    elif state in ENDED:
        payment = PaymentStatus.VOIDED
    else:
        payment = PaymentStatus.UNKNOWN
        unknown = (("order_state", state),)
    if state in SHIPPED:
        fulfilment = FulfilmentStatus.FULFILLED
    elif state in KNOWN_STATES:
        fulfilment = FulfilmentStatus.UNFULFILLED
    else:
        fulfilment = FulfilmentStatus.UNKNOWN
    customer = raw.get("customer") if isinstance(raw.get("customer"), Mapping) else {}
    assert isinstance(customer, Mapping)
    name = " ".join(p for p in (_text(customer.get("firstname")), _text(customer.get("lastname"))) if p)
    code = _text(raw.get("shipping_type_code")) or None
    return Order(
        external_id=external_id,
        number=_text(raw.get("commercial_id")) or external_id,
        currency=currency,
        created_at=created,
        updated_at=updated,
        payment_status=payment,
        fulfilment_status=fulfilment,
        lines=tuple(lines),
        subtotal=subtotal,
        total_tax=Money.zero(currency),
        total=total,
        shipping_lines=(
            ShippingLine(title=_text(raw.get("shipping_type_label")) or code or "Shipping", code=code, price=shipping),
        ),
        cancelled_at=updated if state in ENDED else None,
        closed_at=updated if state == "CLOSED" else None,
        customer_name=name,
        shipping_address=_address(customer.get("shipping_address")),
        billing_address=_address(customer.get("billing_address")),
        unknown_values=unknown,
        refunded=refunded if refunded.amount > 0 else None,
        channel_state=state,
        deadlines=deadlines(raw),
        raw=RawJson(exactjson.dumps(raw)),
    )


def _unreadable(raw: Any, problem: str) -> UnreadableOrder:
    try:
        external_id = order_id(raw)
    except _Problem:
        external_id = ""
    try:
        updated: datetime | None = parse_time(raw.get("last_updated_date"), "last_updated_date")
    except (_Problem, AttributeError):
        updated = None
    number = raw.get("commercial_id") if isinstance(raw, Mapping) else None
    data = raw if isinstance(raw, Mapping) else {"value": raw}
    # the raw payload as plain JSON data (Decimals as their exact text)
    plain = _plain(data)
    return UnreadableOrder(external_id, _text(number), updated, problem, plain)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def updated_at(raw: Json) -> datetime | None:
    try:
        return parse_time(raw.get("last_updated_date"), "last_updated_date")
    except _Problem:
        return None


def remote_state(raw: Json, url: str) -> RemoteOrderState:
    """What the push planner reads of one OR11 order (tolerant: an unknown state is kept as it is)."""
    state = _text(raw.get("order_state"))
    currency = _text(raw.get("currency_iso_code")) or "EUR"
    lines = []
    given = raw.get("order_lines")
    raw_lines: list[Any] = given if isinstance(given, list) else []
    for item in raw_lines:
        if not isinstance(item, Mapping):
            continue
        count = item.get("quantity")
        quantity = count if isinstance(count, int) else 0
        line_state = _text(item.get("order_line_state")) or state
        lines.append(
            RemoteLine(
                line_external_id=_text(item.get("order_line_id")),
                quantity=quantity,
                shipped=quantity if line_state in SHIPPED else 0,
                cancelled=quantity if line_state in ENDED else 0,
                state=line_state,
            )
        )
    shipments: tuple[RemoteShipment, ...] = ()
    number = _text(raw.get("shipping_tracking"))
    if number:
        carrier = _text(raw.get("shipping_carrier_code")) or _text(raw.get("shipping_company"))
        shipments = (RemoteShipment(_text(raw.get("order_id")), number, carrier),)
    try:
        refunded = _refunded(raw_lines, currency).amount
    except _Problem:
        refunded = Decimal(0)
    try:
        dues = dict(deadlines(raw))
    except _Problem:
        dues = {}
    return RemoteOrderState(
        external_id=_text(raw.get("order_id")),
        state=state,
        lines=tuple(lines),
        shipments=shipments,
        flags=MappingProxyType({"can_cancel": raw.get("can_cancel") is True}),
        refunded=refunded,
        currency=currency,
        deadlines=MappingProxyType(dues),
        url=url,
    )


def refundable(raw: Json) -> list[tuple[str, Decimal]]:
    """Each line's id and what is left to refund of it (its price less its refunds), in order."""
    out = []
    currency = _text(raw.get("currency_iso_code")) or "EUR"
    for item in raw.get("order_lines") or ():
        if not isinstance(item, Mapping):
            continue
        price = _money(item.get("price"), currency, "line price").amount
        done = _refunded([item], currency).amount
        out.append((_text(item.get("order_line_id")), price - done))
    return out
