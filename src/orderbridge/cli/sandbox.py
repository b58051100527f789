"""``orderbridge sandbox …``: run a local emulator of an external API until stopped."""

from __future__ import annotations

from typing import Annotated

import typer

from orderbridge.cli.common import err

app = typer.Typer(no_args_is_help=True, help="Run a local emulator of an external API.")


@app.command("shopify")
def sandbox_shopify(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 8701,
    orders: Annotated[int, typer.Option(help="Generated orders to serve")] = 200,
    seed: int = 1,
    limits: Annotated[bool, typer.Option(help="Enforce Shopify's rate/cost limits")] = True,
    plan: Annotated[str, typer.Option(help="standard | advanced | plus")] = "standard",
    realistic: Annotated[bool, typer.Option(help="Mix of statuses and problems (else all clean)")] = True,
    lines: Annotated[int | None, typer.Option(help="Lines per order (default 1–4)")] = None,
    api_secret: Annotated[str, typer.Option(help="The app's secret: signs webhooks")] = "shpss_sandbox",
    webhook_retry_scale: Annotated[float, typer.Option(help="Multiplies Shopify's webhook retry delays")] = 1.0,
    webhook_drop_rate: Annotated[float, typer.Option(help="Share of webhook deliveries silently dropped")] = 0.0,
    bulk_seconds: Annotated[float, typer.Option(help="How long a bulk query runs before it completes")] = 0.05,
    access_token: Annotated[str, typer.Option(help="The Admin API access token the store accepts")] = "shpat_sandbox",
) -> None:
    """Serve the Shopify Admin API emulator (REST + GraphQL + bulk + webhooks) until stopped."""
    from orderbridge.sandboxes.base import serve_forever
    from orderbridge.sandboxes.shopify.app import create_sandbox

    _, asgi = create_sandbox(
        orders=orders,
        seed=seed,
        limits=limits,
        plan=plan,
        realistic=realistic,
        lines_per_order=lines,
        api_secret=api_secret,
        webhook_retry_scale=webhook_retry_scale,
        webhook_drop_rate=webhook_drop_rate,
        bulk_seconds=bulk_seconds,
        access_token=access_token,
    )
    err.print(
        f"Shopify sandbox: {orders} orders on http://127.0.0.1:{port} (token {access_token}, secret {api_secret})"
    )
    serve_forever(asgi, port)


@app.command("shipstation")
def sandbox_shipstation(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 8702,
    limits: Annotated[bool, typer.Option(help="Enforce 40 requests/minute")] = True,
    ship_after: Annotated[float, typer.Option(help="Seconds until a received order ships")] = 5.0,
    partial_rate: float = 0.0,
    void_rate: float = 0.0,
    orders: Annotated[int, typer.Option(help="Accepted for symmetry; ShipStation starts empty")] = 0,
    api_key: Annotated[str, typer.Option(help="The account's API key (Basic auth user)")] = "ss_key",
    api_secret: Annotated[str, typer.Option(help="The account's API secret (Basic auth password)")] = "ss_secret",
) -> None:
    """Serve the ShipStation V1 emulator until stopped."""
    from orderbridge.sandboxes.base import serve_forever
    from orderbridge.sandboxes.shipstation.app import create_sandbox

    _, asgi = create_sandbox(
        limits=limits,
        ship_after_seconds=ship_after,
        partial_rate=partial_rate,
        void_rate=void_rate,
        api_key=api_key,
        api_secret=api_secret,
    )
    err.print(f"ShipStation sandbox on http://127.0.0.1:{port} (Basic {api_key}:{api_secret})")
    serve_forever(asgi, port)


@app.command("quickbooks")
def sandbox_quickbooks(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 8703,
    limits: Annotated[bool, typer.Option(help="Enforce 500 requests/minute and 10/second per company")] = True,
    access_ttl: Annotated[float, typer.Option(help="Seconds an access token lasts")] = 3600.0,
    rotate: Annotated[bool, typer.Option(help="Issue a new refresh token at every refresh")] = True,
    refresh_token: Annotated[str, typer.Option(help="The refresh token the company starts with")] = "RT-sandbox",
) -> None:
    """Serve the QuickBooks Online emulator (v3 company API + OAuth 2 token endpoint) until stopped."""
    from orderbridge.sandboxes.base import serve_forever
    from orderbridge.sandboxes.quickbooks import create_sandbox

    state, asgi = create_sandbox(
        limits=limits, access_ttl=access_ttl, rotate_refresh=rotate, refresh_token=refresh_token
    )
    realm = next(iter(state.companies))
    base = f"http://127.0.0.1:{port}"
    err.print(
        f"QuickBooks sandbox on {base}: client_id {state.client_id}, client_secret {state.client_secret}, "
        f"refresh_token {refresh_token}, realm_id {realm}; set the connection's token_url to "
        f"{base}/oauth2/v1/tokens/bearer"
    )
    serve_forever(asgi, port)


@app.command("square")
def sandbox_square(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 8704,
    team_member_status: Annotated[
        str, typer.Option(help="ACTIVE, or INACTIVE: the 'Online orders' member was archived (seed 001)")
    ] = "ACTIVE",
    location_status: Annotated[str, typer.Option(help="ACTIVE or INACTIVE: the main location")] = "ACTIVE",
    helper_item: Annotated[
        list[str] | None, typer.Option(help="SKU of a helper item that exists (repeat; none by default)")
    ] = None,
    tax_rounding: Annotated[str, typer.Option(help="per_tax (Square's, default) or per_line")] = "per_tax",
    reject_inactive_team_member: Annotated[
        bool, typer.Option(help="Refuse payments recorded as an INACTIVE team member")
    ] = True,
    idempotency_scope: Annotated[str, typer.Option(help="endpoint (default) or seller")] = "endpoint",
    catalog_write_seconds: Annotated[float, typer.Option(help="How long one catalog write takes")] = 0.0,
) -> None:
    """Serve the Square emulator (Orders, Payments, Catalog, Team, Locations, order custom attributes) until stopped."""
    from orderbridge.sandboxes.base import serve_forever
    from orderbridge.sandboxes.square import create_sandbox
    from orderbridge.sandboxes.square.app import ACCESS_TOKEN, LOCATION_ID, TEAM_MEMBER_ID

    _, asgi = create_sandbox(
        team_member_status=team_member_status,
        location_status=location_status,
        helper_items=tuple(helper_item or ()),
        tax_rounding=tax_rounding,
        reject_inactive_team_member=reject_inactive_team_member,
        idempotency_scope=idempotency_scope,
        catalog_write_seconds=catalog_write_seconds,
    )
    err.print(
        f"Square sandbox on http://127.0.0.1:{port}: access_token {ACCESS_TOKEN}, location_id {LOCATION_ID}, "
        f"team_member_id {TEAM_MEMBER_ID}"
    )
    serve_forever(asgi, port)


@app.command("heartland")
def sandbox_heartland(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 8705,
    token: Annotated[str, typer.Option(help="The API token the account accepts")] = "hl_sandbox_token",
    helper_items: Annotated[bool, typer.Option(help="Start with Mortar's helper items (seed 001)")] = True,
    unique_public_id: Annotated[bool, typer.Option(help="Refuse a second sale with one public_id (a (?))")] = False,
    validation_status: Annotated[int, typer.Option(help="HTTP status of a validation error (a (?))")] = 422,
) -> None:
    """Serve the Heartland Retail emulator (REST API + the seed-001 traps as /_sandbox/heartland calls)."""
    from orderbridge.sandboxes.base import serve_forever
    from orderbridge.sandboxes.heartland import create_sandbox

    state, asgi = create_sandbox(
        token=token,
        helper_items=helper_items,
        unique_public_id=unique_public_id,
        validation_status=validation_status,
    )
    station = next(iter(state.stations))
    err.print(
        f"Heartland Retail sandbox on http://127.0.0.1:{port}: api_token {token}, acting_user {state.token_owner}, "
        f"station_id {station}"
    )
    serve_forever(asgi, port)


@app.command("woocommerce")
def sandbox_woocommerce(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 8706,
    orders: Annotated[int, typer.Option(help="Generated orders to serve")] = 50,
    https: Annotated[bool, typer.Option(help="Serve HTTPS (Basic auth) with a self-signed certificate")] = False,
    strict: Annotated[bool, typer.Option(help="Refuse status moves outside a shop's usual flow")] = False,
    timezone: Annotated[str, typer.Option(help="The site's timezone (the non-_gmt dates)")] = "Europe/Paris",
    seed: int = 1,
) -> None:
    """Serve the WooCommerce REST API v3 emulator (orders, notes, batch, webhooks) until stopped."""
    from orderbridge.sandboxes.woocommerce import create_sandbox, tls

    state, asgi = create_sandbox(
        orders=orders, timezone=timezone, status_rules="strict" if strict else "permissive", seed=seed
    )
    certificate = tls.self_signed() if https else None
    scheme = "https" if https else "http"
    state.site_url = f"{scheme}://127.0.0.1:{port}"
    auth = "Basic" if https else "OAuth 1.0a"
    err.print(
        f"WooCommerce sandbox: {orders} orders on {state.site_url} ({auth}; consumer key {state.consumer_key}, "
        f"secret {state.consumer_secret})"
        + (f"; trust its certificate with --setting ca_file={certificate.cert_file}" if certificate else "")
    )
    import uvicorn

    from orderbridge import heap

    heap.settle()
    uvicorn.Server(tls.uvicorn_config(asgi, port, certificate)).run()


@app.command("mirakl")
def sandbox_mirakl(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 8707,
    orders: Annotated[int, typer.Option(help="Orders waiting for acceptance at start")] = 20,
    shop_key: Annotated[str, typer.Option(help="The shop API key the Authorization header must carry")] = (
        "mirakl-shop-key"
    ),
    debit_delay: Annotated[float, typer.Option(help="Seconds from acceptance to the operator's debit (0: at once)")] = (
        0.0
    ),
    debit_payment_step: Annotated[bool, typer.Option(help="Pass through WAITING_DEBIT_PAYMENT on the way")] = True,
    acceptance_window: Annotated[float, typer.Option(help="Seconds an order may wait for acceptance")] = 3 * 86400,
    can_cancel: Annotated[bool, typer.Option(help="New orders' can_cancel (OR29 allowed)")] = True,
    max_page: Annotated[int, typer.Option(help="The largest OR11 max accepted")] = 100,
) -> None:
    """Serve the Mirakl seller API emulator (OR11, OR21, OR23, OR24, OR28, OR29, back office) until stopped."""
    from orderbridge.sandboxes.base import serve_forever
    from orderbridge.sandboxes.mirakl import create_sandbox

    _, asgi = create_sandbox(
        shop_key=shop_key,
        orders=orders,
        debit_delay_s=debit_delay,
        debit_payment_step=debit_payment_step,
        acceptance_window_s=acceptance_window,
        can_cancel=can_cancel,
        max_page=max_page,
    )
    err.print(f"Mirakl sandbox: {orders} orders on http://127.0.0.1:{port} (Authorization: {shop_key})")
    serve_forever(asgi, port)
