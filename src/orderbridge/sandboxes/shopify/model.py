"""What the sandbox answers for each field of Shopify's schema: the store's data, a rule, null, or empty.

Every field of ``Order``, ``LineItem``, ``ShippingLine``, ``Fulfillment``, ``FulfillmentOrder``,
``Customer``, ``MailingAddress``, ``MoneyBag``, ``Refund`` and ``OrderTransaction`` (in every
served version) has an entry here, and so do the types the sandbox builds values of on the way
(money, tax lines, counts, discount applications, bulk operations, webhooks …). An entry is

- ``DATA``: the node dict built from the store's REST order (:mod:`.nodes`) holds the value;
- ``Alias(key)``: the value of another field (``currentTotalPriceSet`` is ``totalPriceSet``);
- a rule ``(node, args) -> value``: a value consistent with the store's data (the rules below,
  each with its reason; docs/connectors/shopify.md lists them);
- ``NULL``: the sandbox models none of it and the schema allows null (``Order.app``, ``clientIp``);
- ``EMPTY``: an empty list or connection (``Order.agreements``, ``LineItem.duties``).

A field of a type not listed here, or a type's field without an entry, is refused at compile time
with a GraphQL error naming it (:class:`~.executor.Executor`) — unless it sits under a field that is
always null or empty, where it can never produce a value.

Store-wide conventions the rules follow: no order was edited, refunded by line, returned, disputed
or risk-assessed; no product has a weight, an image or a vendor; every payment went through one
manual gateway ("manual"); money is in the order's currency in both shop and presentment money.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from orderbridge.sandboxes.shopify.executor import DATA, EMPTY, NULL, Alias, Source
from orderbridge.sandboxes.shopify.generator import CENT
from orderbridge.sandboxes.shopify.nodes import (
    discount_applications,
    line_discount_allocations,
    line_taxes,
    money_bag,
    order_refunds,
    order_transactions,
    rest_order,
)

Node = dict[str, Any]
Args = Mapping[str, Any]


def const(value: Any) -> Callable[[Node, Args], Any]:
    return lambda _node, _args: value


def amount(key: str) -> Callable[[Node, Args], Any]:
    """A deprecated ``Money`` scalar: the shop amount of the MoneyBag field ``key``."""
    return lambda node, _args: (node.get(key) or {}).get("shopMoney", {}).get("amount")


def money_v2(key: str) -> Callable[[Node, Args], Any]:
    """A deprecated ``MoneyV2`` field: the shop money of the MoneyBag field ``key``."""
    return lambda node, _args: (node.get(key) or {}).get("shopMoney")


def zero(node: Node, _args: Args) -> Any:
    return money_bag("0.00", node["_cur"])


def _dec(bag: Any) -> Decimal:
    return Decimal(str(((bag or {}).get("shopMoney") or {}).get("amount") or "0"))


def _bag(node: Node, value: Decimal) -> Any:
    return money_bag(str(value.quantize(CENT)), node["_cur"])


def _sum_tx(node: Node, kinds: tuple[str, ...]) -> Decimal:
    return sum(
        (_dec(t["amountSet"]) for t in order_transactions(node) if t["kind"] in kinds and t["status"] == "SUCCESS"),
        Decimal(0),
    )


def _received(node: Node) -> Decimal:
    return _sum_tx(node, ("SALE", "CAPTURE"))


def _refunded(node: Node) -> Decimal:
    return _sum_tx(node, ("REFUND",))


def _authorized_uncaptured(node: Node) -> Decimal:
    txs = order_transactions(node)
    if any(t["kind"] in ("CAPTURE", "VOID") for t in txs):
        return Decimal(0)
    return _sum_tx(node, ("AUTHORIZATION",))


def _outstanding(node: Node) -> Decimal:
    if node.get("cancelledAt"):
        return Decimal(0)
    return max(Decimal(0), _dec(node.get("totalPriceSet")) - _received(node))


def _count(n: int) -> dict[str, Any]:
    return {"count": n, "precision": "EXACT"}


def _financial(node: Node) -> str:
    return str(node.get("displayFinancialStatus") or "PENDING")


def _quantity(node: Node) -> int:
    return sum(int(li.get("currentQuantity") or 0) for li in node.get("lineItems") or [])


def _same_address(node: Node, _args: Args) -> bool:
    return bool(node.get("billingAddress") == node.get("shippingAddress"))


def _status_page_url(node: Node, _args: Args) -> str:
    oid = int(node["legacyResourceId"])
    return f"https://orderbridge-sandbox.myshopify.com/{oid}/orders/{oid:x}/authenticate"


def _first_shipping_line(node: Node, _args: Args) -> Any:
    lines = node.get("shippingLines") or []
    return lines[0] if lines else None


def _fulfillable(node: Node, _args: Args) -> bool:
    open_lines = any(int(li.get("unfulfilledQuantity") or 0) > 0 for li in node.get("lineItems") or [])
    return open_lines and not node.get("cancelledAt") and not node.get("closed")


def _restockable(node: Node, _args: Args) -> bool:
    return any(int(li.get("unfulfilledQuantity") or 0) > 0 for li in node.get("lineItems") or [])


def _rest_field(name: str, default: Any = None) -> Callable[[Node, Args], Any]:
    return lambda node, _args: rest_order(node).get(name, default)


def _number(node: Node, _args: Args) -> int:
    value = rest_order(node).get("order_number")
    if value is None:
        value = int(str(node.get("name") or "#0").lstrip("#") or 0)
    return int(value)


def _cancellation(node: Node, _args: Args) -> Any:
    return {"staffNote": None} if node.get("cancelledAt") else None


def _customer_default_address(node: Node, _args: Args) -> Any:
    return node.get("_address")


def _customer_addresses(node: Node, _args: Args) -> list[Any]:
    address = node.get("_address")
    return [address] if address else []


def _transactions(node: Node, args: Args) -> list[Any]:
    txs = order_transactions(node)
    if args.get("capturable"):
        txs = [t for t in txs if t["kind"] == "AUTHORIZATION" and _authorized_uncaptured(node) > 0]
    if args.get("manuallyResolvable"):
        txs = []
    return txs


ORDER: dict[str, Source] = {
    "additionalFees": EMPTY,
    "agreements": EMPTY,
    "alerts": EMPTY,
    "app": NULL,
    "attribution": NULL,
    "billingAddress": DATA,
    "billingAddressMatchesShippingAddress": _same_address,
    # a pending or partly paid order that is not cancelled: what Shopify lets a merchant mark paid
    "canMarkAsPaid": lambda n, _a: not n.get("cancelledAt") and _financial(n) in ("PENDING", "PARTIALLY_PAID"),
    "canNotifyCustomer": lambda n, _a: n.get("email") is not None,
    "cancelReason": DATA,
    "cancellation": _cancellation,
    "cancelledAt": DATA,
    "capturable": lambda n, _a: _authorized_uncaptured(n) > 0,
    # the sandbox's discounts are order-level codes: the cart discount is the whole discount
    "cartDiscountAmount": amount("totalDiscountsSet"),
    "cartDiscountAmountSet": Alias("totalDiscountsSet"),
    "cartToken": NULL,
    "channel": NULL,
    "channelInformation": NULL,
    "checkoutToken": NULL,
    "clientIp": NULL,
    "closed": DATA,
    "closedAt": DATA,
    "confirmationNumber": NULL,
    "confirmed": _rest_field("confirmed", True),
    "createdAt": DATA,
    "currencyCode": DATA,
    # no order was edited and refunds are money back, not removed lines: current = original
    "currentCartDiscountAmountSet": Alias("totalDiscountsSet"),
    "currentShippingPriceSet": Alias("totalShippingPriceSet"),
    "currentSubtotalLineItemsQuantity": lambda n, _a: _quantity(n),
    "currentSubtotalPriceSet": Alias("subtotalPriceSet"),
    "currentTaxLines": Alias("taxLines"),
    "currentTotalAdditionalFeesSet": NULL,
    "currentTotalDiscountsSet": Alias("totalDiscountsSet"),
    "currentTotalDutiesSet": NULL,
    "currentTotalPriceSet": Alias("totalPriceSet"),
    "currentTotalTaxSet": Alias("totalTaxSet"),
    "currentTotalWeight": const("0"),  # no product has a weight
    "customAttributes": DATA,
    "customer": DATA,
    "customerAcceptsMarketing": const(False),
    "customerJourney": NULL,
    "customerJourneySummary": NULL,
    "customerLocale": NULL,
    "discountApplications": lambda n, _a: discount_applications(n),
    "discountCode": lambda n, _a: (n.get("discountCodes") or [None])[0],
    "discountCodes": DATA,
    "displayAddress": Alias("billingAddress"),
    "displayFinancialStatus": DATA,
    "displayFulfillmentStatus": DATA,
    "disputes": EMPTY,
    "dutiesIncluded": const(False),
    "edited": const(False),
    "email": DATA,
    "estimatedTaxes": const(False),
    "events": EMPTY,
    "fulfillable": _fulfillable,
    "fulfillmentOrders": DATA,
    "fulfillments": DATA,
    "fulfillmentsCount": lambda n, _a: _count(len(rest_order(n).get("fulfillments") or [])),
    "fullyPaid": lambda n, _a: _outstanding(n) == 0 and _received(n) > 0,
    "hasTimelineComment": const(False),
    "id": DATA,
    "landingPageDisplayText": NULL,
    "landingPageUrl": NULL,
    "legacyResourceId": DATA,
    "lineItems": DATA,
    "localizationExtensions": EMPTY,
    "localizedFields": EMPTY,
    "merchantBusinessEntity": lambda n, _a: BUSINESS_ENTITY,
    "merchantEditable": lambda n, _a: not n.get("cancelledAt") and not n.get("closed"),
    "merchantEditableErrors": lambda n, _a: (
        ["The order is cancelled."] if n.get("cancelledAt") else ["The order is closed."] if n.get("closed") else []
    ),
    "merchantOfRecordApp": NULL,
    "metafield": NULL,
    "metafieldDefinitions": EMPTY,
    "metafields": EMPTY,
    "name": DATA,
    "netPayment": lambda n, _a: str((_received(n) - _refunded(n)).quantize(CENT)),
    "netPaymentSet": lambda n, _a: _bag(n, _received(n) - _refunded(n)),
    "nonFulfillableLineItems": EMPTY,
    "note": DATA,
    "number": _number,
    "originalTotalAdditionalFeesSet": NULL,
    "originalTotalDutiesSet": NULL,
    "originalTotalPriceSet": Alias("totalPriceSet"),
    "paymentCollectionDetails": const({"additionalPaymentCollectionUrl": None, "vaultedPaymentMethods": []}),
    "paymentGatewayNames": lambda n, _a: ["manual"] if order_transactions(n) else [],
    "paymentTerms": NULL,
    "phone": _rest_field("phone"),
    "physicalLocation": NULL,
    "poNumber": NULL,
    "presentmentCurrencyCode": Alias("currencyCode"),
    "processedAt": DATA,
    "productNetwork": const(False),
    "publication": NULL,
    "purchasingEntity": NULL,
    "referralCode": NULL,
    "referrerDisplayText": NULL,
    "referrerUrl": NULL,
    "refundDiscrepancySet": zero,
    "refundable": lambda n, _a: _received(n) - _refunded(n) > 0,
    "refunds": lambda n, args: order_refunds(n)[: args.get("first") or None],
    "registeredSourceUrl": NULL,
    "requiresShipping": lambda n, _a: any(li.get("requiresShipping") for li in n.get("lineItems") or []),
    "restockable": _restockable,
    "retailLocation": NULL,
    "returnStatus": const("NO_RETURN"),
    "returns": EMPTY,
    "risk": const({"assessments": [], "recommendation": "NONE"}),
    "riskLevel": const("LOW"),
    "risks": EMPTY,
    "shippingAddress": DATA,
    "shippingLine": _first_shipping_line,
    "shippingLines": DATA,
    "shopifyProtect": NULL,
    "sourceIdentifier": NULL,
    "sourceName": _rest_field("source_name"),
    "staffMember": NULL,
    "statusPageUrl": _status_page_url,
    "subtotalLineItemsQuantity": lambda n, _a: _quantity(n),
    "subtotalPrice": amount("subtotalPriceSet"),
    "subtotalPriceSet": DATA,
    "suggestedRefund": NULL,
    "tags": DATA,
    "taxExempt": const(False),
    "taxLines": DATA,
    "taxesIncluded": _rest_field("taxes_included", False),
    "test": DATA,
    "totalCapturable": lambda n, _a: str(_authorized_uncaptured(n).quantize(CENT)),
    "totalCapturableSet": lambda n, _a: _bag(n, _authorized_uncaptured(n)),
    "totalCashRoundingAdjustment": lambda n, _a: {"paymentSet": zero(n, _a), "refundSet": zero(n, _a)},
    "totalDiscounts": amount("totalDiscountsSet"),
    "totalDiscountsSet": DATA,
    "totalOutstandingSet": lambda n, _a: _bag(n, _outstanding(n)),
    "totalPrice": amount("totalPriceSet"),
    "totalPriceSet": DATA,
    "totalReceived": lambda n, _a: str(_received(n).quantize(CENT)),
    "totalReceivedSet": lambda n, _a: _bag(n, _received(n)),
    "totalRefunded": lambda n, _a: str(_refunded(n).quantize(CENT)),
    "totalRefundedSet": lambda n, _a: _bag(n, _refunded(n)),
    "totalRefundedShippingSet": zero,
    "totalShippingPrice": amount("totalShippingPriceSet"),
    "totalShippingPriceSet": DATA,
    "totalTax": amount("totalTaxSet"),
    "totalTaxSet": DATA,
    "totalTipReceived": lambda n, _a: zero(n, _a)["shopMoney"],
    "totalTipReceivedSet": zero,
    "totalWeight": const("0"),
    "transactions": _transactions,
    "transactionsCount": lambda n, _a: _count(len(order_transactions(n))),
    "unpaid": lambda n, _a: _received(n) == 0,
    "updatedAt": DATA,
}

#: the shop's one business entity (the merchant), as ``Order.merchantBusinessEntity`` answers it
BUSINESS_ENTITY: dict[str, Any] = {
    "id": "gid://shopify/BusinessEntity/1",
    "address": {
        "address1": "1 Sandbox Way",
        "address2": None,
        "city": "Ottawa",
        "countryCode": "CA",
        "province": "ON",
        "zip": "K1A 0B1",
    },
    "archived": False,
    "companyName": "OrderBridge Sandbox Store",
    "displayName": "OrderBridge Sandbox Store",
    "legalEntityId": None,
    "primary": True,
    "shopifyPaymentsAccount": None,
}


def _line_total(node: Node) -> Decimal:
    return _dec(node.get("originalUnitPriceSet")) * int(node.get("quantity") or 0)


def _line_discount(node: Node) -> Decimal:
    return sum((_dec(a["allocatedAmountSet"]) for a in line_discount_allocations(node)), Decimal(0))


def _per_unit(node: Node, total: Decimal) -> Decimal:
    qty = int(node.get("quantity") or 0)
    return (total / qty).quantize(CENT) if qty else Decimal(0)


LINE_ITEM: dict[str, Source] = {
    "canRestock": lambda n, _a: int(n.get("unfulfilledQuantity") or 0) > 0,
    "contract": NULL,
    "currentQuantity": DATA,
    "customAttributes": DATA,
    "discountAllocations": lambda n, _a: line_discount_allocations(n),
    # code discounts are allocated across lines; line-level totals (withCodeDiscounts: false) are
    # before them, as on Shopify
    "discountedTotal": lambda n, _a: str(_line_total(n).quantize(CENT)),
    "discountedTotalSet": lambda n, a: _bag(
        n, _line_total(n) - (_line_discount(n) if a.get("withCodeDiscounts") else 0)
    ),
    "discountedUnitPrice": amount("originalUnitPriceSet"),
    "discountedUnitPriceAfterAllDiscountsSet": lambda n, _a: _bag(n, _per_unit(n, _line_total(n) - _line_discount(n))),
    "discountedUnitPriceSet": Alias("originalUnitPriceSet"),
    "duties": EMPTY,
    "fulfillableQuantity": Alias("unfulfilledQuantity"),
    "fulfillmentService": NULL,
    "fulfillmentStatus": lambda n, _a: n.get("_fulfillment_status") or "unfulfilled",
    "id": DATA,
    "image": NULL,
    "isGiftCard": const(False),
    "lineItemGroup": NULL,
    "merchantEditable": const(True),
    "name": DATA,
    "nonFulfillableQuantity": const(0),
    "originalTotal": lambda n, _a: str(_line_total(n).quantize(CENT)),
    "originalTotalSet": lambda n, _a: _bag(n, _line_total(n)),
    "originalUnitPrice": amount("originalUnitPriceSet"),
    "originalUnitPriceSet": DATA,
    "priceAfterAllDiscountsBeforeTaxesSet": lambda n, _a: _bag(n, _line_total(n) - _line_discount(n)),
    "product": DATA,
    "quantity": DATA,
    "refundableQuantity": Alias("currentQuantity"),
    "requiresShipping": DATA,
    "restockable": lambda n, _a: int(n.get("unfulfilledQuantity") or 0) > 0,
    "sellingPlan": NULL,
    "sku": DATA,
    "staffMember": NULL,
    "suggestedReturnReasonDefinitions": NULL,
    "taxLines": lambda n, _a: line_taxes(n),
    "taxable": const(True),
    "title": DATA,
    "totalDiscount": lambda n, _a: str(_line_discount(n).quantize(CENT)),
    "totalDiscountSet": lambda n, _a: _bag(n, _line_discount(n)),
    "unfulfilledDiscountedTotal": lambda n, _a: str(
        (_dec(n.get("originalUnitPriceSet")) * int(n.get("unfulfilledQuantity") or 0)).quantize(CENT)
    ),
    "unfulfilledDiscountedTotalSet": lambda n, _a: _bag(
        n, _dec(n.get("originalUnitPriceSet")) * int(n.get("unfulfilledQuantity") or 0)
    ),
    "unfulfilledOriginalTotal": lambda n, _a: str(
        (_dec(n.get("originalUnitPriceSet")) * int(n.get("unfulfilledQuantity") or 0)).quantize(CENT)
    ),
    "unfulfilledOriginalTotalSet": lambda n, _a: _bag(
        n, _dec(n.get("originalUnitPriceSet")) * int(n.get("unfulfilledQuantity") or 0)
    ),
    "unfulfilledQuantity": DATA,
    "variant": DATA,
    "variantTitle": DATA,
    "vendor": NULL,
    "weight": NULL,
}

SHIPPING_LINE: dict[str, Source] = {
    "carrierIdentifier": NULL,
    "code": DATA,
    "currentDiscountedPriceSet": Alias("discountedPriceSet"),
    "custom": lambda n, _a: n.get("source") != "shopify",
    "deliveryCategory": NULL,
    "discountAllocations": EMPTY,  # the sandbox's discount codes apply to line items
    "discountedPrice": money_v2("discountedPriceSet"),
    "discountedPriceSet": DATA,
    "id": DATA,
    "isRemoved": const(False),
    "originalPrice": money_v2("originalPriceSet"),
    "originalPriceSet": DATA,
    "phone": NULL,
    "price": amount("originalPriceSet"),
    "requestedFulfillmentService": NULL,
    "shippingRateHandle": NULL,
    "source": DATA,
    "taxLines": EMPTY,  # shipping is not taxed in the sandbox's store
    "title": DATA,
}

FULFILLMENT: dict[str, Source] = {
    "createdAt": DATA,
    "deliveredAt": NULL,
    "displayStatus": lambda n, _a: {"SUCCESS": "FULFILLED", "CANCELLED": "CANCELED", "FAILURE": "FAILURE"}.get(
        n.get("status") or ""
    ),
    "estimatedDeliveryAt": NULL,
    "events": EMPTY,
    "fulfillmentLineItems": DATA,
    "fulfillmentOrders": DATA,
    "id": DATA,
    "inTransitAt": NULL,
    "legacyResourceId": DATA,
    "location": NULL,
    "name": DATA,
    "order": DATA,
    "originAddress": NULL,
    "requiresShipping": const(True),
    "service": NULL,
    "status": DATA,
    "totalQuantity": lambda n, _a: sum(int(li.get("quantity") or 0) for li in n.get("fulfillmentLineItems") or []),
    "trackingInfo": DATA,
    "updatedAt": DATA,
}

FULFILLMENT_ORDER: dict[str, Source] = {
    "assignedLocation": const(
        {
            "address1": "1 Sandbox Way",
            "address2": None,
            "city": "Ottawa",
            "countryCode": "CA",
            "location": None,
            "name": "Sandbox Warehouse",
            "phone": None,
            "province": "ON",
            "zip": "K1A 0B1",
        }
    ),
    "channelId": NULL,
    "createdAt": DATA,
    "deliveryMethod": NULL,
    "destination": NULL,
    "fulfillAt": NULL,
    "fulfillBy": NULL,
    "fulfillmentHolds": EMPTY,
    "fulfillmentOrdersForMerge": EMPTY,
    "fulfillments": DATA,
    "id": DATA,
    "internationalDuties": NULL,
    "lineItems": DATA,
    "locationsForMove": EMPTY,
    "merchantRequests": EMPTY,
    "order": DATA,
    "orderId": DATA,
    "orderName": DATA,
    "orderProcessedAt": DATA,
    "remainingLineItemsWeight": NULL,
    "requestStatus": const("UNSUBMITTED"),
    "status": DATA,
    "supportedActions": lambda n, _a: (
        [] if n.get("status") == "CLOSED" else [{"action": "CREATE_FULFILLMENT", "externalUrl": None}]
    ),
    "updatedAt": DATA,
}

CUSTOMER: dict[str, Source] = {
    "addresses": _customer_addresses,
    "addressesV2": _customer_addresses,
    "amountSpent": lambda n, _a: money_bag("0.00", n["_cur"])["shopMoney"],
    "canDelete": const(False),  # a customer with orders cannot be deleted
    "companyContactProfiles": EMPTY,
    "createdAt": DATA,
    "dataSaleOptOut": const(False),
    "defaultAddress": _customer_default_address,
    "defaultEmailAddress": NULL,
    "defaultPhoneNumber": NULL,
    "displayName": DATA,
    "email": DATA,
    "emailMarketingConsent": NULL,
    "events": EMPTY,
    "firstName": DATA,
    "hasTimelineComment": const(False),
    "id": DATA,
    "identityProviderSubjects": EMPTY,
    "image": lambda n, _a: {
        "id": None,
        "altText": None,
        "height": None,
        "width": None,
        "url": "https://cdn.shopify.com/s/images/admin/customers/customer.png",
    },
    "lastName": DATA,
    "lastOrder": NULL,
    "legacyResourceId": DATA,
    "lifetimeDuration": const("about 1 month"),
    "locale": const("en"),
    "market": NULL,
    "mergeable": const({"errorFields": [], "isMergeable": False, "mergeInProgress": None, "reason": None}),
    "metafield": NULL,
    "metafieldDefinitions": EMPTY,
    "metafields": EMPTY,
    "multipassIdentifier": NULL,
    "note": NULL,
    "numberOfOrders": const("1"),
    "orders": EMPTY,
    "paymentMethods": EMPTY,
    "phone": NULL,
    "productSubscriberStatus": const("NEVER_SUBSCRIBED"),
    "smsMarketingConsent": NULL,
    "state": const("DISABLED"),  # a guest-checkout customer without an account
    "statistics": const({"predictedSpendTier": None, "rfmGroup": None}),
    "storeCreditAccounts": EMPTY,
    "subscriptionContracts": EMPTY,
    "tags": const([]),
    "taxExempt": const(False),
    "taxExemptions": EMPTY,
    "taxSettings": const({"taxId": None}),
    "unsubscribeUrl": lambda n, _a: f"https://orderbridge-sandbox.myshopify.com/unsubscribe?c={n['legacyResourceId']}",
    "updatedAt": DATA,
    "validEmailAddress": lambda n, _a: bool(n.get("email")),
    "verifiedEmail": lambda n, _a: bool(n.get("email")),
}

MAILING_ADDRESS: dict[str, Source] = {
    "address1": DATA,
    "address2": DATA,
    "city": DATA,
    "company": DATA,
    "coordinatesValidated": const(False),
    "country": DATA,
    "countryCode": Alias("countryCodeV2"),
    "countryCodeV2": DATA,
    "firstName": DATA,
    "formatted": lambda n, a: _formatted(n, a),
    "formattedArea": lambda n, _a: (
        ", ".join(p for p in (n.get("city"), n.get("provinceCode"), n.get("country")) if p) or None
    ),
    "id": DATA,
    "lastName": DATA,
    "latitude": NULL,
    "longitude": NULL,
    "name": DATA,
    "phone": DATA,
    "province": DATA,
    "provinceCode": DATA,
    "timeZone": NULL,
    "validationResultSummary": NULL,
    "zip": DATA,
}


def _formatted(n: Node, a: Args) -> list[str]:
    lines = []
    if a.get("withName") and n.get("name"):
        lines.append(n["name"])
    if a.get("withCompany", True) and n.get("company"):
        lines.append(n["company"])
    lines += [x for x in (n.get("address1"), n.get("address2")) if x]
    area = " ".join(x for x in (n.get("city"), n.get("provinceCode"), n.get("zip")) if x)
    if area:
        lines.append(area)
    if n.get("country"):
        lines.append(n["country"])
    return lines


REFUND: dict[str, Source] = {
    "createdAt": DATA,
    "duties": EMPTY,
    "id": DATA,
    "legacyResourceId": DATA,
    "note": NULL,
    "order": DATA,
    "orderAdjustments": EMPTY,
    "processedAt": DATA,
    "refundLineItems": EMPTY,  # refunds are money back, not lines (see the module's conventions)
    "refundShippingLines": EMPTY,
    "return": NULL,
    "staffMember": NULL,
    "totalRefunded": money_v2("totalRefundedSet"),
    "totalRefundedSet": DATA,
    "transactions": DATA,
    "updatedAt": DATA,
}

ORDER_TRANSACTION: dict[str, Source] = {
    "accountNumber": NULL,
    "amount": amount("amountSet"),
    "amountRoundingSet": NULL,
    "amountSet": DATA,
    "amountV2": money_v2("amountSet"),
    "authorizationCode": NULL,
    "authorizationExpiresAt": NULL,
    "createdAt": DATA,
    "currencyExchangeAdjustment": NULL,
    "device": NULL,
    "errorCode": NULL,
    "fees": EMPTY,
    "formattedGateway": const("Manual"),
    "gateway": const("manual"),
    "id": DATA,
    "kind": DATA,
    "location": NULL,
    "manualPaymentGateway": const(True),
    "manuallyCapturable": lambda n, _a: n.get("kind") == "AUTHORIZATION" and n.get("_capturable", False),
    "maximumRefundable": NULL,
    "maximumRefundableV2": NULL,
    "multiCapturable": const(False),
    "order": DATA,
    "parentTransaction": DATA,
    "paymentDetails": NULL,
    "paymentIcon": NULL,
    "paymentId": DATA,
    "paymentMethod": NULL,
    "processedAt": DATA,
    "receiptJson": const("{}"),
    "settlementCurrency": NULL,
    "settlementCurrencyRate": NULL,
    "shopifyPaymentsSet": NULL,
    "status": DATA,
    "test": DATA,
    "totalUnsettled": NULL,
    "totalUnsettledSet": NULL,
    "totalUnsettledV2": NULL,
    "user": NULL,
}

#: types whose every field is read from the value dict (the sandbox builds them whole)
_WHOLE = frozenset(
    {
        "MoneyBag",
        "MoneyV2",
        "Attribute",
        "PageInfo",
        "Count",
        "OrderCancellation",
        "OrderRiskSummary",
        "OrderPaymentCollectionDetails",
        "CashRoundingAdjustment",
        "CustomerStatistics",
        "CustomerMergeable",
        "TaxSettings",
        "BusinessEntity",
        "BusinessEntityAddress",
        "FulfillmentOrderAssignedLocation",
        "FulfillmentOrderSupportedAction",
        "FulfillmentTrackingInfo",
        "DiscountAllocation",
        "DiscountCodeApplication",
        "DiscountApplication",
        "PricingPercentageValue",
        "Node",
        "BulkOperation",
        "UserError",
        "BulkOperationUserError",
        "ApiVersion",
        "WebhookHttpEndpoint",
        "AccessScope",
        "FulfillmentCreatePayload",
        "FulfillmentTrackingInfoUpdatePayload",
        "BulkOperationRunQueryPayload",
        "BulkOperationCancelPayload",
        "WebhookSubscriptionCreatePayload",
        "WebhookSubscriptionDeletePayload",
        # issue #16: orderCancel answers its job (done at once: the sandbox cancels synchronously)
        "OrderCancelPayload",
        "OrderCancelUserError",
        "Job",
    }
)

TYPES: dict[str, dict[str, Source]] = {
    "Order": ORDER,
    "LineItem": LINE_ITEM,
    "ShippingLine": SHIPPING_LINE,
    "Fulfillment": FULFILLMENT,
    "FulfillmentOrder": FULFILLMENT_ORDER,
    "Customer": CUSTOMER,
    "MailingAddress": MAILING_ADDRESS,
    "Refund": REFUND,
    "OrderTransaction": ORDER_TRANSACTION,
    "TaxLine": {
        "channelLiable": const(False),
        "price": amount("priceSet"),
        "priceSet": DATA,
        "rate": DATA,
        "ratePercentage": DATA,
        "source": const("Shopify"),
        "title": DATA,
    },
    "FulfillmentLineItem": {
        "id": DATA,
        "quantity": DATA,
        "lineItem": DATA,
        "originalTotalSet": DATA,
        "originalTotal": amount("originalTotalSet"),
        "discountedTotalSet": Alias("originalTotalSet"),
        "discountedTotal": amount("originalTotalSet"),
    },
    "FulfillmentOrderLineItem": {
        "financialSummaries": EMPTY,
        "id": DATA,
        "image": NULL,
        "inventoryItemId": NULL,
        "lineItem": DATA,
        "originalUnitPriceSet": DATA,
        "productTitle": DATA,
        "remainingQuantity": DATA,
        "requiresShipping": DATA,
        "shippingLine": NULL,
        "sku": DATA,
        "totalQuantity": DATA,
        "variant": DATA,
        "variantTitle": DATA,
        "vendor": NULL,
        "warnings": EMPTY,
        "weight": NULL,
    },
    # the catalogue is not modelled beyond what an order line names
    "ProductVariant": {"id": DATA, "legacyResourceId": DATA, "sku": DATA, "title": DATA, "displayName": DATA},
    "Product": {"id": DATA, "legacyResourceId": DATA, "title": DATA},
    "Shop": {
        "id": DATA,
        "name": DATA,
        "myshopifyDomain": DATA,
        "currencyCode": DATA,
        "ianaTimezone": DATA,
        "timezoneAbbreviation": DATA,
        "email": DATA,
        "contactEmail": DATA,
        "enabledPresentmentCurrencies": DATA,
        "plan": DATA,
        "url": DATA,
    },
    "ShopPlan": {"displayName": DATA, "partnerDevelopment": DATA, "shopifyPlus": DATA, "publicDisplayName": DATA},
    "AppInstallation": {"id": DATA, "accessScopes": DATA},
    "WebhookSubscription": {
        "id": DATA,
        "legacyResourceId": DATA,
        "topic": DATA,
        "format": DATA,
        "endpoint": DATA,
        "callbackUrl": DATA,
        "uri": DATA,
        "includeFields": DATA,
        "metafieldNamespaces": DATA,
        "metafields": EMPTY,
        "filter": NULL,
        "name": NULL,
        "createdAt": DATA,
        "updatedAt": DATA,
        "apiVersion": DATA,
    },
    "QueryRoot": {
        "node": DATA,
        "nodes": DATA,
        "orders": DATA,
        "order": DATA,
        "ordersCount": DATA,
        "shop": DATA,
        "currentAppInstallation": DATA,
        "currentBulkOperation": DATA,
        "bulkOperation": DATA,
        "webhookSubscriptions": DATA,
        "webhookSubscription": DATA,
    },
    "Mutation": {
        "fulfillmentCreate": DATA,
        "fulfillmentTrackingInfoUpdate": DATA,
        "bulkOperationRunQuery": DATA,
        "bulkOperationCancel": DATA,
        "webhookSubscriptionCreate": DATA,
        "webhookSubscriptionDelete": DATA,
        "orderCancel": DATA,
    },
}


class SandboxModel:
    """The :class:`~.executor.Model` of the Shopify sandbox (the tables above)."""

    def source(self, type_name: str, field_name: str) -> Source | None:
        table = TYPES.get(type_name)
        if table is not None:
            return table.get(field_name)
        if type_name in _WHOLE or type_name.endswith(("Connection", "Edge")):
            return DATA
        return None

    def produces(self, type_name: str) -> bool:
        return type_name in TYPES or type_name in _WHOLE


MODEL = SandboxModel()

#: the types whose every field the sandbox answers (the acceptance test walks them)
COVERED = (
    "Order",
    "LineItem",
    "ShippingLine",
    "Fulfillment",
    "FulfillmentOrder",
    "Customer",
    "MailingAddress",
    "MoneyBag",
    "Refund",
    "OrderTransaction",
)
