"""What changed between two versions of an order, by class of change (issue #15).

Pure — no I/O, no clock. This module names the change classes every other part of order updates
speaks in: the diff (which fields moved between two canonical versions, each classified), the
update policies (per tenant and class: apply, review, ignore), and what each destination declares
it can do with a class (:attr:`orderbridge.connectors.base.Declaration.amendments`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import msgspec

from orderbridge.domain.canonical import order_to_json
from orderbridge.domain.order import Order


class ChangeClass(StrEnum):
    """One class of change to an order, as a merchant would name it.

    The order is deliberate: when a change has several classes, the earliest is the one a summary
    leads with (a cancellation matters more than a new tag)."""

    CANCELLED = "cancelled"  # the whole order cancelled
    LINES_CANCELLED = "lines_cancelled"  # some lines (or quantities) cancelled or removed by the channel
    REFUNDED = "refunded"  # fully refunded
    PARTIALLY_REFUNDED = "partially_refunded"
    PAYMENT_CAPTURED = "payment_captured"  # pending/authorised → paid
    PAYMENT = "payment"  # any other payment status move (voided, expired …)
    LINES = "lines"  # lines added or removed, quantity or price changed
    TOTALS = "totals"  # subtotal, tax, total, shipping or discount amounts
    SHIPPING_ADDRESS = "shipping_address"
    CUSTOMER = "customer"  # e-mail, name, billing address
    FULFILMENT = "fulfilment"  # the channel's fulfilment status
    NOTES = "notes"  # note, tags, custom fields, line properties


# --- the field-level diff -------------------------------------------------------------------------
#
# Hand-written rather than a generic structural differ (deepdiff, jsondiff): the diff walks the very
# canonical form the content hash is computed from (domain/canonical.py), so "the diff is empty" and
# "the hashes are equal" can never disagree, and it must know the order's shape to be useful — lines
# matched by their channel id rather than their position, money shown with its currency, and each
# field put in the class a merchant (and an update policy) thinks in.

#: the rank of each class: the order changes are listed in, and a summary leads with
_RANK = {c: i for i, c in enumerate(ChangeClass)}
_PAID_BEFORE = frozenset({"pending", "authorized", "partially_paid"})


class FieldChange(msgspec.Struct, frozen=True, gc=False):
    """One changed field: ``path`` dotted (``lines[L2].quantity``, ``shipping_address.city``), the
    values as canonical text (amounts as ``"12.50 EUR"``; ``None``: absent on that side)."""

    path: str
    before: str | None
    after: str | None
    change: ChangeClass


class OrderDiff(msgspec.Struct, frozen=True, gc=False):
    """What changed between two versions of one order, in a deterministic order (by class, then
    field): empty exactly when the two versions have the same content hash."""

    changes: tuple[FieldChange, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def classes(self) -> frozenset[ChangeClass]:
        return frozenset(c.change for c in self.changes)

    def by_class(self, change: ChangeClass) -> tuple[FieldChange, ...]:
        return tuple(c for c in self.changes if c.change is change)

    def summary(self) -> str:
        """One sentence a merchant reads: "Payment captured; shipping address changed (city: Lyon →
        Paris)". Classes in their rank, at most a few fields each."""
        if not self.changes:
            return "No change"
        parts = [_phrase(c, self.by_class(c)) for c in sorted(self.classes, key=_RANK.__getitem__)]
        text = "; ".join(parts)
        return text[:1].upper() + text[1:]


def diff(before: Order, after: Order) -> OrderDiff:
    """The field-level diff of two versions of an order (pure)."""
    return diff_canonical(order_to_json(before), order_to_json(after))


def diff_canonical(before: Mapping[str, Any], after: Mapping[str, Any]) -> OrderDiff:
    """The diff of two canonical forms (``orders.canonical``, ``order_versions.canonical``)."""
    return _Differ(before, after).run()


_MAX_DETAILS = 3


def _phrase(change: ChangeClass, items: tuple[FieldChange, ...]) -> str:
    if change is ChangeClass.CANCELLED:
        return "order cancelled" if items[0].after is not None else "cancellation withdrawn"
    if change in (ChangeClass.REFUNDED, ChangeClass.PARTIALLY_REFUNDED):
        head = "refunded" if change is ChangeClass.REFUNDED else "partially refunded"
        amount = next((c.after for c in items if c.path == "refunded" and c.after is not None), None)
        return f"{head} ({amount})" if amount else head
    if change is ChangeClass.PAYMENT_CAPTURED:
        return "payment captured"
    if change is ChangeClass.NOTES:
        names = list(dict.fromkeys(c.path for c in items))
        return f"notes changed ({_clip(names)})"
    head = {
        ChangeClass.PAYMENT: "payment changed",
        ChangeClass.LINES_CANCELLED: "lines cancelled",
        ChangeClass.LINES: "lines changed",
        ChangeClass.TOTALS: "totals changed",
        ChangeClass.SHIPPING_ADDRESS: "shipping address changed",
        ChangeClass.CUSTOMER: "customer changed",
        ChangeClass.FULFILMENT: "fulfilment changed",
    }[change]
    return f"{head} ({_clip([_detail(c) for c in items])})"


def _clip(details: list[str]) -> str:
    shown = ", ".join(details[:_MAX_DETAILS])
    more = len(details) - _MAX_DETAILS
    return f"{shown} and {more} more" if more > 0 else shown


def _detail(c: FieldChange) -> str:
    path = c.path.removeprefix("shipping_address.")
    if c.before is None and c.after is not None and "." not in path and path.endswith("]"):
        return f"{path} added"
    if c.after is None and c.before is not None and "." not in path and path.endswith("]"):
        return f"{path} removed"
    return f"{path}: {_show(c.before)} → {_show(c.after)}"


def _show(value: str | None) -> str:
    return "—" if value is None or value == "" else value


def _natural(key: str) -> tuple[tuple[int, int | str], ...]:
    """``L2`` before ``L10``: line ids in the order a person reads them (and whatever their position)."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", key) if p)


def _keyed(items: list[Any], key: Any) -> dict[str, Any]:
    """Items by their key, a repeated key numbered by occurrence (``L1``, ``L1#2``)."""
    out: dict[str, Any] = {}
    seen: dict[str, int] = {}
    for item in items:
        k = str(key(item))
        n = seen[k] = seen.get(k, 0) + 1
        out[k if n == 1 else f"{k}#{n}"] = item
    return out


_ADDRESS_FIELDS = ("name", "company", "address1", "address2", "city", "province_code", "postal_code",
                   "country_code", "phone")  # fmt: skip
#: top-level fields the differ reads itself; any other (a field added to the canonical form later)
#: is still reported, as a note, so an empty diff keeps meaning "same content hash"
_HANDLED = frozenset(
    {
        "updated_at", "cancelled_at", "payment_status", "refunded", "fulfilment_status", "closed_at",
        "lines", "currency", "subtotal", "total_tax", "total", "shipping_lines", "discounts", "taxes",
        "shipping_address", "billing_address", "email", "customer_name", "note", "tags",
        "custom_fields", "unknown_values", "channel_state", "deadlines",
    }
)  # fmt: skip
_NOTE_FIELDS = ("number", "created_at", "processed_at", "test")


class _Differ:
    def __init__(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        self.b, self.a = before, after
        self.cur_b, self.cur_a = str(before.get("currency", "")), str(after.get("currency", ""))
        self.out: list[tuple[int, int, FieldChange]] = []

    def emit(self, path: str, before: str | None, after: str | None, change: ChangeClass) -> None:
        self.out.append((_RANK[change], len(self.out), FieldChange(path, before, after, change)))

    def money(self, value: Any, side: str) -> str | None:
        if value is None:
            return None
        return f"{value} {self.cur_b if side == 'b' else self.cur_a}".rstrip()  # no currency: an unreadable side

    def scalar(self, path: str, b: Any, a: Any, change: ChangeClass, *, money: bool = False) -> None:
        if type(b) is type(a) and b == a:  # 0 and false hash apart: so do they here
            return
        if money:
            self.emit(path, self.money(b, "b"), self.money(a, "a"), change)
        else:
            self.emit(path, _text(b), _text(a), change)

    def run(self) -> OrderDiff:
        b, a = self.b, self.a
        self.scalar("cancelled_at", b.get("cancelled_at"), a.get("cancelled_at"), ChangeClass.CANCELLED)
        self.scalar("payment_status", b.get("payment_status"), a.get("payment_status"), self._payment_class())
        refund_class = ChangeClass.REFUNDED if a.get("payment_status") == "refunded" else ChangeClass.PARTIALLY_REFUNDED
        self.scalar("refunded", b.get("refunded"), a.get("refunded"), refund_class, money=True)
        for name in ("fulfilment_status", "closed_at", "channel_state"):
            self.scalar(name, b.get(name), a.get(name), ChangeClass.FULFILMENT)
        for name in sorted(set(b.get("deadlines") or {}) | set(a.get("deadlines") or {})):
            self.scalar(f"deadlines.{name}", (b.get("deadlines") or {}).get(name),
                        (a.get("deadlines") or {}).get(name), ChangeClass.NOTES)  # fmt: skip
        self.lines()
        self.scalar("currency", b.get("currency"), a.get("currency"), ChangeClass.TOTALS)
        for name in ("subtotal", "total_tax", "total"):
            self.scalar(name, b.get(name), a.get(name), ChangeClass.TOTALS, money=True)
        self.shipping_lines()
        self.collection("discounts", b.get("discounts"), a.get("discounts"), lambda d: d["code"],
                        ChangeClass.TOTALS, money=("amount",))  # fmt: skip
        self.collection("taxes", b.get("taxes"), a.get("taxes"), lambda t: t["title"],
                        ChangeClass.TOTALS, money=("amount",))  # fmt: skip
        self.address("shipping_address", ChangeClass.SHIPPING_ADDRESS)
        for name in ("email", "customer_name"):
            self.scalar(name, b.get(name), a.get(name), ChangeClass.CUSTOMER)
        self.address("billing_address", ChangeClass.CUSTOMER)
        self.scalar("note", b.get("note"), a.get("note"), ChangeClass.NOTES)
        if list(b.get("tags") or ()) != list(a.get("tags") or ()):
            self.emit("tags", _tags_text(b.get("tags")), _tags_text(a.get("tags")), ChangeClass.NOTES)
        self.pairs("custom_fields", b.get("custom_fields"), a.get("custom_fields"), ChangeClass.NOTES)
        self.unknown_values()
        for name in (*_NOTE_FIELDS, *sorted((set(b) | set(a)) - _HANDLED - set(_NOTE_FIELDS))):
            self.scalar(name, b.get(name), a.get(name), ChangeClass.NOTES)
        if not self.out and list(b.get("lines") or ()) != list(a.get("lines") or ()):
            # the same lines in another order: a new version (the canonical form keeps the channel's
            # order), reported only when nothing else changed so classes never depend on line order
            ids = ", ".join(str(li["external_id"]) for li in b.get("lines") or ())
            self.emit("lines", ids, ", ".join(str(li["external_id"]) for li in a.get("lines") or ()), ChangeClass.LINES)
        self.out.sort(key=lambda t: (t[0], t[1]))
        return OrderDiff(tuple(t[2] for t in self.out))

    def _payment_class(self) -> ChangeClass:
        before, after = self.b.get("payment_status"), self.a.get("payment_status")
        if after == "paid" and before in _PAID_BEFORE:
            return ChangeClass.PAYMENT_CAPTURED
        if after == "refunded":
            return ChangeClass.REFUNDED
        if after == "partially_refunded":
            return ChangeClass.PARTIALLY_REFUNDED
        return ChangeClass.PAYMENT

    def lines(self) -> None:
        before = _keyed(list(self.b.get("lines") or ()), lambda li: li["external_id"])
        after = _keyed(list(self.a.get("lines") or ()), lambda li: li["external_id"])
        fulfilment_moved = self.b.get("fulfilment_status") != self.a.get("fulfilment_status")
        for key in sorted(before.keys() | after.keys(), key=_natural):
            path = f"lines[{key}]"
            if key not in after:  # removed by the channel: cancelled (decision 151)
                self.emit(path, self._line_text(before[key], "b"), None, ChangeClass.LINES_CANCELLED)
                continue
            lb, la = before.get(key), after[key]
            if lb is None:
                self.emit(path, None, self._line_text(la, "a"), ChangeClass.LINES)
                continue
            qb, qa = lb.get("quantity"), la.get("quantity")
            lowered = isinstance(qb, int) and isinstance(qa, int) and qa < qb
            self.scalar(f"{path}.quantity", qb, qa, ChangeClass.LINES_CANCELLED if lowered else ChangeClass.LINES)
            fb, fa = lb.get("fulfillable_quantity"), la.get("fulfillable_quantity")
            open_b, open_a = (qb if fb is None else fb), (qa if fa is None else fa)
            # the channel's remainder fell while its fulfilment status stayed: units removed (an
            # edit, a refund with restock), not shipped — a shipment moves the status (decision 152)
            cancelled = not fulfilment_moved and isinstance(open_b, int) and isinstance(open_a, int) and open_a < open_b
            self.scalar(f"{path}.fulfillable_quantity", fb, fa,
                        ChangeClass.LINES_CANCELLED if cancelled else ChangeClass.FULFILMENT)  # fmt: skip
            self.scalar(f"{path}.unit_price", lb.get("unit_price"), la.get("unit_price"), ChangeClass.LINES, money=True)
            for name in ("sku", "title", "product_id", "variant_id"):
                self.scalar(f"{path}.{name}", lb.get(name), la.get(name), ChangeClass.LINES)
            for name in ("discount", "tax"):
                self.scalar(f"{path}.{name}", lb.get(name), la.get(name), ChangeClass.TOTALS, money=True)
            self.pairs(f"{path}.properties", lb.get("properties"), la.get("properties"), ChangeClass.NOTES)
            self.scalar(f"{path}.fulfilment_ref", lb.get("fulfilment_ref"), la.get("fulfilment_ref"),
                        ChangeClass.FULFILMENT)  # fmt: skip
            known = {"external_id", "quantity", "fulfillable_quantity", "unit_price", "sku", "title", "product_id",
                     "variant_id", "discount", "tax", "properties", "fulfilment_ref"}  # fmt: skip
            for name in sorted((lb.keys() | la.keys()) - known):
                self.scalar(f"{path}.{name}", lb.get(name), la.get(name), ChangeClass.LINES)

    def _line_text(self, li: Mapping[str, Any], side: str) -> str:
        sku = li.get("sku")
        label = f"{sku} {li.get('title', '')}" if sku else str(li.get("title", ""))
        return f"{li.get('quantity')} × {label} at {self.money(li.get('unit_price'), side)}"

    def shipping_lines(self) -> None:
        before, after = list(self.b.get("shipping_lines") or ()), list(self.a.get("shipping_lines") or ())
        for i in range(max(len(before), len(after))):
            path = f"shipping_lines[{i}]"
            sb = before[i] if i < len(before) else None
            sa = after[i] if i < len(after) else None
            if sb is None or sa is None:
                text_b = None if sb is None else f"{sb.get('title')} {self.money(sb.get('price'), 'b')}"
                text_a = None if sa is None else f"{sa.get('title')} {self.money(sa.get('price'), 'a')}"
                self.emit(path, text_b, text_a, ChangeClass.TOTALS)
                continue
            self.scalar(f"{path}.price", sb.get("price"), sa.get("price"), ChangeClass.TOTALS, money=True)
            # the method is what a 3PL ships by: it moves with the address (the same downstream update)
            for name in sorted((sb.keys() | sa.keys()) - {"price"}):
                self.scalar(f"{path}.{name}", sb.get(name), sa.get(name), ChangeClass.SHIPPING_ADDRESS)

    def collection(
        self, name: str, b: Any, a: Any, key: Any, change: ChangeClass, *, money: tuple[str, ...] = ()
    ) -> None:
        """A list of records matched by ``key`` (discounts by code, tax lines by title)."""
        lb, la = list(b or ()), list(a or ())
        if lb == la:
            return
        start = len(self.out)
        before, after = _keyed(lb, key), _keyed(la, key)
        for k in sorted(before.keys() | after.keys(), key=_natural):
            rb, ra = before.get(k), after.get(k)
            path = f"{name}[{k}]"
            if rb is None or ra is None:
                self.emit(path, None if rb is None else self._record(rb, money, "b"),
                          None if ra is None else self._record(ra, money, "a"), change)  # fmt: skip
                continue
            for field in sorted(rb.keys() | ra.keys()):
                self.scalar(f"{path}.{field}", rb.get(field), ra.get(field), change, money=field in money)
        if len(self.out) == start:  # the same records in another order
            self.emit(name, ", ".join(map(str, before)), ", ".join(map(str, after)), change)

    def _record(self, rec: Mapping[str, Any], money: tuple[str, ...], side: str) -> str:
        return ", ".join(
            f"{k}: {self.money(v, side) if k in money else _show(_text(v))}" for k, v in sorted(rec.items())
        )

    def pairs(self, name: str, b: Any, a: Any, change: ChangeClass) -> None:
        """``(name, value)`` pairs (custom fields, line properties) matched by name."""
        lb = [list(p) for p in b or ()]
        la = [list(p) for p in a or ()]
        if lb == la:
            return
        start = len(self.out)
        before, after = _keyed(lb, lambda p: p[0]), _keyed(la, lambda p: p[0])
        for k in sorted(before.keys() | after.keys(), key=_natural):
            vb, va = before.get(k), after.get(k)
            self.scalar(f"{name}[{k}]", None if vb is None else vb[1], None if va is None else va[1], change)
        if len(self.out) == start:
            self.emit(name, _pairs_text(lb), _pairs_text(la), change)

    def address(self, name: str, change: ChangeClass) -> None:
        ab, aa = self.b.get(name), self.a.get(name)
        if ab == aa:
            return
        start = len(self.out)
        fields = list(_ADDRESS_FIELDS) + sorted(((ab or {}).keys() | (aa or {}).keys()) - set(_ADDRESS_FIELDS))
        for field in fields:
            vb = None if ab is None else ab.get(field)
            va = None if aa is None else aa.get(field)
            if (vb != va) if ab is not None and aa is not None else (vb or None) != (va or None):
                self.emit(f"{name}.{field}", _text(vb), _text(va), change)
        if len(self.out) == start:  # present on one side only, and blank
            self.emit(name, None if ab is None else "", None if aa is None else "", change)

    def unknown_values(self) -> None:
        before = dict(_keyed([list(p) for p in self.b.get("unknown_values") or ()], lambda p: p[0]))
        after = dict(_keyed([list(p) for p in self.a.get("unknown_values") or ()], lambda p: p[0]))
        start = len(self.out)
        for k in sorted(before.keys() | after.keys(), key=_natural):
            vb, va = before.get(k), after.get(k)
            change = (
                ChangeClass.PAYMENT if k.startswith("payment")
                else ChangeClass.FULFILMENT if k.startswith("fulfil")
                else ChangeClass.NOTES
            )  # fmt: skip
            self.scalar(f"unknown_values[{k}]", None if vb is None else vb[1], None if va is None else va[1], change)
        lb, la = self.b.get("unknown_values") or [], self.a.get("unknown_values") or []
        if len(self.out) == start and [list(p) for p in lb] != [list(p) for p in la]:
            self.emit("unknown_values", _pairs_text(lb), _pairs_text(la), ChangeClass.NOTES)


def _tags_text(tags: Any) -> str:
    return ", ".join(t or '""' for t in tags or ())


def _pairs_text(pairs: Any) -> str:
    return ", ".join(f"{p[0]}={p[1]}" for p in pairs)


def _text(value: Any) -> str | None:
    """A canonical JSON value as text: ``None`` stays ``None``; booleans as ``true``/``false``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
