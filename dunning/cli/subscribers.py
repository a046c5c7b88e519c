"""``dunning subscribers add|list|remove|replay|deliver``: outbound event subscribers."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from dunning.cli.app import app, console, emit_json, fail, out
from dunning.db import check_ready, get_engine

subscribers_app = typer.Typer(
    help="Outbound event subscribers (Standard Webhooks): add, list, remove, replay.",
    no_args_is_help=True,
)
app.add_typer(subscribers_app, name="subscribers")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


@subscribers_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="https URL (http only for loopback addresses).")],
    secret: Annotated[
        str, typer.Option(help="The receiver's whsec_ secret (Standard Webhooks); never printed.")
    ],
    events: Annotated[str, typer.Option(help="Comma-separated event types, or * for all.")] = "*",
    json_out: JsonOpt = False,
) -> None:
    """Add a subscriber; it receives the events emitted from now on."""
    from dunning.outbound.subscribers import add as add_subscriber
    from dunning.outbound.subscribers import mask_url, parse_types

    try:
        types = parse_types(events)
        engine = get_engine()
        check_ready(engine)
        sub_id = add_subscriber(engine, url, types, secret)
    except ValueError as exc:
        fail(str(exc))
    if json_out:
        emit_json({"id": sub_id, "url": mask_url(url.strip()), "events": types})
    else:
        out.print(f"subscriber {sub_id}: {mask_url(url.strip())} ({', '.join(types)})")


@subscribers_app.command("list")
def list_subscribers(json_out: JsonOpt = False) -> None:
    """Subscribers with masked secrets and their pending, delivered and dead-letter counts."""
    from dunning.config import get_settings
    from dunning.outbound.subscribers import listing

    engine = get_engine()
    check_ready(engine)
    rows = listing(engine, get_settings().outbound)
    if json_out:
        emit_json(rows)
        return
    table = Table("id", "url", "events", "source", "secret", "pending", "delivered", "dead")
    for r in rows:
        events = r["events"]
        table.add_row(
            str(r["id"]),
            r["url"],
            "all" if len(events) >= 10 else ",".join(events),
            r["source"],
            r["secret"],
            str(r["pending"]),
            str(r["delivered"]),
            f"[red]{r['dead']}[/]" if r["dead"] else "0",
        )
    out.print(table)


@subscribers_app.command("remove")
def remove(
    subscriber_id: Annotated[int, typer.Argument(help="Subscriber id (see list).")],
    json_out: JsonOpt = False,
) -> None:
    """Remove a subscriber and its queued deliveries."""
    from dunning.outbound.subscribers import remove as remove_subscriber

    engine = get_engine()
    check_ready(engine)
    if not remove_subscriber(engine, subscriber_id):
        fail(f"no subscriber {subscriber_id}; see `dunning subscribers list`")
    if json_out:
        emit_json({"removed": subscriber_id})
    else:
        out.print(f"removed subscriber {subscriber_id}")


@subscribers_app.command("replay")
def replay(
    since: Annotated[str, typer.Option(help="ISO 8601 instant (no offset means UTC).")],
    json_out: JsonOpt = False,
) -> None:
    """Re-queue every event since then for every subscriber (dead letters included)."""
    from dunning.config import get_settings
    from dunning.outbound.subscribers import replay as replay_events

    try:
        when = dt.datetime.fromisoformat(since.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"--since {since!r} is not an ISO 8601 instant; use e.g. 2026-11-24T10:00:00Z")
    when = (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    engine = get_engine()
    check_ready(engine)
    queued = replay_events(engine, when, get_settings().outbound)
    if json_out:
        emit_json({"queued": queued, "since": when.isoformat()})
    else:
        console.print(
            f"re-queued {queued} deliveries since {when.isoformat()}; the "
            "outbound-events flow (or `dunning subscribers deliver`) sends them"
        )


@subscribers_app.command("deliver")
def deliver(json_out: JsonOpt = False) -> None:
    """Deliver due events now (what the outbound-events flow does), one attempt each."""
    from dunning.config import get_settings
    from dunning.outbound.delivery import deliver_due

    engine = get_engine()
    check_ready(engine)
    counts = deliver_due(engine, get_settings().outbound).as_dict()
    if json_out:
        emit_json(counts)
        return
    for key in ("queued", "delivered", "retry", "dead"):
        out.print(f"{key:>10}  {counts[key]}")
