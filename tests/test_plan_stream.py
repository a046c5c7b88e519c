"""`dunning plan` in customer chunks (dunning.plan_stream): the chunks make the whole plan, the
JSON Lines carry the plan's fields, and the first lines come out before the last chunk loads."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, insert

from dunning.db.models import Reminder
from dunning.devtools.seed import seed_portfolio
from dunning.money import from_minor
from dunning.plan_stream import customer_chunks, money_text, plan_chunks
from dunning.policy import load_policy, plan
from dunning.policy.planner import FEATURE_COLUMNS
from dunning.portfolio import load_portfolio
from tests.factories import add_customer, add_invoice

AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
EARLIER = [dt.datetime(2026, 11, 17, 15, 0, tzinfo=dt.UTC), AS_OF - dt.timedelta(hours=5)]


def _comparable(lines: pd.DataFrame) -> pd.DataFrame:
    """``lines`` with categories as plain strings (a chunk's categories may be fewer)."""
    return lines.astype({c: str for c in lines.columns if str(lines[c].dtype) == "category"})


def _seed_with_history(engine: Engine) -> None:
    """A seeded portfolio plus a ledger: the sends of two earlier plans (a week ago and five
    hours ago, the customers' today) marked sent, so daily caps, one call a day, the last stage
    and already-sent rules all see history."""
    seed_portfolio(engine, 300, 1500, 4, AS_OF.date())
    policy = load_policy()
    written: set[tuple[int, str, str]] = set()
    for when in EARLIER:
        lines = plan(load_portfolio(engine), when, policy)
        sends = lines.loc[lines["action"] == "send"].iloc[::2]
        keys = [(int(r.invoice_id), str(r.stage), str(r.channel)) for r in sends.itertuples()]
        sends = sends.loc[[k not in written for k in keys]]
        written.update(keys)
        rows = [
            {
                "invoice_id": int(r.invoice_id),
                "customer_id": r.customer_id,
                "stage": str(r.stage),
                "channel": str(r.channel),
                "status": "sent" if i % 5 else "failed_permanent",
                "attempts": 1,
                "planned_for": when,
                "sent_at": when if i % 5 else None,
            }
            for i, r in enumerate(sends.itertuples())
        ]
        with engine.begin() as conn:
            conn.execute(insert(Reminder), rows)


def test_chunked_plan_equals_the_whole_plan(engine: Engine) -> None:
    _seed_with_history(engine)
    policy = load_policy()
    whole = plan(load_portfolio(engine), AS_OF, policy)
    chunks = list(customer_chunks(engine, first=7, most=60))
    assert [c.customers for c in chunks][:4] == [7, 28, 60, 60]
    assert sum(c.customers for c in chunks) == 300 and len(chunks) == 7
    assert (chunks[0].low, chunks[-1].high) == (None, None)
    assert all(a.high == b.low for a, b in zip(chunks, chunks[1:], strict=False))
    parts = [part for _, part in plan_chunks(engine, AS_OF, policy, chunks)]
    chunked = pd.concat(parts, ignore_index=True).sort_values(
        "invoice_id", kind="stable", ignore_index=True
    )
    assert len(whole) > 100 and set(whole["action"]) == {"send", "defer", "skip"}
    assert whole["reason"].isin(["already_sent", "reminded_today"]).any()
    pd.testing.assert_frame_equal(_comparable(chunked), _comparable(whole))


def test_chunks_of_an_empty_database_plan_nothing(engine: Engine) -> None:
    chunks = list(customer_chunks(engine))
    assert [(c.low, c.high, c.customers) for c in chunks] == [(None, None, 0)]
    ((_, lines),) = list(plan_chunks(engine, AS_OF, load_policy(), chunks))
    assert lines.empty
    with pytest.raises(ValueError, match="first=0"):
        next(customer_chunks(engine, first=0))


def test_money_text_writes_what_from_minor_writes() -> None:
    values = [0, 1, -1, 5, 99, 100, -150, 6025, 10**12 + 7, -(10**9)]
    for currency in ("USD", "JPY", "KWD", "HUF", "ISK", "UGX", "EUR"):
        got = money_text(pd.Series(values), pd.Series([currency] * len(values)))
        assert got == [str(from_minor(v, currency)) for v in values], currency


def _cli(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("dunning")), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )


def test_json_lines_carry_the_plan_fields(engine: Engine) -> None:
    _seed_with_history(engine)
    policy = load_policy()
    whole = plan(load_portfolio(engine), AS_OF, policy)
    proc = _cli("plan", "--all", "--json", "--as-of", "2026-11-24T15:00:00Z")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert len(lines) == len(whole)
    assert list(lines[0]) == [
        "invoice_number",
        "customer_id",
        "segment",
        "stage",
        "channel",
        "action",
        "reason",
        "not_before",
        "tone",
        "days_overdue",
        "balance",
        "currency",
        *FEATURE_COLUMNS,
    ]
    by = {(x["invoice_number"], x["channel"], x["stage"]): x for x in lines}
    for row in whole.itertuples():
        line = by[(row.invoice_number, str(row.channel), str(row.stage))]
        assert (line["customer_id"], line["segment"], line["action"], line["reason"]) == (
            row.customer_id,
            str(row.segment),
            str(row.action),
            row.reason,
        )
        assert line["not_before"] == (
            "" if pd.isna(row.not_before) else row.not_before.strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        assert (line["tone"], line["days_overdue"]) == (str(row.tone), row.days_overdue)
        assert Decimal(line["balance"]) == from_minor(row.balance_minor, row.currency)
        assert line["currency"] == row.currency
        for name in FEATURE_COLUMNS:
            value = getattr(row, name)
            assert line[name] == (None if pd.isna(value) else value), name
    # Without --all: the send lines only.
    proc = _cli("plan", "--json", "--as-of", "2026-11-24T15:00:00Z")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    sends = [json.loads(line) for line in out.decode().splitlines()]
    assert len(sends) == (whole["action"] == "send").sum() > 0
    assert {x["action"] for x in sends} == {"send"}


def test_first_lines_come_out_before_the_last_chunk_is_loaded(engine: Engine) -> None:
    # 800 customers: a first chunk of 500 (FIRST_CHUNK), then the last, unbounded one. The
    # first chunk's lines are far more than the pipe holds (one page here), so the command
    # waits in its write until this test reads them; a customer added after the first line
    # was read sorts last and is planned only if its chunk is loaded after that line was
    # written (a command that loads everything first never plans it).
    seed_portfolio(engine, 800, 4000, 4, AS_OF.date())
    last = list(customer_chunks(engine))[-1]
    assert last.low is not None and last.customers == 300
    proc = _cli("plan", "--all", "--json", "--as-of", "2026-11-24T15:00:00Z")
    assert proc.stdout is not None
    fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)
    head = b""
    while b"\n" not in head:
        data = os.read(proc.stdout.fileno(), 1024)
        assert data, proc.stderr.read().decode() if proc.stderr else "no output"
        head += data
    line, _, head = head.partition(b"\n")
    first = json.loads(line)
    add_customer(engine, "zz-late")
    add_invoice(
        engine,
        "INV-LATE",
        "zz-late",
        amount=Decimal("80.00"),
        issued_on=dt.date(2026, 10, 1),
        due_on=dt.date(2026, 11, 1),
    )
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    rest = [json.loads(line) for line in (head + out).decode().splitlines()]
    assert first["customer_id"] < "zz-late"
    late = [x for x in rest if x["invoice_number"] == "INV-LATE"]
    assert late and {x["customer_id"] for x in late} == {"zz-late"}
    before_last = [x for x in [first, *rest] if x["customer_id"] < last.low]
    # More than even a default pipe (64 KiB) holds.
    assert sum(len(json.dumps(x)) for x in before_last) > 1 << 16


def test_bench_plan_stream_measures_both_commands(db_url: str, engine: Engine) -> None:
    from bench.bench_plan_stream import main

    seed_portfolio(engine, 60, 300, 4, AS_OF.date())
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    result = main(
        ["--backends", backend, "--sqlite", db_url.removeprefix("sqlite:///"), "--pg-url", db_url]
    )
    figures = result[backend]
    assert figures["same_lines"] and figures["lines"] == figures["baseline"]["lines"] > 0
    assert 0 < figures["plan_first_line_s_1m"] <= figures["total_s"]
    assert figures["plan_json_lines_per_s_1m"] > 0 and figures["plan_stream_peak_rss_mb"] > 0


def test_table_lists_the_whole_plan_by_invoice_without_progress_when_piped(
    engine: Engine,
) -> None:
    from typer.testing import CliRunner

    import dunning.cli.policy  # noqa: F401  (registers the commands on app)
    from dunning.cli.app import app

    seed_portfolio(engine, 700, 2800, 4, AS_OF.date())  # two chunks: 500 and 200 customers
    # The newest invoice, of a customer in the first chunk: last by invoice, first by chunk.
    add_customer(engine, "AAA-early")
    add_invoice(
        engine,
        "INV-EARLY",
        "AAA-early",
        amount=Decimal("80.00"),
        issued_on=dt.date(2026, 10, 1),
        due_on=dt.date(2026, 11, 1),
    )
    whole = plan(load_portfolio(engine), AS_OF, load_policy())
    sends = whole.loc[whole["action"] == "send"]
    assert sends["invoice_number"].iloc[-1] == "INV-EARLY"
    result = CliRunner().invoke(app, ["plan", "--as-of", "2026-11-24T15:00:00Z"])
    assert result.exit_code == 0, result.output
    numbers = [n for n in result.stdout.split() if n.startswith("INV-")]
    assert numbers == sends["invoice_number"].tolist() and len(set(sends["customer_id"])) > 1
    assert result.stderr.strip() == f"{len(sends)} line(s) to send; --all shows defer/skip"
