"""A phone that cannot receive SMS (fixed line, extension): the import warns for the row and
still imports the customer; the plan skips SMS with reason not_mobile."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, select
from typer.testing import CliRunner

from dunning.cli import _load_commands, app
from dunning.db import session_scope
from dunning.db.models import Customer
from tests.factories import add_invoice

runner = CliRunner()
CUSTOMERS = """customer_id,country,timezone,locale,phone,sms_consent,email
M1,DE,Europe/Berlin,de_DE,0151 23456789,true,m1@example.com
F1,DE,Europe/Berlin,de_DE,030 1234567,true,f1@example.com
X1,US,America/New_York,en_US,+1 415 555 0123 ext. 12,true,x1@example.com
U1,US,America/New_York,en_US,+1 415 555 0123,true,u1@example.com
"""


def cli(*args: str) -> tuple[int, str, str]:
    _load_commands()
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_import_warns_and_plan_skips_sms_not_mobile(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS, encoding="utf-8")
    code, out, _ = cli("import", "customers", str(path), "--json")
    report = json.loads(out)
    assert code == 0 and report["inserted"] == 4 and report["rejected"] == 0
    assert [w.split(":")[0] for w in report["warnings"]] == ["line 3", "line 4"]
    assert "is a fixed line" in report["warnings"][0]
    assert "has an extension" in report["warnings"][1]
    code, _, err = cli("import", "customers", str(path))
    assert code == 0 and "warning: line 3: phone:" in err
    with session_scope(engine) as s:
        flags = {c.customer_id: c.not_mobile for c in s.scalars(select(Customer))}
    # US numbers are FIXED_LINE_OR_MOBILE: an SMS destination.
    assert flags == {"M1": False, "F1": True, "X1": True, "U1": False}

    for cid in flags:
        add_invoice(
            engine,
            f"INV-{cid}",
            cid,
            amount=Decimal("50.00"),
            issued_on=dt.date(2026, 10, 1),
            due_on=dt.date(2026, 11, 1),
        )
    code, out, _ = cli("plan", "--all", "--as-of", "2026-11-03T15:00:00Z", "--json")
    sms = {
        json.loads(line)["customer_id"]: json.loads(line)
        for line in out.splitlines()
        if json.loads(line)["channel"] == "sms"
    }
    assert (sms["F1"]["action"], sms["F1"]["reason"]) == ("skip", "not_mobile")
    assert (sms["X1"]["action"], sms["X1"]["reason"]) == ("skip", "not_mobile")
    assert sms["M1"]["reason"] != "not_mobile" and sms["U1"]["reason"] != "not_mobile"
