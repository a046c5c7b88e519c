"""``dunning sources`` (list, test NAME) and ``dunning sync NAME [--full] [--json]``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from dunning.cli.app import app, console, emit_json, fail, out, show_progress
from dunning.config import get_settings
from dunning.db import check_ready, get_engine
from dunning.db.models import utcnow
from dunning.errors import DunningError
from dunning.sources.base import PullProgress
from dunning.sources.config import load_sources, sources_path
from dunning.sources.freshness import stale_sources
from dunning.sources.registry import get_source
from dunning.sources.state import all_states, quarantine_counts
from dunning.sources.sync import SyncReport, sync_source

sources_app = typer.Typer(
    help="Sources of invoices (sources.toml): list and test them.", invoke_without_command=True
)
app.add_typer(sources_app, name="sources")
JsonOpt = typer.Option(False, "--json", help="Print JSON on stdout; no progress.")


@sources_app.callback()
def list_sources(ctx: typer.Context, json_mode: bool = JsonOpt) -> None:
    """List the configured sources with last sync, cursor, counts and errors."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        configs = load_sources()
        engine = get_engine(get_settings().resolved_database_url)
        check_ready(engine)
    except DunningError as exc:
        fail(str(exc))
    states = all_states(engine)
    held = quarantine_counts(engine)
    stale = stale_sources(engine, configs, utcnow())
    rows: list[dict[str, Any]] = []
    for name in sorted(set(configs) | set(states)):
        config, st = configs.get(name), states.get(name) or {}
        rows.append(
            {
                "name": name,
                "kind": config.kind if config else st.get("kind"),
                "configured": config is not None,
                "max_age_minutes": config.max_age_minutes if config else None,
                "last_sync": st.get("last_success_at"),
                "last_attempt": st.get("last_attempt_at"),
                "stale": name in stale,
                "cursor": st.get("cursor"),
                "counts": st.get("counts"),
                "quarantined": held.get(name, 0),
                "error": st.get("last_error"),
            }
        )
    if json_mode:
        emit_json({"path": str(sources_path()), "sources": rows})
        return
    if not rows:
        console.print(
            f"no sources configured in {sources_path()} (see docs/sources.md)", highlight=False
        )
        return
    table = Table("name", "kind", "last sync", "stale", "cursor", "records", "quarantined", "error")
    for r in rows:
        counts = r["counts"] or {}
        records = ", ".join(
            f"{k} {sum(v.get(x, 0) for x in ('inserted', 'updated', 'unchanged'))}"
            for k, v in counts.items()
            if v
        )
        table.add_row(
            r["name"],
            str(r["kind"]),
            str(r["last_sync"] or "never"),
            "yes" if r["stale"] else "no",
            _short(r["cursor"]),
            records or "-",
            str(r["quarantined"]),
            r["error"] or "-",
        )
    out.print(table)


def _short(cursor: str | None) -> str:
    if not cursor:
        return "-"
    return cursor if len(cursor) <= 40 else cursor[:37] + "..."


@sources_app.command("test")
def test_source(
    name: str = typer.Argument(..., help="A [sources.NAME] in sources.toml."),
    json_mode: bool = JsonOpt,
) -> None:
    """Connect to a source and read it, writing nothing."""
    try:
        message = get_source(name).check()
    except DunningError as exc:
        if json_mode:
            emit_json({"ok": False, "source": name, "message": str(exc)})
            raise typer.Exit(1) from None
        fail(str(exc))
    if json_mode:
        emit_json({"ok": True, "source": name, "message": message})
    else:
        console.print(f"{name}: ok — {message}", highlight=False, soft_wrap=True)


@contextmanager
def _spinner(enabled: bool, name: str) -> Iterator[PullProgress | None]:
    if not enabled:
        yield None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"syncing {name}", total=None)

        def advance(record_type: str, fetched: int) -> None:
            bar.update(task, description=f"syncing {name}: {fetched} {record_type} fetched")

        yield advance


@app.command("sync")
def sync(
    name: str = typer.Argument(..., help="A [sources.NAME] in sources.toml."),
    full: bool = typer.Option(
        False,
        "--full",
        help="Ignore the cursor: read everything (and void invoices the source no longer has).",
    ),
    json_mode: bool = JsonOpt,
) -> None:
    """Sync one source into the database (incremental from its cursor unless --full)."""
    try:
        source = get_source(name)
        engine = get_engine(get_settings().resolved_database_url)
        with _spinner(show_progress(json_mode), name) as progress:
            report = sync_source(engine, source, full=full, progress=progress)
    except DunningError as exc:
        if json_mode:
            emit_json({"ok": False, "source": name, "message": str(exc)})
            raise typer.Exit(1) from None
        fail(str(exc))
    _print(report, json_mode)


def _print(report: SyncReport, json_mode: bool) -> None:
    if json_mode:
        emit_json({"ok": True, **report.as_dict()})
        return
    parts = []
    for record_type, c in report.counts.items():
        extra = f", {c['deleted']} deleted" if c.get("deleted") else ""
        parts.append(
            f"{record_type}: {c['inserted']} inserted, {c['updated']} updated, "
            f"{c['unchanged']} unchanged, {c['quarantined']} quarantined{extra}"
        )
    console.print(
        f"{report.source} ({'full' if report.full else 'incremental'}, "
        f"{report.requests} request(s), {report.seconds:.1f} s)",
        highlight=False,
    )
    for line in parts:
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    for q in report.quarantined[:20]:
        console.print(
            f"  quarantined {q['record_type']} {q['source_id']}: {q['reason']}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
