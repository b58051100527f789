"""The destination contract: what every destination connector must do, proven against its sandbox.

A connector's test module subclasses :class:`DestinationContract` and provides a
``destination_env`` fixture yielding an object shaped like :class:`DestinationEnv`. The suite
then checks, from the *remote* side (the sandbox's own record of documents), the properties the
hub relies on: one result per order in order, reposting never duplicates, one refused order does
not sink the batch, shipments appear with a cursor that moves, transient faults are retried
without duplicates, and revoked credentials surface as :class:`AuthFailed`.

Each test runs only where the connector declares the capability it needs (:mod:`.capabilities`):
a destination without ``LIST_SHIPMENTS`` shows the shipment tests as skipped, with the reason.

Order builders live here too so every destination's tests use the same domain objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, cast

import pytest

from orderbridge.connectors import registry
from orderbridge.connectors.base import (
    Capability,
    DestinationConnector,
    OutgoingOrder,
    Role,
    ShipmentSource,
    missing_methods,
)
from orderbridge.domain.canonical import content_hash
from orderbridge.domain.mappings import DestinationPolicy, ServiceRef
from orderbridge.domain.money import Money
from orderbridge.domain.order import (
    Address,
    FulfilmentStatus,
    Order,
    OrderLine,
    PaymentStatus,
    ShippingLine,
)
from orderbridge.domain.pipeline import resolve
from orderbridge.errors import AuthFailed, PermissionDenied
from tests.connectors.capabilities import gate, requires

POLICY = DestinationPolicy(
    name="3pl",
    sku_map={"TEE-RED-M": "WH-TEE-001"},
    sku_mapping_required=False,
    shipping_map={"standard": ServiceRef("usps", "usps_priority_mail"), "*": ServiceRef("ups", "ups_ground")},
)
BASE_TIME = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def make_order(n: int, *, lines: int = 2, number: str | None = None, shipping: str = "standard") -> Order:
    usd = "USD"
    order_lines = tuple(
        OrderLine(
            external_id=f"{n}-L{i}",
            sku="TEE-RED-M" if i == 0 else f"SKU-{i}",
            title=f"Item {i}",
            quantity=i + 1,
            unit_price=Money(Decimal("19.99") + i, usd),
        )
        for i in range(lines)
    )
    subtotal = sum((line.unit_price.amount * line.quantity for line in order_lines), Decimal("0"))
    ship = ShippingLine(title="Standard", code=shipping, price=Money(Decimal("4.95"), usd))
    tax = Money(Decimal("1.10"), usd)
    address = Address(
        name="Ada Lovelace",
        address1="1 Analytical Way",
        city="Portland",
        province_code="OR",
        postal_code="97201",
        country_code="US",
    )
    return Order(
        external_id=f"gid://shop/Order/{n}",
        number=f"#{1000 + n}" if number is None else number,
        currency=usd,
        created_at=BASE_TIME + timedelta(minutes=n),
        updated_at=BASE_TIME + timedelta(minutes=n),
        payment_status=PaymentStatus.PAID,
        fulfilment_status=FulfilmentStatus.UNFULFILLED,
        lines=order_lines,
        subtotal=Money(subtotal, usd),
        total_tax=tax,
        total=Money(subtotal + tax.amount + ship.price.amount, usd),
        shipping_lines=(ship,),
        email=f"buyer{n}@example.com",
        customer_name="Ada Lovelace",
        shipping_address=address,
        billing_address=address,
    )


def outgoing(order: Order, *, key: str | None = None, policy: DestinationPolicy = POLICY) -> OutgoingOrder:
    order_key = key or f"ob-{order.external_id.rsplit('/', 1)[-1]}"
    return OutgoingOrder(
        idempotency_key=f"{order_key}:{content_hash(order)[:12]}",
        order_key=order_key,
        resolved=resolve(order, policy),
    )


class DestinationEnv(Protocol):
    connector: DestinationConnector

    def received(self, order_key: str) -> list[Mapping[str, Any]]:
        """Documents the destination holds for ``order_key`` (its own record)."""
        ...

    def ship_all(self) -> None:
        """Make the destination ship everything it holds, at a later instant than before."""
        ...

    def revoke(self) -> None: ...

    def restore(self) -> None: ...

    def fault(self, kind: str, **kw: Any) -> None:
        """Queue a sandbox fault (``429``, ``500``, ``503``, ``timeout``, ``truncate``, …)."""
        ...

    def refused_order(self, n: int) -> OutgoingOrder:
        """An order this destination refuses on its content."""
        ...


class DestinationContract:
    """Subclass and provide a ``destination_env`` fixture."""

    @pytest.fixture(autouse=True)
    def _declared(self, request: pytest.FixtureRequest, destination_env: DestinationEnv) -> None:
        gate(request, destination_env.connector.declaration)

    # --- the declaration (every destination) -------------------------------------------------------
    def test_the_declaration_is_registered_and_backed_by_the_methods_it_promises(
        self, destination_env: DestinationEnv
    ) -> None:
        connector = destination_env.connector
        decl = connector.declaration
        assert decl.role is Role.DESTINATION and isinstance(connector, DestinationConnector)
        assert registry.declaration(decl.kind) is decl
        assert missing_methods(type(connector), decl) == []
        assert isinstance(connector, ShipmentSource) or Capability.LIST_SHIPMENTS not in decl.capabilities
        assert all(s.description for s in decl.all_settings()), "every setting says what it does"
        assert connector.max_batch >= 1

    @requires(Capability.POST_ORDERS)
    def test_the_declared_document_key_files_each_channel_order_under_one_stable_key(
        self, destination_env: DestinationEnv
    ) -> None:
        decl = destination_env.connector.declaration
        key = decl.order_key(7, "5100000009")
        assert key == decl.order_key(7, "5100000009") and "5100000009" in key
        assert key != decl.order_key(7, "5100000010")
        order = make_order(9)
        first = destination_env.connector.post_orders([outgoing(order, key=key)])
        again = destination_env.connector.post_orders([outgoing(order, key=key)])
        assert first[0].ok and first[0].order_key == key
        assert again[0].document_id == first[0].document_id
        assert len(destination_env.received(key)) == 1

    @requires(Capability.POST_ORDERS)
    def test_posting_a_batch_returns_one_result_per_order_in_order(self, destination_env: DestinationEnv) -> None:
        batch = [outgoing(make_order(n)) for n in range(1, 6)]
        results = destination_env.connector.post_orders(batch)
        assert [r.order_key for r in results] == [o.order_key for o in batch]
        assert all(r.ok for r in results)
        for result in results:
            documents = destination_env.received(result.order_key)
            assert len(documents) == 1

    @requires(Capability.POST_ORDERS)
    def test_a_single_order_is_posted_and_gets_a_document_id(self, destination_env: DestinationEnv) -> None:
        (result,) = destination_env.connector.post_orders([outgoing(make_order(7))])
        assert result.ok and result.document_id
        assert len(destination_env.received(result.order_key)) == 1

    @requires(Capability.POST_ORDERS)
    def test_reposting_the_same_order_key_does_not_create_a_second_document(
        self, destination_env: DestinationEnv
    ) -> None:
        first = destination_env.connector.post_orders([outgoing(make_order(1)), outgoing(make_order(2))])
        again = destination_env.connector.post_orders([outgoing(make_order(1)), outgoing(make_order(2))])
        alone = destination_env.connector.post_orders([outgoing(make_order(1))])
        assert [r.document_id for r in again] == [r.document_id for r in first]
        assert alone[0].document_id == first[0].document_id
        assert len(destination_env.received(first[0].order_key)) == 1
        assert len(destination_env.received(first[1].order_key)) == 1

    @requires(Capability.POST_ORDERS)
    def test_a_refused_order_gets_an_error_result_and_the_others_are_still_posted(
        self, destination_env: DestinationEnv
    ) -> None:
        batch = [outgoing(make_order(1)), destination_env.refused_order(2), outgoing(make_order(3))]
        results = destination_env.connector.post_orders(batch)
        assert [r.ok for r in results] == [True, False, True]
        assert results[1].error is not None and results[1].error.code == "destination_rejected"
        assert results[1].error.message
        assert destination_env.received(batch[1].order_key) == []
        assert len(destination_env.received(batch[2].order_key)) == 1

    @requires(Capability.POST_ORDERS)
    def test_more_orders_than_max_batch_are_all_posted(self, destination_env: DestinationEnv) -> None:
        count = destination_env.connector.max_batch + 3
        batch = [outgoing(make_order(n, lines=1)) for n in range(count)]
        results = destination_env.connector.post_orders(batch)
        assert len(results) == count and all(r.ok for r in results)
        assert len({r.document_id for r in results}) == count

    @requires(Capability.POST_ORDERS)
    @requires(Capability.LIST_SHIPMENTS)
    def test_shipments_appear_after_shipping_and_the_cursor_moves_past_them(
        self, destination_env: DestinationEnv
    ) -> None:
        connector = destination_env.connector
        first = outgoing(make_order(1))
        connector.post_orders([first])
        destination_env.ship_all()
        batches = list(connector.list_shipments(None))
        listed = [s for b in batches for s in b.shipments]
        assert [s.order_key for s in listed] == [first.order_key]
        assert listed[0].tracking_number and listed[0].carrier and not listed[0].voided
        assert listed[0].ship_date is not None and listed[0].ship_date.tzinfo is not None
        cursor_1 = batches[-1].cursor_after
        assert cursor_1 is not None

        second = outgoing(make_order(2))
        connector.post_orders([second])
        destination_env.ship_all()
        batches = list(connector.list_shipments(cursor_1))
        assert second.order_key in {s.order_key for b in batches for s in b.shipments}
        cursor_2 = batches[-1].cursor_after
        assert cursor_2 is not None and cursor_2 > cursor_1

        latest = {s.order_key for b in connector.list_shipments(cursor_2) for s in b.shipments}
        assert first.order_key not in latest

    @requires(Capability.POST_ORDERS)
    @requires(Capability.LIST_SHIPMENTS)
    def test_shipped_lines_name_the_posted_lines(self, destination_env: DestinationEnv) -> None:
        order = outgoing(make_order(4, lines=3))
        destination_env.connector.post_orders([order])
        destination_env.ship_all()
        shipped = [s for b in destination_env.connector.list_shipments(None) for s in b.shipments]
        keys = {line.line_key for s in shipped for line in s.lines}
        assert keys == {line.external_id for line in order.resolved.order.lines}

    @requires(Capability.POST_ORDERS)
    @pytest.mark.parametrize("kind", ["429", "500", "503", "truncate"])
    def test_a_transient_failure_is_retried_and_the_order_posted_once(
        self, destination_env: DestinationEnv, kind: str
    ) -> None:
        destination_env.fault(kind, count=2)
        batch = [outgoing(make_order(1)), outgoing(make_order(2))]
        results = destination_env.connector.post_orders(batch)
        assert all(r.ok for r in results)
        assert all(len(destination_env.received(o.order_key)) == 1 for o in batch)

    @requires(Capability.POST_ORDERS)
    def test_a_timeout_is_retried_and_the_order_posted_once(self, destination_env: DestinationEnv) -> None:
        destination_env.fault("timeout", delay=2.0)
        order = outgoing(make_order(1))
        (result,) = destination_env.connector.post_orders([order])
        assert result.ok
        assert len(destination_env.received(order.order_key)) == 1

    @requires(Capability.POST_ORDERS)
    def test_revoked_credentials_raise_auth_failed_until_restored(self, destination_env: DestinationEnv) -> None:
        destination_env.revoke()
        with pytest.raises(AuthFailed):
            destination_env.connector.post_orders([outgoing(make_order(1))])
        if Capability.LIST_SHIPMENTS in destination_env.connector.declaration.capabilities:
            with pytest.raises(AuthFailed):
                list(cast(ShipmentSource, destination_env.connector).list_shipments(None))
        with pytest.raises(AuthFailed):
            destination_env.connector.check()
        destination_env.restore()
        assert destination_env.connector.check()
        assert destination_env.connector.post_orders([outgoing(make_order(1))])[0].ok

    @requires(Capability.POST_ORDERS)
    def test_a_refused_permission_raises_permission_denied_not_auth_failed(
        self, destination_env: DestinationEnv
    ) -> None:
        destination_env.fault("403", count=1)
        with pytest.raises(PermissionDenied) as refused:
            destination_env.connector.post_orders([outgoing(make_order(2))])
        assert not isinstance(refused.value, AuthFailed) and "HTTP 403" in str(refused.value)
        assert destination_env.connector.post_orders([outgoing(make_order(2))])[0].ok
