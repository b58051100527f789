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
