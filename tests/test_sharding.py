"""Sharding without Prefect: the shard key, its column on every insert path and in the
migration, the shard filter of load_portfolio, the parameters, and report aggregation."""

from __future__ import annotations

import datetime as dt
import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from alembic import command
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import Engine, inspect, select, text
from typer.testing import CliRunner

from dunning import db
from dunning.cli import _load_commands, app
from dunning.db.models import Customer, Invoice, Reminder
from dunning.devtools.scratch import scratch_database
from dunning.devtools.seed import seed_portfolio
from dunning.params import RunParameters
from dunning.portfolio import load_portfolio
from dunning.report import RunReport
from dunning.sharding import shard_key, shard_of, split_evenly
from tests.conftest import PG_URL
from tests.factories import add_customer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


def test_the_shard_key_is_crc32_of_the_utf8_id():
    # The CRC-32 check value of "123456789" (the standard's test vector): a reimplementation
    # or a switch to a salted hash would change it.
    assert shard_key("123456789") == 0xCBF43926
    assert shard_key("CUS-0000001") == zlib.crc32(b"CUS-0000001")
    assert shard_key("Müller") == zlib.crc32("Müller".encode())


@given(
    ids=st.lists(st.text(min_size=1, max_size=64), min_size=1, max_size=50, unique=True),
    shards=st.integers(min_value=1, max_value=8),
)
def test_every_customer_is_in_exactly_one_shard(ids: list[str], shards: int):
    members = {k: {c for c in ids if shard_key(c) % shards == k} for k in range(shards)}
    assert sorted(c for m in members.values() for c in m) == sorted(ids)
    for c in ids:
        assert [k for k, m in members.items() if c in m] == [shard_of(c, shards)]
        assert 0 <= shard_key(c) < 2**32


@given(total=st.integers(min_value=0, max_value=10_000), parts=st.integers(1, 256))
def test_split_evenly_sums_to_the_total_in_near_equal_shares(total: int, parts: int):
    shares = split_evenly(total, parts)
    assert len(shares) == parts and sum(shares) == total
    assert max(shares) - min(shares) <= 1


def _stored_keys(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(Customer.customer_id, Customer.shard_key)).all())


def test_seed_bulk_inserts_set_each_customers_shard_key(engine: Engine):
    seed_portfolio(engine, 30, 60, 7, AS_OF.date())
    keys = _stored_keys(engine)
    assert len(keys) == 30
    assert keys == {c: zlib.crc32(c.encode()) for c in keys}
    assert len({k % 4 for k in keys.values()}) == 4  # a spread, not one constant


def test_orm_adds_and_importer_inserts_set_the_shard_key(engine: Engine):
    add_customer(engine, "ORM-1")
    _load_commands()
    result = CliRunner().invoke(
        app, ["import", "customers", str(EXAMPLES / "customers.csv"), "--json"]
    )
    assert result.exit_code == 0, result.stderr
    keys = _stored_keys(engine)
    assert len(keys) == 6
    assert keys == {c: zlib.crc32(c.encode()) for c in keys}


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    """A seeded portfolio with ledger rows for about a third of its invoices."""
    seed_portfolio(engine, 40, 150, 7, AS_OF.date())
    with engine.begin() as conn:
        invoices = conn.execute(select(Invoice.id, Invoice.customer_id)).all()
        conn.execute(
            Reminder.__table__.insert(),
            [
                {
                    "invoice_id": i,
                    "customer_id": c,
                    "stage": "due",
                    "channel": "email",
                    "status": "sent",
                    "planned_at": AS_OF,
                    "created_at": AS_OF,
                    "updated_at": AS_OF,
                }
                for i, c in invoices[::3]
            ],
        )
    return engine


def test_load_portfolio_with_a_shard_returns_exactly_that_shards_rows(seeded: Engine):
    whole = load_portfolio(seeded)
    owner = whole.invoices.set_index("invoice_id")["customer_id"].astype(str)
    for shards in range(1, 9):
        seen: list[str] = []
        for k in range(shards):
            part = load_portfolio(seeded, shard=(shards, k))
            ids = set(part.customers["customer_id"].astype(str))
            assert ids == {c for c in whole.customers["customer_id"] if shard_of(c, shards) == k}
            seen += list(ids)
            want = whole.invoices[whole.invoices["customer_id"].isin(ids)]
            assert set(part.invoices["invoice_id"]) == set(want["invoice_id"])
            for name in ("payments", "attempts", "ledger"):
                got, full = getattr(part, name), getattr(whole, name)
                assert set(owner[got["invoice_id"]]) <= ids, name
                assert len(got) == int(full["invoice_id"].map(owner).isin(ids).sum()), name
        assert sorted(seen) == sorted(whole.customers["customer_id"].astype(str))


def test_the_shard_filter_combines_with_invoice_numbers(seeded: Engine):
    whole = load_portfolio(seeded)
    numbers = list(whole.invoices["invoice_number"][:20])
    for k in range(2):
        part = load_portfolio(seeded, invoice_numbers=numbers, shard=(2, k))
        scoped = part.invoices[part.invoices["in_scope"]]
        assert {shard_of(c, 2) for c in scoped["customer_id"]} <= {k}
        assert set(scoped["invoice_number"]) <= set(numbers)


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"shards": 2, "shard": 2}, "shard", ["shard 2", "shards 2", "set shard to 0..1"]),
        ({"shard": 1}, "shard", ["shards 1", "shards to 2 or more"]),
        ({"shards": 0}, "shards", ["greater than or equal to 1"]),
        ({"shards": 257}, "shards", ["less than or equal to 256"]),
        ({"shards": 2, "shard": -1}, "shard", ["greater than or equal to 0"]),
        ({"shard_deployment": "payment-reminders"}, "shard_deployment", ["<flow>/<deployment>"]),
    ],
)
def test_invalid_shard_parameters_are_refused_naming_the_field_and_fix(values, field, words):
    with pytest.raises(ValidationError) as info:
        RunParameters(**values)
    (error,) = info.value.errors()
    assert error["loc"] == (field,)
    for word in words:
        assert word in error["msg"]


def test_valid_shard_parameters_are_accepted():
    assert RunParameters().shards == 1 and RunParameters().shard is None
    p = RunParameters.model_validate(
        {"shards": 4, "shard": 3, "shard_deployment": "payment-reminders/payment-reminders-shard"}
    )
    assert (p.shards, p.shard) == (4, 3)


def test_the_cli_refuses_a_shard_outside_shards():
    _load_commands()
    result = CliRunner().invoke(app, ["run", "--shards", "3", "--shard", "3"])
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())  # rich wraps lines at the terminal width
    assert "shard: Value error, shard 3 is not below shards 3" in message
    assert "set shard to 0..2, or shards to 4 or more" in message


def _report(rows: list[dict], **kw) -> RunReport:
    frame = pd.DataFrame(rows).reindex(columns=[*rows[0], "customer_id", "not_before"])
    return RunReport(AS_OF, False, kw.pop("run_id", "r1"), frame, **kw)


def _line(number: str, action: str, outcome: str, **kw) -> dict:
    return {
        "invoice_number": number,
        "segment": kw.get("segment", "reliable"),
        "stage": kw.get("stage", "due"),
        "channel": kw.get("channel", "email"),
        "action": action,
        "outcome": outcome,
        "reason": kw.get("reason", ""),
        "error_code": kw.get("error_code"),
    }


PARTS = [
    _report(
        [
            _line("I1", "send", "sent"),
            _line("I9", "send", "sent"),
            _line("I2", "send", "sent", channel="sms"),
            _line("I3", "skip", "skipped", reason="paid"),
            _line("I4", "send", "failed", error_code="21211", reason="invalid number"),
            _line("I5", "defer", "deferred", reason="outside_window", segment="late"),
        ],
        reconciled={"found_sent": 1, "released": 0, "unknown": 0},
    ),
    _report(
        [
            _line("I6", "send", "sent", stage="overdue_1"),
            _line("I7", "send", "unknown", reason="crash"),
            _line("I8", "skip", "skipped", reason="paid"),
        ],
        run_id="r2",
        reconciled={"found_sent": 0, "released": 2, "unknown": 1},
        stopped="provider refused our credentials",
    ),
]


def test_a_compact_report_rebuilds_the_same_summary_and_failures():
    for part in PARTS:
        compact = json.loads(json.dumps(part.to_compact()))  # what the JSON column keeps
        back = RunReport.from_compact(compact)
        assert back.to_json() == part.to_json()
        assert back.failures() == part.failures()
        assert back.funnel() == part.funnel()
    assert len(PARTS[0].to_compact()["rows"]) < len(PARTS[0].frame)  # I1 and I9 grouped


def test_combined_reports_add_up_and_list_their_shards():
    shards = [
        {
            "shard": k,
            "flow_run_id": p.flow_run_id,
            "flow_run_name": f"run-{k}",
            "state": "COMPLETED",
            "counts": p.counts(),
        }
        for k, p in enumerate(PARTS)
    ]
    whole = RunReport.combine(AS_OF, False, "coord", PARTS, shards)
    c0, c1, total = PARTS[0].counts(), PARTS[1].counts(), whole.counts()
    assert total == {k: c0[k] + c1[k] for k in total}
    assert total["sent"] == 4 and total["skipped"] == 2
    assert whole.reconciled == {"found_sent": 1, "released": 2, "unknown": 1}
    assert whole.stopped == "provider refused our credentials"
    assert whole.skip_reasons()[0] == ("paid", 2)
    assert {f["invoice"] for f in whole.failures()} == {"I4", "I7"}
    summary = whole.to_json()
    assert summary["flow_run_id"] == "coord" and summary["shards"] == shards
    assert "## Shards" in whole.to_markdown() and "| 1 | run-1 | COMPLETED |" in (
        whole.to_markdown()
    )
    assert "shards" not in PARTS[0].to_json()  # an ordinary run's JSON is unchanged
    empty = RunReport.combine(AS_OF, True, "coord", [])
    assert empty.counts()["sent"] == 0 and empty.funnel() == "nothing to consider"


@pytest.fixture
def fresh_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database (SQLite file, or a new PostgreSQL database) with no schema yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    assert PG_URL is not None
    with scratch_database(PG_URL, "dunning_m") as url:
        try:
            yield url
        finally:
            db.get_engine(url).dispose()


@pytest.mark.parametrize(
    "fresh_url", ["sqlite"] + (["postgresql"] if PG_URL else []), indirect=True
)
def test_migration_0003_backfills_existing_customers_and_downgrades(fresh_url: str):
    db.upgrade(fresh_url, "0002")
    engine = db.get_engine(fresh_url)
    insert = text(
        "INSERT INTO customers (customer_id, email_invalid, country, timezone, locale, "
        "sms_consent, email_opt_out, sms_opt_out, created_at, updated_at) VALUES "
        "(:cid, false, 'US', 'UTC', 'en_US', false, false, false, :at, :at)"
    )
    ids = [f"OLD-{i}" for i in range(12)] + ["Zoë"]
    with engine.begin() as conn:
        conn.execute(insert, [{"cid": c, "at": AS_OF.replace(tzinfo=None)} for c in ids])
        conn.execute(
            text(
                "INSERT INTO invoices (invoice_number, customer_id, currency, amount, issued_on, "
                "due_on, status, created_at, updated_at) VALUES ('I-1', 'OLD-1', 'EUR', 1, "
                "'2026-11-01', '2026-11-20', 'open', :at, :at)"
            ),
            {"at": AS_OF.replace(tzinfo=None)},
        )

    db.upgrade(fresh_url)
    assert _stored_keys(engine) == {c: zlib.crc32(c.encode()) for c in ids}
    add_customer(engine, "NEW-1")  # the model's default after the migration
    assert _stored_keys(engine)["NEW-1"] == zlib.crc32(b"NEW-1")

    command.downgrade(db.alembic_config(fresh_url), "0002")  # with invoices referencing rows
    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("customers")}
    assert "shard_key" not in columns
    db.upgrade(fresh_url)
    assert _stored_keys(engine)["NEW-1"] == zlib.crc32(b"NEW-1")
    engine.dispose()
