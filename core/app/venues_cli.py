"""``tradectl venues``: what ``trading.venue`` can name on this installation.

The native venues always; the ccxt exchange ids when the optional ``ccxt`` extra is installed, each
marked with what this adapter gets from it there: our client order ids sent to the venue (else the
documented fallback), and WebSocket market data through ``ccxt.pro`` (else REST polling). ccxt is
imported only when this command runs.
"""

from __future__ import annotations

from typing import Annotated

import typer

NATIVE = (("paper", "simulated fills on replayed or live market data (the default)"),
          ("kraken", "Kraken spot, native adapter: REST + WebSocket v2, client order ids"),
          ("coinbase", "Coinbase Advanced Trade, native adapter: REST + WebSocket, client order ids"))


def venues(
    exchange: Annotated[str | None, typer.Argument(
        help="Show one ccxt exchange id (e.g. binance) instead of the whole list.")] = None,
) -> None:
    """List the venues trading.venue can name: native ones, and ccxt:<id> for every exchange ccxt has."""
    if exchange is None:
        typer.echo("native venues (trading.venue = ...):")
        for name, what in NATIVE:
            typer.echo(f"  {name:<10} {what}")
    try:
        from exchanges.ccxt import VERSION, catalog, unknown_venue
    except ImportError:
        typer.echo("\nccxt is not installed: pip install 'tradectl[ccxt]' adds any exchange ccxt reaches "
                   "(trading.venue = ccxt:<id>)", err=exchange is not None)
        raise typer.Exit(1 if exchange is not None else 0) from None
    listed = catalog()
    if exchange is not None:
        wanted = exchange.removeprefix("ccxt:")
        found = [v for v in listed if v.exchange_id == wanted]
        if not found:
            typer.echo(unknown_venue(wanted), err=True)
            raise typer.Exit(2)
        listed = found
    else:
        typer.echo(f"\nccxt {VERSION} exchanges (trading.venue = ccxt:<id>; docs/exchanges.md says what differs):")
    typer.echo(f"  {'id':<24} {'client order ids':<18} market data")
    for v in listed:
        ids = "yes" if v.client_order_ids else "no (fallback)"
        data = "WebSocket" if v.websocket else "REST polling"
        typer.echo(f"  ccxt:{v.exchange_id:<19} {ids:<18} {data}")
    if exchange is None:
        with_ids = sum(v.client_order_ids for v in listed)
        with_ws = sum(v.websocket for v in listed)
        typer.echo(f"\n{len(listed)} ccxt exchanges: {with_ids} with client order ids, {with_ws} with WebSocket")


def register(app: typer.Typer) -> None:
    """Add ``venues`` to the ``tradectl`` app."""
    app.command("venues")(venues)
