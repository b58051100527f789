"""The portal's addresses: where, in the web app, each fix is made and each thing is shown.

The web entrypoint owns its routes, so it owns their URLs too: alerts (e-mail, signed webhook)
render a :class:`~orderbridge.fixes.Fix` as a link built here, and the address the channels are
subscribed to (``/webhooks/{kind}/{connection}``, served by ``web/app.py``) is built here. The
portal serves every one of them (issue #13):

- ``show_holds`` → ``/holds`` (``?code=…&value=…`` for one root cause: the exceptions screen);
- ``show_audit`` → ``/audits/{run}``;
- a fix about one connection (test it, renew its credentials, its download rules, its webhooks,
  audit it) → ``/connections/by-name/{name}``, which redirects to the connection's page
  (``/connections/{id}``): a fix names the connection as people know it; ``add_connection`` →
  ``/connections``;
- ``retry_order`` for one order → ``/orders/by-ref/{number or id}``, which redirects to the
  order's page (``/orders/{id}``); ``fill_shipping_data`` for one order → that page's shipping-data
  form (``#shipping-data``, issue #16);
- ``act_in_back_office`` → its ``url``, the order's page in the channel's back office: the one
  external link (only an http(s) address; the template escapes it and marks it ``rel=external``).

Pages addressed by name or reference resolve it in the reader's tenant, so a link shows another
tenant's object to nobody.

A mapping, a retry of a group or a fix made in the channel or the 3PL has no page of its own: the
portal shows it as a form or a button on the page of the holds it releases, so an alert about held
orders carries ``show_holds(code, value)`` beside it (``services/notify``).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from orderbridge.fixes import Fix, FixAction

_ABOUT_A_CONNECTION = frozenset(
    {
        FixAction.TEST_CONNECTION,
        FixAction.UPDATE_CREDENTIALS,
        FixAction.EDIT_DOWNLOAD_RULES,
        FixAction.SET_SETTING,
        FixAction.REGISTER_WEBHOOKS,
        FixAction.RUN_AUDIT,
        FixAction.CREATE_HELPER_ITEMS,
        FixAction.ACT_IN_POS,
    }
)


def absolute(public_url: str, path: str) -> str:
    """``public_url`` + ``path``, with exactly one slash between them."""
    return public_url.rstrip("/") + "/" + path.lstrip("/")


def holds(public_url: str, code: str | None = None, value: str | None = None) -> str:
    """The holds screen, or the held orders of one root cause."""
    if code is None:
        return absolute(public_url, "/holds")
    return absolute(public_url, "/holds?" + urlencode({"code": code, "value": value or ""}))


def connection(public_url: str, name: str) -> str:
    return absolute(public_url, f"/connections/by-name/{quote(name, safe='')}")


def audit(public_url: str, run: str | int) -> str:
    return absolute(public_url, f"/audits/{quote(str(run), safe='')}")


def fix_link(public_url: str, fix: Fix) -> str | None:
    """The page where ``fix`` is made, or None (see the module's docstring)."""
    action, name = fix.action, fix.param("connection")
    if action is FixAction.SHOW_HOLDS:
        return holds(public_url, fix.param("code"), fix.param("value"))
    if action is FixAction.SHOW_AUDIT and fix.param("run"):
        return audit(public_url, fix.param("run") or "")
    if action in _ABOUT_A_CONNECTION and name:
        return connection(public_url, name)
    if action is FixAction.ADD_CONNECTION:
        return absolute(public_url, "/connections")
    if action is FixAction.REVIEW_UPDATE:
        return absolute(public_url, "/updates")
    order = fix.param("order")
    if action is FixAction.RETRY_ORDER and order:
        return absolute(public_url, f"/orders/by-ref/{quote(order, safe='')}")
    if action is FixAction.FILL_SHIPPING_DATA and order:  # issue #16: the order page's fill-in form
        return absolute(public_url, f"/orders/by-ref/{quote(order, safe='')}") + "#shipping-data"
    if action is FixAction.ACT_IN_BACK_OFFICE:
        return back_office(fix)
    return None


def back_office(fix: Fix) -> str | None:
    """The channel's own page for the order (an external link), when the fix carries one that is a
    web address — never another scheme (``javascript:``): the value came from the channel."""
    url = (fix.param("url") or "").strip()
    return url if url.lower().startswith(("https://", "http://")) and not any(c.isspace() for c in url) else None


def receiver_address(public_url: str, kind: str, connection_id: int) -> str:
    """Where ``web/app.py`` receives the webhooks of connection ``connection_id`` (its id names its
    tenant too, decision 82); channels are subscribed to it."""
    return absolute(public_url, f"/webhooks/{kind}/{connection_id}")
