"""The QuickBooks Online sandbox over real HTTP: tokens, requestid replay per company, QBO's faults
and query language — what the connector's tests rely on, checked against the sandbox directly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.quickbooks import QuickBooksState, create_sandbox
from orderbridge.sandboxes.quickbooks.query import QueryError, parse

REALM = "9130350000000001"


class Api:
    def __init__(self, state: QuickBooksState, base: str) -> None:
        self.state = state
        self.base = base
        self.refresh_token = state.initial_refresh_token
        self.access = self.refresh()["access_token"]

    def refresh(self, token: str | None = None) -> dict[str, Any]:
        response = httpx.post(
            f"{self.base}/oauth2/v1/tokens/bearer",
            data={"grant_type": "refresh_token", "refresh_token": token or self.refresh_token},
            auth=(self.state.client_id, self.state.client_secret),
        )
        body: dict[str, Any] = response.json()
        body["status"] = response.status_code
        if response.status_code == 200 and token is None:
            self.refresh_token = body["refresh_token"]
        return body

    def post(self, entity: str, body: dict[str, Any], realm: str = REALM, **params: str) -> httpx.Response:
        return httpx.post(
            f"{self.base}/v3/company/{realm}/{entity}",
            json=body,
            params=params,
            headers={"Authorization": f"Bearer {self.access}"},
        )

    def query(self, text: str, realm: str = REALM) -> dict[str, Any]:
        response = httpx.get(
            f"{self.base}/v3/company/{realm}/query",
            params={"query": text},
            headers={"Authorization": f"Bearer {self.access}"},
        )
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture
def api() -> Iterator[Api]:
    state, app = create_sandbox(limits=False)
    with run_in_thread(app) as running:
        yield Api(state, running.base_url)


def receipt(number: str, item: str = "5", amount: str = "10.00") -> dict[str, Any]:
    return {
        "DocNumber": number,
        "Line": [
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": amount,
                "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": 1, "UnitPrice": amount},
            }
        ],
    }


def item_id(api: Api, name: str) -> str:
    (doc,) = api.state.find(REALM, "Item", Name=name)
    return str(doc["Id"])


def test_a_repeated_requestid_gets_the_first_answer_and_is_per_company(api: Api) -> None:
    api.state.add_company("42", "Other", "USD", ("SKU-1",))
    api.state.access_tokens[api.access].realm_ids = frozenset({REALM, "42"})
    first = api.post("salesreceipt", receipt("1001", item_id(api, "SKU-1")), requestid="k-1")
    again = api.post("salesreceipt", receipt("9999", item_id(api, "SKU-1")), requestid="k-1")
    assert first.status_code == again.status_code == 200
    assert again.json()["SalesReceipt"]["Id"] == first.json()["SalesReceipt"]["Id"]
    other_item = str(api.state.find("42", "Item", Name="SKU-1")[0]["Id"])
    elsewhere = api.post("salesreceipt", receipt("1001", other_item), realm="42", requestid="k-1")
    assert elsewhere.status_code == 200  # the same requestid in another company is another request
    assert len(api.state.documents(REALM)) == 1 and len(api.state.documents("42")) == 1


def test_a_duplicate_doc_number_is_qbo_6140_and_an_unknown_item_is_2500_naming_the_reference(api: Api) -> None:
    assert api.post("salesreceipt", receipt("1001", item_id(api, "SKU-1"))).status_code == 200
    duplicate = api.post("salesreceipt", receipt("1001", item_id(api, "SKU-1")))
    (error,) = duplicate.json()["Fault"]["Error"]
    assert duplicate.status_code == 400 and error["code"] == "6140"
    assert error["Message"] == "Duplicate Document Number Error"
    unknown = api.post("salesreceipt", receipt("1002", "999"))
    (error,) = unknown.json()["Fault"]["Error"]
    assert (error["code"], error["element"]) == ("2500", "Line.SalesItemLineDetail.ItemRef")
    assert "'999'" in error["Detail"]
    wrong = api.post(
        "salesreceipt",
        receipt("1003", item_id(api, "SKU-1"), "10.00")
        | {
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "Amount": "11.00",
                    "SalesItemLineDetail": {"ItemRef": {"value": item_id(api, "SKU-1")}, "Qty": 2, "UnitPrice": "5.00"},
                }
            ]
        },
    )
    assert wrong.json()["Fault"]["Error"][0]["code"] == "6070"
    long = api.post("salesreceipt", receipt("1" * 22, item_id(api, "SKU-1")))
    assert long.json()["Fault"]["Error"][0]["code"] == "2050"


def test_a_stale_sync_token_is_5010_and_a_void_keeps_the_number_used(api: Api) -> None:
    made = api.post("salesreceipt", receipt("1001", item_id(api, "SKU-1"))).json()["SalesReceipt"]
    api.state.touch(REALM, "SalesReceipt", made["Id"])
    stale = api.post("salesreceipt", {"Id": made["Id"], "SyncToken": "0", "sparse": True, "PrivateNote": "x"})
    assert stale.json()["Fault"]["Error"][0]["code"] == "5010"
    voided = api.post("salesreceipt", {"Id": made["Id"], "SyncToken": "1"}, operation="void").json()["SalesReceipt"]
    assert voided["TotalAmt"] == 0 and voided["PrivateNote"].startswith("Voided")
    again = api.post("salesreceipt", receipt("1001", item_id(api, "SKU-1")))
    assert again.json()["Fault"]["Error"][0]["code"] == "6140"


def test_refresh_tokens_rotate_and_the_replaced_one_dies_once_its_successor_is_used(api: Api) -> None:
    initial = api.state.initial_refresh_token
    second = api.refresh_token  # issued by the fixture's first refresh
    assert second != initial
    assert api.refresh(initial)["status"] == 200  # not yet retired: its successor was never used
    api.refresh()  # the successor is used: the initial token is retired
    assert api.refresh(initial) == {"error": "invalid_grant", "status": 400}
    api.state.revoke_refresh_tokens()
    assert api.refresh()["error"] == "invalid_grant"


def test_an_expired_access_token_is_a_401_authentication_fault(api: Api) -> None:
    api.state.expire_access_tokens()
    response = api.post("salesreceipt", receipt("1001", item_id(api, "SKU-1")))
    assert response.status_code == 401 and response.json()["Fault"]["type"] == "AUTHENTICATION"


def test_the_query_language_filters_orders_pages_and_counts(api: Api) -> None:
    for n in range(5):
        api.post("salesreceipt", receipt(f"10{n}", item_id(api, "SKU-1"), f"{n + 1}.00"))
    found = api.query("select * from SalesReceipt where DocNumber = '102'")["QueryResponse"]["SalesReceipt"]
    assert [d["DocNumber"] for d in found] == ["102"]
    page = api.query("SELECT * FROM SalesReceipt ORDERBY TotalAmt DESC STARTPOSITION 2 MAXRESULTS 2")
    assert [d["DocNumber"] for d in page["QueryResponse"]["SalesReceipt"]] == ["103", "102"]
    assert api.query("select count(*) from SalesReceipt where DocNumber IN ('100', '104')")["QueryResponse"] == {
        "totalCount": 2
    }
    assert api.query("select * from SalesReceipt where DocNumber = 'nope'")["QueryResponse"] == {}
    assert api.query("select * from Item where Name = 'SKU-1' and Active = true")["QueryResponse"]["Item"]
    with pytest.raises(QueryError):
        parse("select * from SalesReceipt where")
    assert api.query("delete from SalesReceipt")["Fault"]["Error"][0]["code"] == "4000"


def test_the_limits_answer_429_with_a_sixty_second_wait() -> None:
    state, app = create_sandbox(limits=True)
    with run_in_thread(app) as running:
        api = Api(state, running.base_url)
        frozen = state.now()
        state.clock = lambda: frozen  # twelve calls within one second of the company's clock, however slow the machine
        statuses = [
            httpx.get(
                f"{running.base_url}/v3/company/{REALM}/companyinfo/{REALM}",
                headers={"Authorization": f"Bearer {api.access}"},
            )
            for _ in range(12)
        ]
    assert [r.status_code for r in statuses].count(429) >= 1
    throttled = next(r for r in statuses if r.status_code == 429)
    assert throttled.headers["Retry-After"] == "60"
    assert throttled.json()["Fault"]["Error"][0]["Message"] == "ThrottleExceeded"
