"""State of the QuickBooks Online sandbox: companies, their entities, OAuth 2 tokens, requestids.

What it emulates (QuickBooks Online Accounting API v3, ``/work/shared/api-facts.md`` and Intuit's
public entity reference, restated — nothing copied):

- **OAuth 2.** ``POST /oauth2/v1/tokens/bearer`` with the app's client id and secret (HTTP Basic)
  and ``grant_type=refresh_token`` answers a new bearer access token that expires after
  ``access_ttl`` seconds and — as Intuit does — a refresh token. With ``rotate_refresh`` (the
  default) every refresh issues a *new* refresh token and the one presented stops working, so a
  client that does not keep the newest one is locked out (``400 {"error": "invalid_grant"}``), as
  is one whose refresh token was revoked (:meth:`QuickBooksState.revoke_refresh_tokens`). The token a
  refresh replaced stays valid until the new one is first used (an assumption, documented: so a
  refresh whose answer was lost can be made again). While the app's keys are revoked (the shared
  ``revoke`` fault) the token endpoint answers 401 ``invalid_client`` and the API 401. An API
  call with an expired or unknown access token is answered 401 with QBO's ``AUTHENTICATION``
  fault (code 3200).
- **Companies.** Each realm id has its own entities (``Item``, ``TaxCode``, ``Account``,
  ``PaymentMethod``, ``Customer``, ``SalesReceipt``, ``Invoice``, ``RefundReceipt``,
  ``CreditMemo``), ids and ``requestid`` memory.
- **Idempotency.** A write carrying ``?requestid=`` (at most 50 characters) is answered, when the
  same requestid was seen before *in that company*, with the original status and body, and changes
  nothing (ledger kind ``requestid_replayed``).
- **Validation** (a ``ValidationFault`` 400, the first problem only, as QBO answers): a DocNumber
  longer than 21 characters (2050), a DocNumber already used by a document of the same type —
  voided ones included — (6140 "Duplicate Document Number Error"), an ``ItemRef``, ``TaxCodeRef``,
  ``CustomerRef``, account or payment method that does not exist or is inactive (2500 "Invalid
  Reference Id", naming the reference), a sales line whose ``Amount`` is not ``Qty × UnitPrice``
  (6070), a stale ``SyncToken`` on an update or a void (5010 "Stale Object Error"), a duplicate
  customer ``DisplayName`` (6240 "Duplicate Name Exists Error").
- **Documents.** ``TotalAmt`` is computed by the company (sales lines − discount lines + the
  ``TxnTaxDetail.TotalTax`` given); every write bumps ``SyncToken`` and ``MetaData.LastUpdatedTime``.
  A void keeps the document (its DocNumber stays used), sets every amount to 0 and prefixes the
  private note with ``Voided`` (an assumption: the public reference does not say what becomes of
  the note). Sparse updates (``"sparse": true``) replace the top-level fields given; a full update
  replaces the document.
- **Limits.** 500 requests per minute per company and 10 per second per company and app; over
  either, 429 with QBO's ``ThrottleExceeded`` fault and ``Retry-After: 60`` (api-facts: "429 → wait
  60 s"). Off with ``limits=False``.
- **Faults** beyond the shared ones (``sandboxes/base.py``): ``fail_after_commit`` answers the next
  N writes with a 503 *after* they were committed — the answer lost, the document made — so a test
  can prove that a retry with the same ``requestid`` makes no second document.

Ledger kinds: ``<entity>_created`` / ``_updated`` / ``_voided`` (key: DocNumber, else Id),
``requestid_replayed``, ``token_refreshed``, ``token_refused``.
"""

from __future__ import annotations

import itertools
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from orderbridge.sandboxes.base import SandboxState

Json = dict[str, Any]

#: the transaction entities the sandbox keeps (URL name → entity name)
TRANSACTIONS = {
    "salesreceipt": "SalesReceipt",
    "invoice": "Invoice",
    "refundreceipt": "RefundReceipt",
    "creditmemo": "CreditMemo",
}
#: the list entities (URL name → entity name)
LISTS = {
    "customer": "Customer",
    "item": "Item",
    "taxcode": "TaxCode",
    "account": "Account",
    "paymentmethod": "PaymentMethod",
}
ENTITIES = {**TRANSACTIONS, **LISTS}
DOC_NUMBER_MAX = 21
REQUEST_ID_MAX = 50
#: QBO's special item for the shipping line when the company's shipping preference is on
SHIPPING_ITEM_ID = "SHIPPING_ITEM_ID"
CENT = Decimal("0.01")


class Fault(Exception):
    """A QBO fault answer: HTTP status, fault type and its one error."""

    def __init__(
        self, status: int, code: str, message: str, detail: str, *, type_: str = "ValidationFault", element: str = ""
    ) -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.type = type_
        self.element = element

    def body(self, time: str) -> Json:
        error = {"Message": self.message, "Detail": self.detail, "code": self.code}
        if self.element:
            error["element"] = self.element
        return {"Fault": {"Error": [error], "type": self.type}, "time": time}


@dataclass
class Company:
    realm_id: str
    name: str
    currency: str
    entities: dict[str, dict[str, Json]] = field(default_factory=lambda: {e: {} for e in ENTITIES.values()})
    request_ids: dict[str, tuple[int, Json]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    #: timestamps of recent requests (rate limits)
    recent: list[float] = field(default_factory=list)


@dataclass
class AccessToken:
    realm_ids: frozenset[str]
    expires_at: datetime


class QuickBooksState(SandboxState):
    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        realm_id: str,
        company_name: str,
        currency: str,
        items: tuple[str, ...],
        access_ttl: float,
        rotate_refresh: bool,
        limits: bool,
        clock: Callable[[], datetime],
        refresh_token: str | None = None,
    ) -> None:
        super().__init__(credentials={f"{client_id}:{client_secret}"})
        self.client_id = client_id
        self.client_secret = client_secret
        self.access_ttl = access_ttl
        self.rotate_refresh = rotate_refresh
        self.limits = limits
        self.clock = clock
        self.access_tokens: dict[str, AccessToken] = {}
        #: refresh token → the realms it grants (only the live ones are here)
        self.refresh_tokens: dict[str, frozenset[str]] = {}
        #: new refresh token → the one it replaced (valid until the new one is first used)
        self.predecessor: dict[str, str] = {}
        self.companies: dict[str, Company] = {}
        self.fail_after_commit = 0
        self.add_company(realm_id, company_name, currency, items)
        #: the refresh token the "app connection" produced: what a user pastes into the hub
        self.initial_refresh_token = self.issue_refresh_token(frozenset({realm_id}), refresh_token)

    # --- time ----------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def stamp(self) -> str:
        return self.now().isoformat(timespec="milliseconds")

    # --- companies -----------------------------------------------------------------------------
    def add_company(self, realm_id: str, name: str, currency: str, items: tuple[str, ...]) -> Company:
        with self.lock:
            company = self.companies[realm_id] = Company(realm_id, name, currency)
            for code, desc, taxable in (("TAX", "Taxable", True), ("NON", "Non-taxable", False)):
                company.entities["TaxCode"][code] = {
                    "Id": code,
                    "Name": code,
                    "Description": desc,
                    "Active": True,
                    "Taxable": taxable,
                    "SyncToken": "0",
                }
            for name_, kind in (
                ("Undeposited Funds", "Other Current Asset"),
                ("Checking", "Bank"),
                ("Discounts given", "Income"),
                ("Sales of Product Income", "Income"),
            ):
                self._insert(company, "Account", {"Name": name_, "AccountType": kind, "Active": True})
            for name_ in ("Cash", "Credit Card", "Check"):
                self._insert(company, "PaymentMethod", {"Name": name_, "Active": True})
            self._insert(company, "Item", {"Name": "Shipping", "Type": "Service", "Active": True})
            for item in items:
                self.add_item(realm_id, item)
            return company

    def company(self, realm_id: str) -> Company:
        found = self.companies.get(realm_id)
        if found is None:
            raise Fault(
                403,
                "3100",
                "ApplicationAuthorizationFailed",
                f"message=ApplicationAuthorizationFailed; errorCode=003100; realm {realm_id} is not "
                "authorised for this token",
                type_="AUTHORIZATION",
            )
        return found

    def add_item(self, realm_id: str, name: str, *, sku: str = "", active: bool = True) -> Json:
        with self.lock:
            company = self.companies[realm_id]
            return self._insert(
                company, "Item", {"Name": name, "Sku": sku or name, "Type": "NonInventory", "Active": active}
            )

    def _insert(self, company: Company, entity: str, body: Json) -> Json:
        doc_id = str(next(company.ids))
        stamp = self.stamp()
        doc = {
            **body,
            "Id": doc_id,
            "SyncToken": "0",
            "domain": "QBO",
            "sparse": False,
            "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp},
        }
        company.entities[entity][doc_id] = doc
        return doc

    def find(self, realm_id: str, entity: str, **where: Any) -> list[Json]:
        with self.lock:
            docs = self.companies[realm_id].entities[entity].values()
            return [d for d in docs if all(d.get(k) == v for k, v in where.items())]

    def documents(self, realm_id: str, entity: str = "SalesReceipt") -> list[Json]:
        with self.lock:
            return list(self.companies[realm_id].entities[entity].values())

    # --- tokens --------------------------------------------------------------------------------
    def issue_refresh_token(self, realms: frozenset[str], token: str | None = None) -> str:
        token = token or "RT" + secrets.token_urlsafe(24)
        with self.lock:
            self.refresh_tokens[token] = realms
        return token

    def refresh(self, client: str | None, refresh_token: str) -> tuple[int, Json]:
        """The token endpoint's answer to ``grant_type=refresh_token``."""
        with self.lock:
            if client is None or not self.credentials_ok(client):
                self.record("token_refused", "invalid_client")
                return 401, {"error": "invalid_client"}
            realms = self.refresh_tokens.get(refresh_token)
            if realms is None:
                self.record("token_refused", "invalid_grant")
                return 400, {"error": "invalid_grant"}
            # the token this one replaced is retired now that the new one is in use
            self.refresh_tokens.pop(self.predecessor.pop(refresh_token, ""), None)
            if self.rotate_refresh:
                presented = refresh_token
                refresh_token = self.issue_refresh_token(realms)
                self.predecessor[refresh_token] = presented
            access = "AT" + secrets.token_urlsafe(24)
            self.access_tokens[access] = AccessToken(realms, self.now() + timedelta(seconds=self.access_ttl))
            self.record("token_refreshed", refresh_token[:8], rotated=self.rotate_refresh)
            return 200, {
                "token_type": "bearer",
                "access_token": access,
                "expires_in": math.ceil(self.access_ttl),
                "refresh_token": refresh_token,
                "x_refresh_token_expires_in": 8_726_400,
            }

    def check_access(self, header: str | None, realm_id: str) -> None:
        token = header[7:].strip() if header and header[:7].lower() == "bearer " else None
        with self.lock:
            found = self.access_tokens.get(token) if token else None
            if found is None or found.expires_at <= self.now() or self.revoked:
                raise Fault(
                    401,
                    "3200",
                    "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "Token expired or invalid: present a valid bearer access token",
                    type_="AUTHENTICATION",
                )
            if realm_id not in found.realm_ids:
                self.company("\x00")  # raises the authorisation fault

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token in self.access_tokens.values():
                token.expires_at = self.now() - timedelta(seconds=1)

    def revoke_refresh_tokens(self) -> None:
        """The user disconnected the app (or the refresh token expired): every refresh is refused."""
        with self.lock:
            self.refresh_tokens.clear()
            self.expire_access_tokens()

    # --- rate limits ---------------------------------------------------------------------------
    def throttled(self, company: Company) -> bool:
        if not self.limits:
            return False
        ts = self.now().timestamp()
        with self.lock:
            company.recent = [t for t in company.recent if t > ts - 60]
            last_second = sum(1 for t in company.recent if t > ts - 1)
            if len(company.recent) >= 500 or last_second >= 10:
                return True
            company.recent.append(ts)
            return False

    def control_extra(self) -> dict[str, Any]:
        with self.lock:
            return {
                "companies": {
                    r: {e: len(docs) for e, docs in c.entities.items() if docs} for r, c in self.companies.items()
                }
            }

    def touch(self, realm_id: str, entity: str, doc_id: str) -> None:
        """Another user edits the document in QuickBooks: its SyncToken moves (a client holding the
        old one gets 5010 on its next update)."""
        with self.lock:
            doc = self.companies[realm_id].entities[entity][doc_id]
            doc["SyncToken"] = str(int(doc["SyncToken"]) + 1)
            doc["MetaData"] = {**doc["MetaData"], "LastUpdatedTime": self.stamp()}
            self.record(f"{entity}_touched", doc.get("DocNumber") or doc_id, Id=doc_id)

    # --- writes --------------------------------------------------------------------------------
    def write(self, realm_id: str, entity: str, body: Any, operation: str, request_id: str | None) -> tuple[int, Json]:
        """One create / update / void, answered as QBO does (status, body); a repeated requestid
        gets the first answer."""
        with self.lock:
            company = self.company(realm_id)
            if request_id is not None:
                if len(request_id) > REQUEST_ID_MAX:
                    raise Fault(
                        400,
                        "2020",
                        "Required param missing, need to supply the required value for the API",
                        f"requestid is longer than {REQUEST_ID_MAX} characters",
                    )
                seen = company.request_ids.get(request_id)
                if seen is not None:
                    self.record("requestid_replayed", request_id, entity=entity)
                    return seen
            try:
                doc = self._write(company, entity, body, operation)
                answer: tuple[int, Json] = (200, {entity: doc, "time": self.stamp()})
            except Fault as fault:
                answer = (fault.status, fault.body(self.stamp()))
            if request_id is not None:
                company.request_ids[request_id] = answer
            return answer

    def _write(self, company: Company, entity: str, body: Any, operation: str) -> Json:
        if not isinstance(body, dict):
            raise Fault(400, "2010", "Request has invalid or unsupported property", "the body is not a JSON object")
        if operation == "void":
            return self._void(company, entity, body)
        if body.get("Id") is not None:
            return self._update(company, entity, body)
        return self._create(company, entity, body)

    def _create(self, company: Company, entity: str, body: Json) -> Json:
        if entity == "Customer":
            self._check_customer(company, body, None)
            doc = self._insert(company, "Customer", {"Active": True, **body})
            self.record("Customer_created", doc["Id"], DisplayName=doc.get("DisplayName"))
            return doc
        if entity in ("Item",):
            doc = self._insert(company, entity, {"Active": True, **body})
            return doc
        if entity not in TRANSACTIONS.values():
            raise Fault(400, "2010", "Request has invalid or unsupported property", f"{entity} cannot be created here")
        clean = self._validated(company, entity, body, None)
        doc = self._insert(company, entity, clean)
        self.record(f"{entity}_created", doc.get("DocNumber") or doc["Id"], Id=doc["Id"], doc=_copy(doc))
        return doc

    def _current(self, company: Company, entity: str, body: Json) -> Json:
        doc = company.entities[entity].get(str(body.get("Id")))
        if doc is None:
            raise Fault(
                400,
                "610",
                "Object Not Found",
                f"Object Not Found : Something you're trying to use has been made inactive or deleted: "
                f"{entity} Id {body.get('Id')}",
            )
        if str(body.get("SyncToken")) != doc["SyncToken"]:
            raise Fault(
                400,
                "5010",
                "Stale Object Error",
                f"Stale Object Error : You and another user were working on {entity} {doc['Id']} at the same "
                f"time; the other finished first (SyncToken {doc['SyncToken']}, you sent "
                f"{body.get('SyncToken')}), so your work was not saved.",
            )
        return doc

    def _update(self, company: Company, entity: str, body: Json) -> Json:
        doc = self._current(company, entity, body)
        if entity in TRANSACTIONS.values() and doc.get("_voided"):
            raise Fault(
                400,
                "6540",
                "Deposited Transaction cannot be changed",
                f"{entity} {doc['Id']} is voided and cannot be changed",
            )
        given = {k: v for k, v in body.items() if k not in ("Id", "SyncToken", "sparse", "MetaData", "domain")}
        merged = (
            {**doc, **given}
            if body.get("sparse")
            else {**{k: doc[k] for k in ("Id", "SyncToken", "MetaData", "domain")}, **given}
        )
        if entity == "Customer":
            self._check_customer(company, merged, doc["Id"])
        elif entity in TRANSACTIONS.values():
            merged = {**merged, **self._validated(company, entity, merged, doc["Id"])}
        merged["SyncToken"] = str(int(doc["SyncToken"]) + 1)
        merged["MetaData"] = {**doc["MetaData"], "LastUpdatedTime": self.stamp()}
        merged["sparse"] = False
        company.entities[entity][doc["Id"]] = merged
        self.record(f"{entity}_updated", merged.get("DocNumber") or merged["Id"], Id=merged["Id"], doc=_copy(merged))
        return merged

    def _void(self, company: Company, entity: str, body: Json) -> Json:
        if entity not in TRANSACTIONS.values():
            raise Fault(400, "2010", "Request has invalid or unsupported property", f"{entity} cannot be voided")
        doc = self._current(company, entity, body)
        if doc.get("_voided"):
            return doc
        lines = [{**line, "Amount": Decimal("0")} for line in doc.get("Line", [])]
        note = doc.get("PrivateNote") or ""
        voided = {
            **doc,
            "Line": lines,
            "TotalAmt": Decimal("0"),
            "Balance": Decimal("0"),
            "TxnTaxDetail": {"TotalTax": Decimal("0")},
            "PrivateNote": f"Voided - {note}" if note else "Voided",
            "SyncToken": str(int(doc["SyncToken"]) + 1),
            "MetaData": {**doc["MetaData"], "LastUpdatedTime": self.stamp()},
            "_voided": True,
        }
        company.entities[entity][doc["Id"]] = voided
        self.record(f"{entity}_voided", doc.get("DocNumber") or doc["Id"], Id=doc["Id"])
        return voided

    def _check_customer(self, company: Company, body: Json, own_id: str | None) -> None:
        name = body.get("DisplayName")
        if not isinstance(name, str) or not name.strip():
            raise Fault(
                400,
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter DisplayName is missing in the request",
                element="DisplayName",
            )
        for other in company.entities["Customer"].values():
            if other["Id"] != own_id and str(other.get("DisplayName", "")).lower() == name.lower():
                raise Fault(
                    400,
                    "6240",
                    "Duplicate Name Exists Error",
                    f"The name supplied already exists. : Another customer is already using the name "
                    f"{name!r} (Id={other['Id']})",
                )

    def _ref(self, company: Company, entity: str, ref: Any, element: str, *, required: bool = False) -> None:
        if ref is None:
            if required:
                raise Fault(
                    400,
                    "2020",
                    "Required param missing, need to supply the required value for the API",
                    f"Required parameter {element} is missing in the request",
                    element=element,
                )
            return
        value = ref.get("value") if isinstance(ref, dict) else None
        if entity == "Item" and value == SHIPPING_ITEM_ID:
            return
        found = company.entities[entity].get(str(value)) if value is not None else None
        if found is None or not found.get("Active", True):
            raise Fault(
                400,
                "2500",
                "Invalid Reference Id",
                f"Invalid Reference Id : {entity} {value!r} does not exist or is inactive ({element})",
                element=element,
            )

    def _validated(self, company: Company, entity: str, body: Json, own_id: str | None) -> Json:
        number = body.get("DocNumber")
        if number is not None:
            if not isinstance(number, str) or len(number) > DOC_NUMBER_MAX:
                raise Fault(
                    400,
                    "2050",
                    "String length is either shorter or longer than supported by specification",
                    f"DocNumber is {len(str(number))} characters; the maximum is {DOC_NUMBER_MAX}",
                    element="DocNumber",
                )
            for other in company.entities[entity].values():
                if other["Id"] != own_id and other.get("DocNumber") == number:
                    raise Fault(
                        400,
                        "6140",
                        "Duplicate Document Number Error",
                        f"Duplicate Document Number Error : You must specify a different number. This number "
                        f"has already been used. DocNumber={number} is assigned to TxnType={entity} with "
                        f"TxnId={other['Id']}",
                    )
        self._ref(
            company,
            "Customer",
            body.get("CustomerRef"),
            "CustomerRef",
            required=entity in ("Invoice", "RefundReceipt", "CreditMemo"),
        )
        self._ref(
            company,
            "Account",
            body.get("DepositToAccountRef"),
            "DepositToAccountRef",
            required=entity == "RefundReceipt",
        )
        self._ref(company, "PaymentMethod", body.get("PaymentMethodRef"), "PaymentMethodRef")
        lines = body.get("Line")
        if not isinstance(lines, list) or not lines:
            raise Fault(
                400,
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter Line is missing in the request",
                element="Line",
            )
        total = Decimal("0")
        out_lines = []
        for i, line in enumerate(lines, start=1):
            if not isinstance(line, dict):
                raise Fault(400, "2010", "Request has invalid or unsupported property", f"Line {i} is not an object")
            kind = line.get("DetailType")
            amount = _decimal(line.get("Amount"), f"Line {i} Amount")
            if kind == "SalesItemLineDetail":
                detail = line.get("SalesItemLineDetail") or {}
                self._ref(company, "Item", detail.get("ItemRef"), "Line.SalesItemLineDetail.ItemRef", required=True)
                self._ref(company, "TaxCode", detail.get("TaxCodeRef"), "Line.SalesItemLineDetail.TaxCodeRef")
                if detail.get("Qty") is not None and detail.get("UnitPrice") is not None:
                    expected = (_decimal(detail["Qty"], "Qty") * _decimal(detail["UnitPrice"], "UnitPrice")).quantize(
                        CENT, ROUND_HALF_UP
                    )
                    if expected != amount.quantize(CENT, ROUND_HALF_UP):
                        raise Fault(
                            400,
                            "6070",
                            "Amount is not equal to UnitPrice * Qty",
                            f"Line {i}: Amount {amount} is not UnitPrice * Qty ({expected})",
                        )
                total += amount
            elif kind == "DiscountLineDetail":
                detail = line.get("DiscountLineDetail") or {}
                self._ref(company, "Account", detail.get("DiscountAccountRef"), "DiscountLineDetail.DiscountAccountRef")
                total -= amount
            elif kind in ("SubTotalLineDetail", "DescriptionOnly"):
                pass
            else:
                raise Fault(
                    400,
                    "2010",
                    "Request has invalid or unsupported property",
                    f"Line {i}: DetailType {kind!r} is not supported",
                )
            out_lines.append({**line, "Id": str(i), "LineNum": i})
        tax_detail = body.get("TxnTaxDetail") or {}
        tax = _decimal(tax_detail.get("TotalTax", 0), "TxnTaxDetail.TotalTax")
        if body.get("GlobalTaxCalculation") != "TaxInclusive":
            total += tax
        return {
            **body,
            "Line": out_lines,
            "TxnTaxDetail": {**tax_detail, "TotalTax": tax},
            "TotalAmt": total.quantize(CENT, ROUND_HALF_UP),
            "Balance": total.quantize(CENT, ROUND_HALF_UP) if entity == "Invoice" else Decimal("0"),
            "CurrencyRef": body.get("CurrencyRef") or {"value": company.currency},
            "TxnDate": body.get("TxnDate") or self.now().date().isoformat(),
        }


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise Fault(400, "2010", "Request has invalid or unsupported property", f"{what} is not a number")
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise Fault(400, "2010", "Request has invalid or unsupported property", f"{what} is not a number") from None


def _copy(doc: Json) -> Json:
    return {k: v for k, v in doc.items() if not k.startswith("_")}
