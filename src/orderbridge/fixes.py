"""A fix is data: what to do (an action), with its parameters, and a plain-language sentence.

"Map SKU ABC-1 at destination wh" is ``Fix(FixAction.MAP_SKU, …, sku="ABC-1", destination="wh")``.
What a person sees is a *rendering* of it, made by the presentation that shows it:

- the CLI renders it as the exact command (``orderbridge mappings set sku 'ABC-1' <destination SKU>
  --destination wh``; ``orderbridge.cli.fixes``);
- an alert's e-mail and webhook render it as a link to the portal page where it is made
  (``orderbridge.web.links``), and the portal (issue #13) as a form or a button;
- the REST API returns it as it is: ``{"action": "map_sku", "params": {...}, "text": "..."}``.

So the layers that decide what must be done — domain, services, connectors, storage, runtime —
say it as a :class:`Fix` and never spell a command or build a URL (``tests/test_presentation_free.py``
holds them to that). ``text`` is what every rendering can show as it is: a sentence without
commands, links or placeholders.

This module is a foundation module, beside ``errors.py``: an error carries a fix too
(:attr:`orderbridge.errors.OrderBridgeError.fix`), and the foundation imports no layer above it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FixAction(StrEnum):
    """Every kind of fix OrderBridge names. Adding one: add it here, give it a command in
    ``cli/fixes.py`` when the CLI can do it, and a page in ``web/links.py`` when the portal can."""

    # --- made in OrderBridge: the CLI has a command for each, the portal a form or a button ------
    #: ``sku``, ``destination``: add the SKU mapping (releases every order held for that SKU there)
    MAP_SKU = "map_sku"
    #: ``method`` (``*`` = the default), ``destination``: add the shipping-method mapping
    MAP_SHIPPING_METHOD = "map_shipping_method"
    #: ``order`` (when one order is meant): send a held order again after the cause was corrected
    RETRY_ORDER = "retry_order"
    #: ``code``, ``value`` (both optional): the held orders, or those of one root cause
    SHOW_HOLDS = "show_holds"
    #: ``connection`` (optional: unknown where the error is raised), ``credential``, ``example``
    UPDATE_CREDENTIALS = "update_credentials"
    #: ``connection``: check the credentials and permissions against the remote system
    TEST_CONNECTION = "test_connection"
    #: ``connection``: change which orders the channel's download rules let through
    EDIT_DOWNLOAD_RULES = "edit_download_rules"
    #: ``connection``, ``setting``, ``value`` (JSON): change one of the connection's settings
    SET_SETTING = "set_setting"
    #: ``connection``: subscribe the hub's receiver to the channel's order topics again
    REGISTER_WEBHOOKS = "register_webhooks"
    #: ``connection``: compare the channel with the ledger now (an audit)
    RUN_AUDIT = "run_audit"
    #: ``run``: the report of one audit
    SHOW_AUDIT = "show_audit"
    #: add the first connection
    ADD_CONNECTION = "add_connection"
    #: create the data directory, the ledger and the secret key
    INIT = "init"
    #: generate a secret key (to set as ``ORDERBRIDGE_SECRET_KEY``)
    GENERATE_KEY = "generate_key"
    #: ``order``, ``update``: accept, ignore or cancel an order update awaiting review (issue #15)
    REVIEW_UPDATE = "review_update"
    #: ``order`` (optional), ``field``: fill in the shipping data a channel needs and send the push again (#16)
    FILL_SHIPPING_DATA = "fill_shipping_data"
    #: ``connection``: create the helper items a POS destination lacks (shipping, discount, refund…),
    #: idempotently, then run its pre-flight checks again (issue #17)
    CREATE_HELPER_ITEMS = "create_helper_items"
    # --- made elsewhere: the text says where; renderings show the text --------------------------
    #: ``field`` (optional): correct the order in the channel; the next sync re-evaluates it
    EDIT_ORDER_AT_CHANNEL = "edit_order_at_channel"
    #: ``field``, ``destination``: fill in a field the destination requires, on the order in the channel
    SET_REQUIRED_FIELD = "set_required_field"
    #: ``url`` (may be empty): do in the channel's back office what its API does not offer (#16)
    ACT_IN_BACK_OFFICE = "act_in_back_office"
    #: ``connection``: finish in the POS what it left undone (a sale left pending: issue #17)
    ACT_IN_POS = "act_in_pos"
    #: ``shipment``: correct the shipment in the 3PL; the next shipment poll pushes it
    EDIT_SHIPMENT_AT_DESTINATION = "edit_shipment_at_destination"
    #: a newer OrderBridge knows what this one does not (a status the channel added)
    UPGRADE = "upgrade"
    #: nothing to do: the text says why (a cancelled order, an order already fulfilled)
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Fix:
    """One fix: an action, its parameters (name → value, in a stable order) and the sentence."""

    action: FixAction
    text: str
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, action: FixAction, text: str, **params: str | int | None) -> Fix:
        """A fix with its parameters; ``None`` values are left out (not known where it is made)."""
        return cls(action, text, tuple((k, str(v)) for k, v in params.items() if v is not None))

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None

    @property
    def args(self) -> dict[str, str]:
        return dict(self.params)

    def with_params(self, **values: str | int | None) -> Fix:
        """The same fix with parameters added or replaced — the connection's name, filled in by the
        service that knows which connection an error of a connector was about."""
        merged = {**self.args, **{k: str(v) for k, v in values.items() if v is not None}}
        return Fix(self.action, self.text, tuple(merged.items()))

    def with_text(self, text: str) -> Fix:
        return Fix(self.action, text, self.params)

    def as_dict(self) -> dict[str, Any]:
        """The stored and exchanged form (a JSON object): ``{"action", "params", "text"}``."""
        return {"action": self.action.value, "params": dict(self.params), "text": self.text}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fix:
        """Read the stored form back. An action this version does not know (written by a newer one)
        reads as :attr:`FixAction.NONE` with its text, so it is still shown, never lost."""
        try:
            action = FixAction(str(data.get("action")))
        except ValueError:
            action = FixAction.NONE
        params = data.get("params") or {}
        return cls(action, str(data.get("text") or ""), tuple((str(k), str(v)) for k, v in params.items()))


def fixes_as_data(fixes: tuple[Fix, ...] | list[Fix]) -> list[dict[str, Any]]:
    return [f.as_dict() for f in fixes]


def fixes_from_data(data: object) -> tuple[Fix, ...]:
    if not isinstance(data, list):
        return ()
    return tuple(Fix.from_dict(d) for d in data if isinstance(d, Mapping))


# --- the fixes named in more than one place ---------------------------------------------------------


def show_holds(code: str | None = None, value: str | None = None, *, text: str = "") -> Fix:
    return Fix.of(FixAction.SHOW_HOLDS, text or "See the held orders, grouped by cause.", code=code, value=value)


def check_connection(connection: str | None = None) -> Fix:
    return Fix.of(
        FixAction.TEST_CONNECTION,
        "Test the connection (its credentials and permissions).",
        connection=connection,
    )


def run_audit(connection: str | None = None) -> Fix:
    return Fix.of(FixAction.RUN_AUDIT, "Audit the channel now (compare it with the ledger).", connection=connection)


def show_audit(run: int) -> Fix:
    return Fix.of(FixAction.SHOW_AUDIT, "Read the audit's full report.", run=run)


def register_webhooks(connection: str | None = None) -> Fix:
    return Fix.of(FixAction.REGISTER_WEBHOOKS, "Subscribe the channel's webhooks again.", connection=connection)


def update_credentials(
    text: str, *, connection: str | None = None, credential: str | None = None, example: str | None = None
) -> Fix:
    """Re-enter a connection's credentials; ``credential`` names the one meant and ``example``
    shows the form of its value (``shpat_…``, ``<the app's API secret key>``)."""
    return Fix.of(FixAction.UPDATE_CREDENTIALS, text, connection=connection, credential=credential, example=example)


def retry_order(text: str, order: str | None = None) -> Fix:
    return Fix.of(FixAction.RETRY_ORDER, text, order=order)


def edit_download_rules(text: str, connection: str | None = None) -> Fix:
    return Fix.of(FixAction.EDIT_DOWNLOAD_RULES, text, connection=connection)
