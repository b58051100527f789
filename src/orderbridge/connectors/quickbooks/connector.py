"""QuickBooks Online as an accounting destination: one sales document per order, never two.

**Posting** (``post_orders``). Each order becomes one ``SalesReceipt`` — or ``Invoice``, per the
connection's ``document_type`` — posted alone (QBO's ``/batch`` would save requests but answers
per item with no ``requestid`` per item). Before sending, the connector resolves what the document
references, each once per connector and cached: the customer (found by e-mail, else by display
name, else created — display names are unique in a company, so a different person with a taken
name is created as ``Name (e-mail)``), each line's QBO Item (the line's destination SKU as an Item
Id when it is one, else the Item of that name, else of that SKU), the shipping item, the accounts.
The document carries ``DocNumber`` (the order number without ``#``) and goes with
``requestid`` = the posting's idempotency key (:func:`client.request_id`), so a resend after a lost
answer gets QBO's first answer and makes nothing.

Outcomes, per order (the others of the batch still go):

- accepted → ``document_id`` is QBO's ``Id``;
- **an item the company does not have** (no Item of that name, or QBO's 400 "Invalid Reference
  Id" on an ``ItemRef``) → not posted; the order is held ``destination_rejected`` with QBO's words,
  naming the SKU and the item, and the fix *map the SKU* (seed 002: the message at the top of the
  order page); an unknown ``TaxCodeRef`` likewise, with the fix *set the tax code setting*;
- **DocNumber already used** (QBO's 400 6140 "Duplicate Document Number Error"): the document with
  that number is read; when it is this order's (the hub's marker in its private note names the
  order key) and live, that document *is* the posting — returned as posted, nothing new made (a
  re-post after a lost ``requestid`` memory); otherwise the order is held with QBO's message and
  the id of the document that has the number;
- **a DocNumber over 21 characters** → held ``destination_field_too_long`` and not sent: cutting
  it could make another order's number;
- any other 400 → held with QBO's message (``destination_rejected``);
- 401 → the access token is refreshed and the call made once more; a refused refresh, or a second
  401, raises :class:`AuthFailed` ("reconnect QuickBooks"), which turns the connection ``failing``;
  429 waits (``Retry-After``, else 60 s); 5xx, timeouts and cut answers are retried with the same
  ``requestid``.

**Amendments** (``AMEND_DOCUMENTS``; the table is in ``docs/connectors/quickbooks.md``). Lines,
totals, address, customer, notes and payment changes are **updated in place** — a sparse update of
the same document with its ``SyncToken`` (QBO lets a SalesReceipt's lines be replaced), so the
DocNumber stays the order's and no second document exists even for a moment; a 5010 "Stale Object
Error" (someone edited it in QuickBooks meanwhile) re-reads the token and tries once more. A
cancellation **voids** the document (it stays, at zero, DocNumber kept). A refund is an
**adjustment**: a ``RefundReceipt`` for the refunded amount on the document's customer.
``find_document`` recognises the hub's documents by the marker in ``PrivateNote``: it reads the
document it last saw for the key, else scans the most recently changed documents
(:data:`FIND_SCAN_PAGES` pages of 1000).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import httpx

from orderbridge.connectors.base import (
    Adjustment,
    Amendment,
    Capability,
    CredentialField,
    Declaration,
    OutgoingOrder,
    PostedDocument,
    PostResult,
    RemoteDocument,
    Role,
    Setting,
    SettingScope,
)
from orderbridge.connectors.quickbooks import mapper
from orderbridge.connectors.quickbooks.client import SYSTEM, TOKEN_ENDPOINT_BASE_URL, QuickBooksClient
from orderbridge.domain import reasons as R
from orderbridge.domain.changes import ChangeClass
from orderbridge.domain.mappings import MappingKind
from orderbridge.errors import DestinationRejected, RemoteUnavailable, SettingsError
from orderbridge.fixes import Fix, FixAction, update_credentials

DEFAULT_BASE_URL = "https://quickbooks.api.intuit.com"
DOCUMENT_TYPES = ("SalesReceipt", "Invoice")
#: how many pages of 1000 recently changed documents ``find_document`` reads for an unknown key
FIND_SCAN_PAGES = 3


class _Refused(Exception):
    """An order that cannot be posted as it is: the result to return for it."""

    def __init__(self, result: PostResult) -> None:
        super().__init__(str(result.error))
        self.result = result


class QuickBooksDestination:
    declaration = Declaration(
        kind="quickbooks",
        role=Role.DESTINATION,
        title="QuickBooks Online",
        capabilities=frozenset({Capability.POST_ORDERS, Capability.AMEND_DOCUMENTS}),
        credentials=(
            CredentialField(
                "client_id", "the app's client id (developer.intuit.com → Keys)", secret=False, example="<client id>"
            ),
            CredentialField("client_secret", "the app's client secret", example="<client secret>"),
            CredentialField(
                "refresh_token",
                "the OAuth 2 refresh token of the company's connection (replaced by the hub when Intuit rotates it)",
                example="<refresh token>",
            ),
            CredentialField(
                "realm_id", "the QuickBooks company id (realmId)", secret=False, example="9130350000000001"
            ),
        ),
        settings=(
            Setting("document_type", "SalesReceipt (paid orders) or Invoice (orders paid later)", "SalesReceipt"),
            Setting("token_url", "Intuit's OAuth 2 token endpoint", TOKEN_ENDPOINT_BASE_URL),
            Setting("minorversion", "the QBO API minor version sent with every call", "75"),
            Setting("deposit_account", "SalesReceipt: the account (name or Id) paid into; empty: QBO's default", ""),
            Setting("payment_method", "SalesReceipt: the payment method (name or Id); empty: none", ""),
            Setting("shipping_item", "the Item (name or Id) shipping lines are posted on", "SHIPPING_ITEM_ID"),
            Setting("discount_account", "the account (name or Id) of the discount line; empty: QBO's default", ""),
            Setting("tax_code", "the TaxCode of taxed lines", "TAX"),
            Setting("untaxed_code", "the TaxCode of lines without tax and of shipping", "NON"),
            Setting("refund_account", "RefundReceipt: the account (name or Id) refunds are paid from", "Checking"),
            Setting("requests_per_second", "client pacing (QBO allows 10 per second per company and app)", 10),
            Setting(
                "sku_mapping",
                "'identity' (default): a SKU is looked up as the QBO Item of that name; 'required': every SKU "
                "needs a mapping to an Item name or Id",
                "identity",
                SettingScope.HUB,
            ),
        ),
        mapping_kinds=frozenset({MappingKind.SKU}),
        document_key="ob-{channel_id}-{external_id}",
        amendments=MappingProxyType(
            {
                ChangeClass.LINES: Amendment.UPDATE_IN_PLACE,
                ChangeClass.LINES_CANCELLED: Amendment.UPDATE_IN_PLACE,
                ChangeClass.TOTALS: Amendment.UPDATE_IN_PLACE,
                ChangeClass.SHIPPING_ADDRESS: Amendment.UPDATE_IN_PLACE,
                ChangeClass.CUSTOMER: Amendment.UPDATE_IN_PLACE,
                ChangeClass.NOTES: Amendment.UPDATE_IN_PLACE,
                ChangeClass.PAYMENT_CAPTURED: Amendment.UPDATE_IN_PLACE,
                ChangeClass.CANCELLED: Amendment.VOID_AND_REPOST,
                ChangeClass.REFUNDED: Amendment.ADJUST,
                ChangeClass.PARTIALLY_REFUNDED: Amendment.ADJUST,
            }
        ),
        docs="docs/connectors/quickbooks.md",
    )
    max_batch = 30

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        settings: Mapping[str, Any],
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        missing = [f.name for f in self.declaration.credentials if not credentials.get(f.name)]
        if missing:
            raise SettingsError(
                f"QuickBooks credentials missing: {', '.join(missing)}",
                hint="Set the connection's client_id, client_secret, refresh_token and realm_id.",
                fix=update_credentials("Set the connection's QuickBooks credentials.", credential=",".join(missing)),
            )
        merged = {**self.declaration.default_settings, **settings}
        self.entity = str(merged["document_type"])
        if self.entity not in DOCUMENT_TYPES:
            raise SettingsError(
                f"document_type {self.entity!r} is not one QuickBooks takes here",
                hint="Use SalesReceipt or Invoice.",
                fix=Fix.of(
                    FixAction.SET_SETTING, "Set document_type to SalesReceipt or Invoice.", setting="document_type"
                ),
            )
        self.settings = merged
        self.client = QuickBooksClient(
            base_url or DEFAULT_BASE_URL,
            credentials["realm_id"],
            credentials["client_id"],
            credentials["client_secret"],
            credentials["refresh_token"],
            token_url=str(merged["token_url"] or TOKEN_ENDPOINT_BASE_URL),
            minorversion=str(merged["minorversion"]),
            per_second=int(merged["requests_per_second"] or 10),
            http=http,
            sleep=sleep,
        )
        self._lock = threading.Lock()
        self._items: dict[str, str] = {}
        self._refs: dict[tuple[str, str], str | None] = {}
        self._customers: dict[tuple[str, str], str] = {}
        self._documents: dict[str, str] = {}

    # --- Connector -----------------------------------------------------------------------------
    def check(self) -> str:
        status, body = self.client.read("companyinfo", self.client.realm_id)
        if status != 200:
            raise self._unexpected(status, body, "companyinfo")
        info = mapper.one(body, "CompanyInfo") or {}
        return f"QuickBooks company {info.get('CompanyName', '?')} ({self.client.realm_id}) reachable"

    def close(self) -> None:
        self.client.close()

    def on_credentials_rotated(self, callback: Callable[[Mapping[str, str]], None]) -> None:
        """``RotatingCredentials``: ``callback`` gets each refresh token Intuit issues in place of
        the stored one, to store (encrypted) before it is needed again."""
        self.client.on_rotated = callback

    # --- posting -------------------------------------------------------------------------------
    def post_orders(self, orders: Sequence[OutgoingOrder]) -> list[PostResult]:
        return [self._post(o) for o in orders]

    def _post(self, outgoing: OutgoingOrder) -> PostResult:
        order = outgoing.resolved.order
        number = mapper.doc_number(order.number)
        if len(number) > mapper.DOC_NUMBER_MAX:
            return PostResult(
                outgoing.order_key,
                None,
                DestinationRejected(
                    f"{SYSTEM} limits DocNumber to {mapper.DOC_NUMBER_MAX} characters; order number {number!r} has "
                    f"{len(number)}, so order {order.number} was not sent"
                ),
                hold=R.destination_field_too_long(SYSTEM, "DocNumber", len(number), mapper.DOC_NUMBER_MAX, number),
            )
        try:
            body = mapper.sales_body(outgoing, self._resolve(outgoing), entity=self.entity, number=number)
        except _Refused as refused:
            return refused.result
        status, answer = self.client.write(self.entity, body, key=outgoing.idempotency_key)
        if status == 200:
            return self._posted(outgoing, answer, body)
        problem = mapper.fault(status, answer)
        if status == 400 and problem.code == "6140":
            return self._duplicate(outgoing, number, problem, body)
        if status == 400:
            return replace(self._refusal(outgoing, problem), sent=body)
        raise self._unexpected(status, answer, self.entity)

    def _posted(self, outgoing: OutgoingOrder, answer: Any, body: Mapping[str, Any]) -> PostResult:
        doc = mapper.one(answer, self.entity)
        if doc is None or not doc.get("Id"):
            raise RemoteUnavailable(f"{SYSTEM} answered the {self.entity} without an Id")
        self._documents[outgoing.order_key] = str(doc["Id"])
        notes: tuple[str, ...] = ()
        total = mapper.money(doc, outgoing.resolved.order.currency)
        if total is not None and total.amount != outgoing.resolved.order.total.amount:
            notes = (
                f"{SYSTEM}: the {self.entity} totals {total.amount} where the order totals "
                f"{outgoing.resolved.order.total.amount} (QuickBooks computes its own total)",
            )
        return PostResult(outgoing.order_key, str(doc["Id"]), notes=notes, sent=dict(body))

    def _duplicate(self, outgoing: OutgoingOrder, number: str, problem: mapper.QboFault, body: Any) -> PostResult:
        status, answer = self.client.query(f"select * from {self.entity} where DocNumber = {mapper.quoted(number)}")
        if status != 200:
            raise self._unexpected(status, answer, "query")
        for doc in mapper.found(answer, self.entity):
            marked = mapper.marked_key(doc)
            if marked is not None and marked[0] == outgoing.order_key and not mapper.is_voided(doc):
                self._documents[outgoing.order_key] = str(doc["Id"])
                return PostResult(
                    outgoing.order_key,
                    str(doc["Id"]),
                    notes=(
                        f"{SYSTEM} already had {self.entity} {number} (Id {doc['Id']}) for this order: "
                        "that document is the posting, nothing new was made",
                    ),
                )
        holder = next((str(d.get("Id")) for d in mapper.found(answer, self.entity)), "?")
        return PostResult(
            outgoing.order_key,
            None,
            DestinationRejected(
                f"{SYSTEM} refused order {outgoing.resolved.order.number}: {problem.text()} "
                f"(the number is used by {self.entity} Id {holder}, which is not this order's live document)",
                status=400,
                hint="Void or renumber that document in QuickBooks if it is a stray copy, then retry the order.",
            ),
            sent=dict(body),
        )

    def _refusal(self, outgoing: OutgoingOrder, problem: mapper.QboFault) -> PostResult:
        order = outgoing.resolved.order
        message = f"{SYSTEM} refused order {order.number}: {problem.text()}"
        error = DestinationRejected(message, status=problem.status)
        if problem.code == "2500" and "ItemRef" in (problem.element + problem.detail):
            by_id = {v: k for k, v in self._items.items()}
            sku_of = {line.destination_sku: line.channel_sku for line in outgoing.resolved.lines}
            for item_id, dest_sku in by_id.items():
                if repr(item_id) in problem.detail or f" {item_id} " in problem.detail:
                    with self._lock:
                        self._items.pop(dest_sku, None)
                    return PostResult(
                        outgoing.order_key,
                        None,
                        error,
                        hold=R.destination_item_unknown(
                            SYSTEM, sku_of.get(dest_sku, dest_sku), dest_sku, problem.text()
                        ),
                    )
        if problem.code == "2500" and "TaxCodeRef" in (problem.element + problem.detail):
            return PostResult(
                outgoing.order_key, None, error, hold=R.destination_setting_unknown(SYSTEM, "tax_code", problem.text())
            )
        return PostResult(outgoing.order_key, None, error)

    # --- references ----------------------------------------------------------------------------
    def _resolve(self, outgoing: OutgoingOrder) -> mapper.Refs:
        order = outgoing.resolved.order
        items: dict[str, str] = {}
        sku_of = {line.line_key: line for line in outgoing.resolved.lines}
        for line in order.lines:
            resolved = sku_of.get(line.external_id)
            dest = resolved.destination_sku if resolved else (line.sku or "")
            channel = resolved.channel_sku if resolved else (line.sku or "")
            found = self._item(dest)
            if found is None:
                raise _Refused(
                    PostResult(
                        outgoing.order_key,
                        None,
                        DestinationRejected(
                            f"{SYSTEM} has no item {dest!r} (no active Item with that Id, name or SKU), so order "
                            f"{order.number} was not sent"
                        ),
                        hold=R.destination_item_unknown(
                            SYSTEM, channel, dest, f"no active Item with the Id, name or SKU {dest!r}"
                        ),
                    )
                )
            items[dest] = found
        shipping = str(self.settings["shipping_item"] or "SHIPPING_ITEM_ID")
        if shipping != "SHIPPING_ITEM_ID":
            shipping = self._named("Item", shipping, "shipping_item", outgoing)
        return mapper.Refs(
            customer_id=self._customer(outgoing),
            items=items,
            shipping_item=shipping,
            tax_code=str(self.settings["tax_code"]),
            untaxed_code=str(self.settings["untaxed_code"]),
            discount_account=self._optional("Account", "discount_account", outgoing),
            deposit_account=self._optional("Account", "deposit_account", outgoing),
            payment_method=self._optional("PaymentMethod", "payment_method", outgoing),
        )

    def _item(self, sku: str) -> str | None:
        if not sku:
            return None
        cached = self._items.get(sku)
        if cached is not None:
            return cached
        wheres = ([f"Id = {mapper.quoted(sku)}"] if sku.isdigit() else []) + [
            f"Name = {mapper.quoted(sku)}",
            f"Sku = {mapper.quoted(sku)}",
        ]
        for where in wheres:
            status, body = self.client.query(f"select * from Item where {where} and Active = true")
            if status != 200:
                raise self._unexpected(status, body, "query")
            docs = mapper.found(body, "Item")
            if docs:
                with self._lock:
                    self._items[sku] = str(docs[0]["Id"])
                return str(docs[0]["Id"])
        return None

    def _optional(self, entity: str, setting: str, outgoing: OutgoingOrder) -> str | None:
        value = str(self.settings.get(setting) or "")
        return self._named(entity, value, setting, outgoing) if value else None

    def _named(self, entity: str, value: str, setting: str, outgoing: OutgoingOrder | None) -> str:
        """The Id of the ``entity`` a setting names (by Id or name); refused with the fix when none."""
        key = (entity, value)
        if key not in self._refs:
            where = f"Id = {mapper.quoted(value)}" if value.isdigit() else f"Name = {mapper.quoted(value)}"
            status, body = self.client.query(f"select * from {entity} where {where}")
            if status != 200:
                raise self._unexpected(status, body, "query")
            docs = mapper.found(body, entity)
            self._refs[key] = str(docs[0]["Id"]) if docs else None
        found = self._refs[key]
        if found is None:
            problem = f"no {entity} {value!r} (setting {setting})"
            error = DestinationRejected(f"{SYSTEM} has {problem}")
            if outgoing is None:
                raise error
            raise _Refused(
                PostResult(
                    outgoing.order_key, None, error, hold=R.destination_setting_unknown(SYSTEM, setting, problem)
                )
            )
        return found

    def _customer(self, outgoing: OutgoingOrder) -> str:
        order = outgoing.resolved.order
        name = mapper.display_name(order)
        key = (order.email.lower(), name)
        cached = self._customers.get(key)
        if cached is not None:
            return cached
        wheres = ([f"PrimaryEmailAddr = {mapper.quoted(order.email)}"] if order.email else []) + (
            [] if order.email else [f"DisplayName = {mapper.quoted(name)}"]
        )
        for where in wheres:
            status, body = self.client.query(f"select * from Customer where {where}")
            if status != 200:
                raise self._unexpected(status, body, "query")
            docs = mapper.found(body, "Customer")
            if docs:
                self._customers[key] = str(docs[0]["Id"])
                return self._customers[key]
        candidates = [name] + ([mapper.display_name_with_email(order)] if order.email else [])
        for candidate in candidates:
            status, body = self.client.write(
                "Customer", mapper.customer_body(order, candidate), key=f"cust:{order.email or ''}:{candidate}"
            )
            if status == 200:
                doc = mapper.one(body, "Customer")
                if doc is None:
                    raise RemoteUnavailable(f"{SYSTEM} answered the Customer without an Id")
                self._customers[key] = str(doc["Id"])
                return self._customers[key]
            problem = mapper.fault(status, body)
            if status == 400 and problem.code == "6240":
                if not order.email:  # the same name and no e-mail: the same customer, found by name above
                    break
                continue
            raise _Refused(self._refusal(outgoing, problem))
        raise _Refused(
            PostResult(
                outgoing.order_key,
                None,
                DestinationRejected(
                    f"{SYSTEM} has a customer named {name!r} that could not be used or created for order {order.number}"
                ),
            )
        )

    # --- amendments ----------------------------------------------------------------------------
    def find_document(self, order_key: str) -> RemoteDocument | None:
        known = self._documents.get(order_key)
        if known is not None:
            doc = self._read(known)
            if doc is not None and (mapper.marked_key(doc) or (order_key,))[0] == order_key:
                return self._remote(order_key, doc)
        candidates: list[dict[str, Any]] = []
        for page in range(FIND_SCAN_PAGES):
            status, body = self.client.query(
                f"select * from {self.entity} ORDERBY MetaData.LastUpdatedTime DESC "
                f"STARTPOSITION {page * 1000 + 1} MAXRESULTS 1000"
            )
            if status != 200:
                raise self._unexpected(status, body, "query")
            docs = mapper.found(body, self.entity)
            candidates += [d for d in docs if (mapper.marked_key(d) or ("",))[0] == order_key]
            if len(docs) < 1000:
                break
        if not candidates:
            return None
        live = [d for d in candidates if not mapper.is_voided(d)]
        chosen = (live or candidates)[0]
        self._documents[order_key] = str(chosen["Id"])
        return self._remote(order_key, chosen)

    def _remote(self, order_key: str, doc: Mapping[str, Any]) -> RemoteDocument:
        return RemoteDocument(
            order_key,
            str(doc["Id"]),
            "voided" if mapper.is_voided(doc) else "live",
            version_token=str(doc.get("SyncToken")),
            number=str(doc.get("DocNumber") or "") or None,
            total=mapper.money(doc, "USD"),
        )

    def _read(self, doc_id: str, entity: str | None = None) -> dict[str, Any] | None:
        entity = entity or self.entity
        status, body = self.client.read(entity, doc_id)
        if status == 400 and mapper.fault(status, body).code == "610":
            return None
        if status != 200:
            raise self._unexpected(status, body, entity)
        return mapper.one(body, entity)

    def _with_fresh_token(
        self,
        document: PostedDocument,
        key: str,
        build: Callable[[dict[str, Any]], dict[str, Any]],
        operation: str | None = None,
    ) -> tuple[int, Any, dict[str, Any]]:
        """Send ``build(current)`` for the document; on a 5010 stale token, read it again and send
        once more under a second requestid (the first one's answer, the fault, is what QBO keeps)."""
        body: dict[str, Any] = {}
        status, answer = 0, None
        for attempt, rid in enumerate((key, f"{key}:2")):
            current = self._read(document.document_id)
            if current is None:
                raise _Refused(
                    PostResult(
                        document.order_key,
                        None,
                        DestinationRejected(
                            f"{SYSTEM} has no {self.entity} {document.document_id} any more (deleted in QuickBooks)"
                        ),
                    )
                )
            body = build(current)
            status, answer = self.client.write(self.entity, body, key=rid, operation=operation)
            if status == 400 and mapper.fault(status, answer).code == "5010" and attempt == 0:
                continue
            break
        return status, answer, body

    def update_document(self, document: PostedDocument, order: OutgoingOrder) -> PostResult:
        number = mapper.doc_number(order.resolved.order.number)
        try:
            refs = self._resolve(order)
            fresh = mapper.sales_body(order, refs, entity=self.entity, number=number[: mapper.DOC_NUMBER_MAX])

            def build(current: dict[str, Any]) -> dict[str, Any]:
                if mapper.is_voided(current):
                    raise _Refused(
                        PostResult(
                            document.order_key,
                            None,
                            DestinationRejected(
                                f"{SYSTEM} {self.entity} {document.document_id} is voided: it cannot be updated"
                            ),
                        )
                    )
                # the number stays the document's own (a renumbered order keeps its document)
                return {
                    **fresh,
                    "DocNumber": current.get("DocNumber", fresh["DocNumber"]),
                    "Id": current["Id"],
                    "SyncToken": current["SyncToken"],
                    "sparse": True,
                }

            status, answer, body = self._with_fresh_token(document, order.idempotency_key, build)
        except _Refused as refused:
            return refused.result
        if status == 200:
            result = self._posted(order, answer, body)
            return replace(result, document_id=document.document_id)
        if status == 400:
            return replace(self._refusal(order, mapper.fault(status, answer)), sent=body)
        raise self._unexpected(status, answer, self.entity)

    def void_document(self, document: PostedDocument, idempotency_key: str) -> PostResult:
        current = self._read(document.document_id)
        if current is not None and mapper.is_voided(current):
            return PostResult(document.order_key, document.document_id)
        try:
            status, answer, body = self._with_fresh_token(
                document, idempotency_key, lambda c: {"Id": c["Id"], "SyncToken": c["SyncToken"]}, operation="void"
            )
        except _Refused as refused:
            return refused.result
        if status == 200:
            return PostResult(document.order_key, document.document_id, sent=body)
        if status == 400:
            problem = mapper.fault(status, answer)
            return PostResult(
                document.order_key,
                None,
                DestinationRejected(
                    f"{SYSTEM} refused to void {self.entity} {document.document_id}: {problem.text()}", status=400
                ),
                sent=body,
            )
        raise self._unexpected(status, answer, self.entity)

    def post_adjustment(self, document: PostedDocument, adjustment: Adjustment) -> PostResult:
        if adjustment.kind != "refund":
            return PostResult(
                document.order_key,
                None,
                DestinationRejected(f"{SYSTEM} takes refunds as adjustments, not {adjustment.kind!r}"),
            )
        current = self._read(document.document_id)
        if current is None:
            return PostResult(
                document.order_key,
                None,
                DestinationRejected(f"{SYSTEM} has no {self.entity} {document.document_id} to refund against"),
            )
        customer = current.get("CustomerRef", {}).get("value")
        item = next(
            (
                line["SalesItemLineDetail"]["ItemRef"]["value"]
                for line in current.get("Line", [])
                if line.get("DetailType") == "SalesItemLineDetail"
            ),
            None,
        )
        number = mapper.refund_doc_number(
            str(current.get("DocNumber") or document.document_id), adjustment.idempotency_key
        )
        try:
            account = self._named("Account", str(self.settings["refund_account"]), "refund_account", None)
        except DestinationRejected as exc:
            return PostResult(
                document.order_key, None, exc, hold=R.destination_setting_unknown(SYSTEM, "refund_account", exc.message)
            )
        body = mapper.refund_body(
            customer_id=str(customer),
            number=number,
            amount=adjustment.amount,
            reason=adjustment.reason,
            item=str(item),
            account=account,
            note=mapper.marker(document.order_key, adjustment.idempotency_key)
            + f" refund of {self.entity} {document.document_id}",
        )
        status, answer = self.client.write("RefundReceipt", body, key=adjustment.idempotency_key)
        if status == 200:
            doc = mapper.one(answer, "RefundReceipt")
            if doc is None:
                raise RemoteUnavailable(f"{SYSTEM} answered the RefundReceipt without an Id")
            return PostResult(document.order_key, str(doc["Id"]), sent=body)
        problem = mapper.fault(status, answer)
        if status == 400 and problem.code == "6140":
            _, found = self.client.query(f"select * from RefundReceipt where DocNumber = {mapper.quoted(number)}")
            for doc in mapper.found(found, "RefundReceipt"):
                if (mapper.marked_key(doc) or ("", ""))[1] == adjustment.idempotency_key:
                    return PostResult(document.order_key, str(doc["Id"]), sent=body)
        if status == 400:
            return PostResult(
                document.order_key,
                None,
                DestinationRejected(
                    f"{SYSTEM} refused the refund of {self.entity} {document.document_id}: {problem.text()}", status=400
                ),
                sent=body,
            )
        raise self._unexpected(status, answer, "RefundReceipt")

    # -------------------------------------------------------------------------------------------
    def _unexpected(self, status: int, body: Any, what: str) -> Exception:
        problem = mapper.fault(status, body)
        if status in (404, 405):
            return SettingsError(
                f"{SYSTEM} has no {what} at {self.client.base_url} (HTTP {status})",
                hint=f"Check the connection's base URL ({DEFAULT_BASE_URL}) and realm id.",
            )
        return DestinationRejected(f"{SYSTEM} refused {what} (HTTP {status}): {problem.text()}", status=status)
