"""QuickBooks Online destination: the shared destination contract plus QBO's own behaviour.

Everything runs against the QuickBooks sandbox served on a real local port, asserting what the
sandbox's company holds (its documents) and recorded (its ledger).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from orderbridge.connectors.base import Adjustment, AmendableDestination, PostedDocument, RotatingCredentials
from orderbridge.connectors.quickbooks import QuickBooksDestination
from orderbridge.connectors.quickbooks.client import request_id
from orderbridge.domain.money import Money
from orderbridge.domain.reasons import HoldCode
from orderbridge.errors import AuthFailed, RateLimited
from orderbridge.fixes import FixAction
from tests.builders import replace
from tests.connectors._quickbooks_fixtures import QuickBooksEnv, open_env, qbo_outgoing, quickbooks_env
from tests.connectors.contract_destination import DestinationContract, make_order, outgoing

__all__ = ["quickbooks_env"]


class TestQuickBooksDestinationContract(DestinationContract):
    @pytest.fixture
    def destination_env(self, quickbooks_env: QuickBooksEnv) -> QuickBooksEnv:
        return quickbooks_env


@pytest.fixture
def env_factory() -> Iterator[Any]:
    opened: list[Iterator[QuickBooksEnv]] = []

    def make(**kw: Any) -> QuickBooksEnv:
        gen = open_env(**kw)
        opened.append(gen)
        return next(gen)

    yield make
    for gen in opened:
        gen.close()


def test_the_connector_is_amendable_and_hands_rotated_credentials_back(quickbooks_env: QuickBooksEnv) -> None:
    assert isinstance(quickbooks_env.connector, AmendableDestination)
    assert isinstance(quickbooks_env.connector, RotatingCredentials)


def test_an_order_becomes_one_sales_receipt_with_items_shipping_tax_and_the_order_number(
    quickbooks_env: QuickBooksEnv,
) -> None:
    order = qbo_outgoing(1, lines=2)
    (result,) = quickbooks_env.connector.post_orders([order])
    (doc,) = quickbooks_env.received(order.order_key)
    assert result.ok and result.document_id == doc["Id"]
    assert doc["DocNumber"] == "1001"
    items = {i["Id"]: i["Name"] for i in quickbooks_env.state.documents(quickbooks_env.realm, "Item")}
    sales = [line for line in doc["Line"] if line["DetailType"] == "SalesItemLineDetail"]
    assert [items.get(line["SalesItemLineDetail"]["ItemRef"]["value"], "?") for line in sales[:2]] == [
        "WH-TEE-001",
        "SKU-1",
    ]
    assert [line["Amount"] for line in sales] == [Decimal("19.99"), Decimal("41.98"), Decimal("4.95")]
    assert sales[2]["SalesItemLineDetail"]["ItemRef"]["value"] == "SHIPPING_ITEM_ID"
    assert doc["TxnTaxDetail"]["TotalTax"] == Decimal("1.10")
    assert doc["TotalAmt"] == order.resolved.order.total.amount
    (customer,) = quickbooks_env.state.find(quickbooks_env.realm, "Customer", Id=doc["CustomerRef"]["value"])
    assert customer["DisplayName"] == "Ada Lovelace" and customer["PrimaryEmailAddr"]["Address"] == "buyer1@example.com"


def test_a_second_order_of_the_same_buyer_reuses_the_customer_and_a_namesake_gets_their_own(
    quickbooks_env: QuickBooksEnv,
) -> None:
    first, again = qbo_outgoing(1), qbo_outgoing(1, number="#2001")
    other = qbo_outgoing(2)  # also "Ada Lovelace", another e-mail
    quickbooks_env.connector.post_orders([first])
    quickbooks_env.connector.post_orders([again, other])
    fresh = quickbooks_env.build()  # a restart: nothing cached
    fresh.post_orders([qbo_outgoing(1, number="#3001")])
    fresh.close()
    names = sorted(c["DisplayName"] for c in quickbooks_env.state.documents(quickbooks_env.realm, "Customer"))
    assert names == ["Ada Lovelace", "Ada Lovelace (buyer2@example.com)"]


def test_a_duplicate_doc_number_of_another_document_holds_the_order_with_quickbooks_message(
    quickbooks_env: QuickBooksEnv,
) -> None:
    quickbooks_env.connector.post_orders([qbo_outgoing(1)])
    clash = outgoing(make_order(2, number="#1001"), policy=quickbooks_env_policy())
    (result,) = quickbooks_env.connector.post_orders([clash])
    assert not result.ok and result.error is not None
    assert "Duplicate Document Number Error" in result.error.message and "6140" in result.error.message
    assert quickbooks_env.received(clash.order_key) == []
    assert len(quickbooks_env.documents()) == 1


def quickbooks_env_policy() -> Any:
    from tests.connectors._quickbooks_fixtures import QBO_POLICY

    return QBO_POLICY


def test_reposting_after_quickbooks_forgot_the_requestid_finds_the_order_s_document_by_doc_number(
    quickbooks_env: QuickBooksEnv,
) -> None:
    order = qbo_outgoing(1)
    (first,) = quickbooks_env.connector.post_orders([order])
    quickbooks_env.state.companies[quickbooks_env.realm].request_ids.clear()
    (again,) = quickbooks_env.connector.post_orders([replace(order, idempotency_key="1:2:v2")])
    assert again.ok and again.document_id == first.document_id
    assert "nothing new was made" in again.notes[0]
    assert len(quickbooks_env.documents()) == 1


def test_an_unknown_item_holds_the_order_naming_the_sku_with_the_fix_to_map_it(quickbooks_env: QuickBooksEnv) -> None:
    refused = quickbooks_env.refused_order(1)
    (result,) = quickbooks_env.connector.post_orders([refused])
    assert not result.ok and result.hold is not None
    assert result.hold.code == HoldCode.DESTINATION_REJECTED
    assert "NOT-IN-QBO" in result.hold.message
    assert result.hold.fix.action is FixAction.MAP_SKU and result.hold.fix.param("sku") == "NOT-IN-QBO"
    assert quickbooks_env.documents() == []


def test_an_item_made_inactive_after_it_was_resolved_comes_back_as_quickbooks_400_and_a_hold(
    quickbooks_env: QuickBooksEnv,
) -> None:
    quickbooks_env.connector.post_orders([qbo_outgoing(1)])  # the items are resolved and cached
    (item,) = quickbooks_env.state.find(quickbooks_env.realm, "Item", Name="SKU-1")
    item["Active"] = False
    (result,) = quickbooks_env.connector.post_orders([qbo_outgoing(2)])
    assert result.hold is not None and "Invalid Reference Id" in result.hold.message
    assert result.hold.fix.param("sku") == "SKU-1"
    assert len(quickbooks_env.documents()) == 1


def test_an_unknown_tax_code_holds_the_order_with_the_setting_to_fix(env_factory: Any) -> None:
    env: QuickBooksEnv = env_factory(settings={"tax_code": "VAT20"})
    order = qbo_outgoing(1)
    taxed = replace(
        order.resolved.order,
        lines=tuple(replace(line, tax=Money(Decimal("1.00"), "USD")) for line in order.resolved.order.lines),
    )
    (result,) = env.connector.post_orders([outgoing(taxed, policy=quickbooks_env_policy())])
    assert result.hold is not None and "TaxCode" in result.hold.message
    assert result.hold.fix.action is FixAction.SET_SETTING and result.hold.fix.param("setting") == "tax_code"


def test_a_doc_number_over_21_characters_is_held_not_cut(quickbooks_env: QuickBooksEnv) -> None:
    long = outgoing(make_order(1, number="#" + "9" * 22), policy=quickbooks_env_policy())
    (result,) = quickbooks_env.connector.post_orders([long])
    assert result.hold is not None and result.hold.code == HoldCode.DESTINATION_FIELD_TOO_LONG
    assert quickbooks_env.documents() == []


def test_request_ids_fit_quickbooks_50_characters_deterministically() -> None:
    short = "12:3:v4"
    long = "x" * 80
    assert request_id(short) == short
    assert len(request_id(long)) == 50 and request_id(long) == request_id("x" * 80) != request_id("y" * 80)


def test_a_repeat_of_a_requestid_returns_the_first_document_and_makes_nothing(quickbooks_env: QuickBooksEnv) -> None:
    order = qbo_outgoing(1)
    (first,) = quickbooks_env.connector.post_orders([order])
    (again,) = quickbooks_env.connector.post_orders([order])
    assert again.document_id == first.document_id
    assert [e.key for e in quickbooks_env.state.entries("requestid_replayed")] == [order.idempotency_key]
    assert len(quickbooks_env.state.entries("SalesReceipt_created")) == 1


def test_an_answer_lost_after_the_commit_is_retried_and_the_ledger_holds_one_document(
    quickbooks_env: QuickBooksEnv,
) -> None:
    quickbooks_env.connector.check()
    quickbooks_env.state.fail_after_commit = 1
    order = qbo_outgoing(1, lines=1)
    quickbooks_env.connector.post_orders([qbo_outgoing(9, lines=1)])  # the customer is made: that answer is lost
    quickbooks_env.state.fail_after_commit = 1
    (result,) = quickbooks_env.connector.post_orders([order])
    assert result.ok
    assert len(quickbooks_env.state.entries("SalesReceipt_created")) == 2
    assert len(quickbooks_env.received(order.order_key)) == 1
    assert len(quickbooks_env.state.entries("Customer_created")) == 2
    assert len(quickbooks_env.state.entries("requestid_replayed")) == 2


def test_an_expired_access_token_is_refreshed_and_the_rotated_refresh_token_handed_back(
    quickbooks_env: QuickBooksEnv,
) -> None:
    first_refresh = quickbooks_env.credentials["refresh_token"]
    quickbooks_env.connector.post_orders([qbo_outgoing(1)])
    quickbooks_env.state.expire_access_tokens()
    quickbooks_env.connector.post_orders([qbo_outgoing(2)])
    assert len(quickbooks_env.state.entries("token_refreshed")) == 2
    assert len(quickbooks_env.rotations) == 2
    assert quickbooks_env.credentials["refresh_token"] not in (
        first_refresh,
        quickbooks_env.rotations[0]["refresh_token"],
    )
    # the first refresh token was retired once its successor was used: only the stored one works
    stale = QuickBooksDestination(
        quickbooks_env.base_url,
        {**quickbooks_env.credentials, "refresh_token": first_refresh},
        quickbooks_env.settings,
        http=quickbooks_env.http,
    )
    with pytest.raises(AuthFailed) as refused:
        stale.check()
    assert "reconnect QuickBooks" in refused.value.message and refused.value.fix is not None
    assert refused.value.fix.param("credential") == "refresh_token"
    restarted = quickbooks_env.build()
    assert "Sandbox Company" in restarted.check()
    restarted.close()


def test_a_short_lived_access_token_is_renewed_before_it_expires(env_factory: Any) -> None:
    env: QuickBooksEnv = env_factory(access_ttl=30)  # inside the refresh margin: every call renews
    env.connector.check()
    env.connector.check()
    assert len(env.state.entries("token_refreshed")) == 2


def test_a_disconnected_app_raises_auth_failed_with_the_reconnect_fix(quickbooks_env: QuickBooksEnv) -> None:
    quickbooks_env.connector.check()
    quickbooks_env.state.revoke_refresh_tokens()
    with pytest.raises(AuthFailed) as refused:
        quickbooks_env.connector.post_orders([qbo_outgoing(1)])
    assert "invalid_grant" in refused.value.message
    assert quickbooks_env.documents() == []


def test_a_429_waits_the_sixty_seconds_quickbooks_asks_for(env_factory: Any) -> None:
    env: QuickBooksEnv = env_factory(limits=True)
    env.connector.check()
    env.state.companies[env.realm].recent = [env.state.now().timestamp()] * 500  # the minute's budget is spent
    with pytest.raises(RateLimited):  # still throttled after waiting the minute twice: given up, retried next run
        env.connector.check()
    assert 60.0 in env.sleeps


def test_the_client_paces_itself_to_ten_requests_a_second(env_factory: Any) -> None:
    env: QuickBooksEnv = env_factory(limits=True, settings={"requests_per_second": 10})
    for _ in range(14):
        env.connector.check()
    assert 60.0 not in env.sleeps, "it never ran into a 429"
    assert sum(env.sleeps) > 0.3


# --- amendments ---------------------------------------------------------------------------------


def _posted(env: QuickBooksEnv, order: Any) -> PostedDocument:
    (result,) = env.connector.post_orders([order])
    assert result.ok and result.document_id
    return PostedDocument(order.order_key, result.document_id, order.idempotency_key, 1)


def test_find_document_reads_the_order_s_document_after_a_restart(quickbooks_env: QuickBooksEnv) -> None:
    order = qbo_outgoing(1)
    document = _posted(quickbooks_env, order)
    fresh = quickbooks_env.build()
    found = fresh.find_document(order.order_key)
    fresh.close()
    assert found is not None and found.document_id == document.document_id and found.state == "live"
    assert found.number == "1001" and found.version_token == "0"
    assert quickbooks_env.connector.find_document("ob-nothing") is None


def test_an_update_in_place_keeps_the_document_and_its_number_with_the_new_lines(quickbooks_env: QuickBooksEnv) -> None:
    order = qbo_outgoing(1, lines=1)
    document = _posted(quickbooks_env, order)
    changed = replace(qbo_outgoing(1, lines=3), idempotency_key="1:1:v2:update")
    result = quickbooks_env.connector.update_document(document, changed)
    assert result.ok and result.document_id == document.document_id
    (doc,) = quickbooks_env.received(order.order_key)
    assert doc["DocNumber"] == "1001" and doc["SyncToken"] == "1"
    assert len([line for line in doc["Line"] if line["DetailType"] == "SalesItemLineDetail"]) == 4
    assert doc["TotalAmt"] == changed.resolved.order.total.amount


def test_a_stale_sync_token_is_read_again_and_the_update_applied_once(quickbooks_env: QuickBooksEnv) -> None:
    order = qbo_outgoing(1, lines=1)
    document = _posted(quickbooks_env, order)
    touched: list[bool] = []
    original = quickbooks_env.connector._read

    def read_then_someone_edits(doc_id: str, entity: str | None = None) -> Any:
        doc = original(doc_id, entity)
        if not touched:  # between our read and our write, a bookkeeper saves the receipt
            touched.append(True)
            quickbooks_env.state.touch(quickbooks_env.realm, "SalesReceipt", doc_id)
        return doc

    quickbooks_env.connector._read = read_then_someone_edits  # type: ignore[method-assign]
    result = quickbooks_env.connector.update_document(
        document, replace(qbo_outgoing(1, lines=2), idempotency_key="1:1:v2:update")
    )
    assert result.ok
    assert len(quickbooks_env.state.entries("SalesReceipt_updated")) == 1
    (doc,) = quickbooks_env.received(order.order_key)
    assert doc["SyncToken"] == "2"


def test_a_void_keeps_the_document_at_zero_and_a_repeat_is_the_same_answer(quickbooks_env: QuickBooksEnv) -> None:
    order = qbo_outgoing(1)
    document = _posted(quickbooks_env, order)
    first = quickbooks_env.connector.void_document(document, "1:1:v2:void")
    again = quickbooks_env.connector.void_document(document, "1:1:v2:void")
    assert first.ok and again.ok and first.document_id == again.document_id == document.document_id
    (doc,) = quickbooks_env.received(order.order_key) or quickbooks_env.documents()
    assert doc["TotalAmt"] == 0 and doc["DocNumber"] == "1001"
    assert len(quickbooks_env.state.entries("SalesReceipt_voided")) == 1
    found = quickbooks_env.build().find_document(order.order_key)
    assert found is not None and found.state == "voided"


def test_a_refund_is_a_refund_receipt_posted_once(quickbooks_env: QuickBooksEnv) -> None:
    order = qbo_outgoing(1)
    document = _posted(quickbooks_env, order)
    adjustment = Adjustment(
        "1:1:v2:adjust", "refund", Money(Decimal("10.00"), "USD"), "refund of #1001", order.resolved
    )
    first = quickbooks_env.connector.post_adjustment(document, adjustment)
    again = quickbooks_env.connector.post_adjustment(document, adjustment)
    assert first.ok and again.document_id == first.document_id
    (refund,) = quickbooks_env.documents("RefundReceipt")
    (sale,) = quickbooks_env.documents()
    assert refund["TotalAmt"] == Decimal("10.00") and refund["CustomerRef"] == sale["CustomerRef"]
    assert refund["DocNumber"].startswith("1001-R") and len(refund["DocNumber"]) <= 21


def test_the_declared_amendments(quickbooks_env: QuickBooksEnv) -> None:
    from orderbridge.connectors.base import Amendment
    from orderbridge.domain.changes import ChangeClass

    decl = quickbooks_env.connector.declaration
    assert decl.amendment(ChangeClass.LINES) is Amendment.UPDATE_IN_PLACE
    assert decl.amendment(ChangeClass.CANCELLED) is Amendment.VOID_AND_REPOST
    assert decl.amendment(ChangeClass.PARTIALLY_REFUNDED) is Amendment.ADJUST
    assert decl.amendment(ChangeClass.FULFILMENT) is Amendment.NOTHING


def test_the_sandbox_refuses_an_api_call_without_a_valid_bearer_token(quickbooks_env: QuickBooksEnv) -> None:
    response = httpx.get(
        f"{quickbooks_env.base_url}/v3/company/{quickbooks_env.realm}/companyinfo/{quickbooks_env.realm}",
        headers={"Authorization": "Bearer nope"},
    )
    assert response.status_code == 401 and response.json()["Fault"]["type"] == "AUTHENTICATION"


def test_a_rotated_token_the_hub_could_not_store_is_handed_back_again_before_the_next_call(
    quickbooks_env: QuickBooksEnv,
) -> None:
    failures = [RuntimeError("the hub's database is down")]
    stored: list[str] = []

    def store(rotated: Any) -> None:
        if failures:
            raise failures.pop()
        stored.append(rotated["refresh_token"])

    connector = quickbooks_env.build()
    connector.on_credentials_rotated(store)
    with pytest.raises(RuntimeError):
        connector.check()
    assert connector.check()  # handed back again first, then the call goes
    assert stored == [connector.client.refresh_token]
    connector.close()


def test_a_connection_set_to_invoices_posts_an_invoice_with_the_balance_open(env_factory: Any) -> None:
    env: QuickBooksEnv = env_factory(settings={"document_type": "Invoice"})
    order = qbo_outgoing(1)
    (result,) = env.connector.post_orders([order])
    (invoice,) = env.documents("Invoice")
    assert result.document_id == invoice["Id"] and env.documents("SalesReceipt") == []
    assert invoice["Balance"] == invoice["TotalAmt"] == order.resolved.order.total.amount
    found = env.connector.find_document(order.order_key)
    assert found is not None and found.document_id == invoice["Id"]


def test_an_unknown_document_type_is_refused_when_the_connector_is_built(quickbooks_env: QuickBooksEnv) -> None:
    from orderbridge.errors import SettingsError

    with pytest.raises(SettingsError) as refused:
        quickbooks_env.build(document_type="Estimate")
    assert refused.value.fix is not None and refused.value.fix.param("setting") == "document_type"


def test_a_customer_name_quickbooks_would_read_as_a_sub_customer_is_made_plain() -> None:
    from orderbridge.connectors.quickbooks.mapper import display_name

    assert display_name(replace(make_order(1), customer_name="Acme: Shipping\tDept\n")) == "Acme- Shipping Dept"
    assert display_name(replace(make_order(1), customer_name="", email="")) == "Web customer"
