"""`dunning run` on a terminal draws a progress bar that follows the delivery batches; with
--json it stays quiet and prints only the JSON."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import sys

import pytest
from rich.console import Console
from typer.testing import CliRunner

from dunning.cli import _load_commands
from dunning.cli.app import app
from tests.factories import add_customer, add_invoice

pytestmark = pytest.mark.prefect
AS_OF = "2026-11-24T15:00:00Z"


def _portfolio(engine) -> None:
    add_customer(engine, "C1")
    add_customer(engine, "C2", email="bo@example.org", phone=None, sms_consent=False)
    add_invoice(engine, "INV-DUE", "C1", due_on=dt.date(2026, 11, 24))
    add_invoice(engine, "INV-LATE", "C1", due_on=dt.date(2026, 11, 10))
    add_invoice(engine, "INV-C2", "C2", due_on=dt.date(2026, 11, 17))


def test_the_bar_follows_the_batches_on_a_terminal_and_json_stays_quiet(
    prefect_server, engine, monkeypatch: pytest.MonkeyPatch
):
    import dunning.cli.run as run_cli

    app_module = sys.modules["dunning.cli.app"]  # the package's `app` is the Typer object

    _portfolio(engine)
    _load_commands()
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=160)
    monkeypatch.setattr(run_cli, "console", terminal)
    monkeypatch.setattr(app_module, "console", terminal)  # what show_progress asks
    result = CliRunner().invoke(app, ["run", "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    drawn = screen.getvalue()
    sent = int(result.stdout.split("sent ")[1].split()[0])
    assert sent >= 3
    assert "messages" in drawn and f"{sent}/{sent}" in drawn, drawn
    assert "msg/s" in drawn and re.search(r"batch (\d+)/\1 ", drawn), drawn

    screen.truncate(0)
    result = CliRunner().invoke(app, ["run", "--as-of", "2026-11-24T16:00:00Z", "--json"])
    assert result.exit_code == 0, result.output
    assert "messages" not in screen.getvalue()
    assert json.loads(result.stdout.strip().splitlines()[-1])["dry_run"] is False
