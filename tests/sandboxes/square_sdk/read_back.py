"""Run by tests/sandboxes/test_square_official_client.py in the ``squareup`` SDK's own venv: read back,
with Square's official Python SDK pointed at the sandbox, what OrderBridge created; print it as JSON.

Arguments: base URL, access token, order id, the custom attribute key to read. Only the SDK's public
client is used (``square.client.Square`` with ``base_url``), as a merchant's own script would.
"""

from __future__ import annotations

import json
import sys

from square.client import Square


def main() -> None:
    base_url, token, order_id, attribute = sys.argv[1:5]
    client = Square(token=token, base_url=base_url)
    order = client.orders.get(order_id=order_id).order
    assert order is not None
    tender = (order.tenders or [None])[0]
    payment = client.payments.get(payment_id=tender.payment_id).payment if tender and tender.payment_id else None
    location = client.locations.get(location_id=order.location_id).location
    variations = (
        client.catalog.search(
            object_types=["ITEM_VARIATION"],
            query={"set_query": {"attribute_name": "sku", "attribute_values": ["SKU-1", "SKU-2"]}},
        ).objects
        or []
    )
    member = client.team_members.get(team_member_id=payment.team_member_id).team_member if payment else None
    value = client.orders.custom_attributes.get(order_id=order_id, custom_attribute_key=attribute).custom_attribute
    print(
        json.dumps(
            {
                "sdk": "squareup",
                "order": {
                    "id": order.id,
                    "reference_id": order.reference_id,
                    "state": order.state,
                    "total": order.total_money.amount if order.total_money else None,
                    "tax": order.total_tax_money.amount if order.total_tax_money else None,
                    "lines": [(li.catalog_object_id, li.quantity) for li in order.line_items or []],
                    "fulfillment": (order.fulfillments or [None])[0].type if order.fulfillments else None,
                    "due": order.net_amount_due_money.amount if order.net_amount_due_money else None,
                },
                "payment": None
                if payment is None
                else {
                    "amount": payment.amount_money.amount if payment.amount_money else None,
                    "source_type": payment.source_type,
                    "external_source": payment.external_details.source if payment.external_details else None,
                    "team_member_id": payment.team_member_id,
                    "order_id": payment.order_id,
                },
                "location": {"id": location.id if location else None, "status": location.status if location else None},
                "variations": {v.item_variation_data.sku: v.id for v in variations if v.item_variation_data},
                "member_status": member.status if member else None,
                "attribute": value.value if value else None,
            }
        )
    )


if __name__ == "__main__":
    main()
