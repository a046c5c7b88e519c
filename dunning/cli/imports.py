"""``dunning import customers|invoices|payments|payment-attempts FILE``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dunning.cli.app import console, emit_json, fail, import_app, show_progress
from dunning.config import get_settings
from dunning.db import get_engine
from dunning.errors import DunningError
from dunning.importers import ImportReport, InvalidRows, import_file
from dunning.importers.writer import ProgressFn

FileArg = typer.Argument(..., help="CSV (UTF-8) or .xlsx file; the header names the columns.")
SkipOpt = typer.Option(
    False,
    "--skip-invalid",
    help="Import the valid rows and write the invalid ones to a rejects CSV.",
)
RejectsOpt = typer.Option(
    None, "--rejects", help="Where --skip-invalid writes rejects (default FILE.rejects.csv)."
)
JsonOpt = typer.Option(False, "--json", help="Print one JSON object with the counts.")


@contextmanager
def _progress_bar(enabled: bool, label: str) -> Iterator[ProgressFn | None]:
    """A progress callback drawing a rich bar on stderr, or None when not drawing."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, advance=done, total=total)

        yield advance


def _run(kind: str, file: Path, skip_invalid: bool, rejects: Path | None, json_mode: bool) -> None:
    # Keyed by URL: get_engine() without one caches whichever database was configured first.
    engine = get_engine(get_settings().resolved_database_url)
    try:
        with _progress_bar(show_progress(json_mode), f"importing {kind}") as progress:
            report = import_file(
                engine,
                kind,
                file,
                skip_invalid=skip_invalid,
                rejects_path=rejects,
                progress=progress,
            )
    except InvalidRows as exc:
        if json_mode:
            emit_json({"ok": False, **exc.report.as_dict(), "message": str(exc)})
            raise typer.Exit(1) from None
        for line in exc.report.errors:
            console.print(line, highlight=False, markup=False, soft_wrap=True)
        fail(str(exc))
    except DunningError as exc:
        if json_mode:
            emit_json(
                {
                    "ok": False,
                    "kind": kind,
                    "file": str(file),
                    "errors": [str(exc)],
                    "message": str(exc),
                }
            )
            raise typer.Exit(1) from None
        fail(str(exc))
    _print_report(report, json_mode)


def _print_report(report: ImportReport, json_mode: bool) -> None:
    if json_mode:
        emit_json({"ok": True, **report.as_dict()})
        return
    console.print(
        f"{report.kind} from {report.file}: {report.inserted} inserted, {report.updated} updated,"
        f" {report.unchanged} unchanged, {report.rejected} rejected",
        highlight=False,
        soft_wrap=True,
    )
    if report.rejects_file:
        console.print(f"rejected rows with reasons: {report.rejects_file}", highlight=False)
    for line in report.warnings:
        console.print(f"warning: {line}", highlight=False, markup=False, soft_wrap=True)


@import_app.command("customers")
def customers(
    file: Path = FileArg,
    skip_invalid: bool = SkipOpt,
    rejects: Path | None = RejectsOpt,
    json_mode: bool = JsonOpt,
) -> None:
    """Import customers (upsert on customer_id)."""
    _run("customers", file, skip_invalid, rejects, json_mode)


@import_app.command("invoices")
def invoices(
    file: Path = FileArg,
    skip_invalid: bool = SkipOpt,
    rejects: Path | None = RejectsOpt,
    json_mode: bool = JsonOpt,
) -> None:
    """Import invoices (upsert on invoice_number; customers must exist)."""
    _run("invoices", file, skip_invalid, rejects, json_mode)


@import_app.command("payments")
def payments(
    file: Path = FileArg,
    skip_invalid: bool = SkipOpt,
    rejects: Path | None = RejectsOpt,
    json_mode: bool = JsonOpt,
) -> None:
    """Import payments (idempotent; never more than an invoice's open balance)."""
    _run("payments", file, skip_invalid, rejects, json_mode)


@import_app.command("payment-attempts")
def payment_attempts(
    file: Path = FileArg,
    skip_invalid: bool = SkipOpt,
    rejects: Path | None = RejectsOpt,
    json_mode: bool = JsonOpt,
) -> None:
    """Import payment attempts (failed or succeeded card charges)."""
    _run("payment-attempts", file, skip_invalid, rejects, json_mode)
