"""A delivery batch composed in worker processes (dunning.render.processes) gives the same
messages, in the same order, as composing in the delivery thread: single reminders, one
message per customer, template errors in their unit's place; a worker that dies costs that
chunk a compose in the thread, not the batch; a script without a main guard is not run again."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from dunning.config.channels import ChannelSettings
from dunning.core.messages import OutboundMessage, ReminderData
from dunning.db.models import Invoice, Reminder
from dunning.errors import TemplateError
from dunning.render import DEFAULT_TEMPLATES_DIR, processes
from dunning.render.processes import MIN_UNITS, compose_units
from tests.factories import add_customer, add_invoice
from tests.render_support import reminder

ROOT = Path(__file__).resolve().parents[1]
# Tuesday 24 Nov 2026, 15:00 UTC = 10:00 in New York: inside the default send window.
AS_OF = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


def _settings(workers: int | None, templates: Path = DEFAULT_TEMPLATES_DIR) -> ChannelSettings:
    return ChannelSettings(  # type: ignore[call-arg]
        templates_dir=str(templates),
        unsubscribe_secret=SecretStr("s3cret"),
        compose_processes=workers,
    )


@pytest.fixture(autouse=True)
def _stop_workers() -> Iterator[None]:
    yield
    processes.shutdown()


def _units(n: int) -> list[list[ReminderData]]:
    """``n`` units: e-mails and SMS in three languages, a customer's three invoices as one
    unit every tenth, and every seventh e-mail without an address (a TemplateError)."""
    units: list[list[ReminderData]] = []
    for k in range(n):
        base = reminder(
            reminder_id=1000 + 10 * k,
            invoice_id=500 + k,
            invoice_number=f"INV-{k:05d}",
            customer_id=f"C-{k}",
            channel="sms" if k % 3 == 0 else "email",
            locale=("en_US", "de_DE", "fr_FR")[k % 3],
            stage=("overdue_1", "overdue_2", "final_notice")[k % 3],
            days_overdue=4 + k,
        )
        if k % 7 == 5 and base.channel == "email":
            base = dataclasses.replace(base, email=None)
        if k % 10 == 9:
            units.append(
                [
                    dataclasses.replace(
                        base,
                        reminder_id=base.reminder_id + j,
                        invoice_id=base.invoice_id * 10 + j,
                        invoice_number=f"{base.invoice_number}-{j}",
                    )
                    for j in range(3)
                ]
            )
        else:
            units.append([base])
    return units


def _fields(c: OutboundMessage | TemplateError) -> tuple[object, ...]:
    if isinstance(c, TemplateError):
        return ("error", str(c))
    return (c.reminder_id, c.channel, c.to, c.subject, c.text, c.html, c.locale, c.headers)


@pytest.mark.parametrize("grouped", [False, True])
def test_workers_compose_what_the_thread_composes_in_the_same_order(grouped: bool) -> None:
    units = _units(3 * MIN_UNITS)
    here = compose_units(units, _settings(0), grouped=grouped)
    there = compose_units(units, _settings(2), grouped=grouped)
    assert processes._pool is not None and processes._pool.started == 2  # workers were used
    assert [_fields(c) for c in there] == [_fields(c) for c in here]
    errors = [c for c in there if isinstance(c, TemplateError)]
    assert errors and all("has no email address" in str(e) for e in errors)
    if grouped:  # a customer's three invoices are one message listing them all
        first = there[9]
        assert isinstance(first, OutboundMessage) and first.channel == "sms"
        assert all(f"INV-00009-{j}" in first.text for j in range(3))


def test_a_small_batch_composes_in_its_thread() -> None:
    compose_units(_units(MIN_UNITS - 1), _settings(2))
    assert processes._pool is None


def test_a_worker_that_dies_costs_its_chunk_a_compose_in_the_thread() -> None:
    units = _units(2 * MIN_UNITS)
    settings = _settings(1)
    expected = [_fields(c) for c in compose_units(units, _settings(0))]
    assert [_fields(c) for c in compose_units(units, settings)] == expected
    pool = processes._pool
    assert pool is not None and len(pool.all) == 1
    dead = pool.all[0].proc
    os.kill(dead.pid, signal.SIGKILL)
    dead.wait()
    assert [_fields(c) for c in compose_units(units, settings)] == expected
    assert dead not in [w.proc for w in pool.all]  # dropped
    assert [_fields(c) for c in compose_units(units, settings)] == expected
    assert len(pool.all) == 1 and pool.all[0].proc.poll() is None  # a new one took its place


def test_a_bug_in_a_worker_is_raised_in_the_thread_and_the_worker_is_kept() -> None:
    units = _units(MIN_UNITS)
    units[3] = [dataclasses.replace(units[3][0], balance_due="not money")]  # type: ignore[arg-type]
    settings = _settings(1)
    with pytest.raises(RuntimeError, match="composing worker: AttributeError: .*quantize"):
        compose_units(units, settings)
    pids = processes.worker_pids()
    assert len(pids) == 1
    good = _units(MIN_UNITS)
    assert [_fields(c) for c in compose_units(good, settings)] == [
        _fields(c) for c in compose_units(good, _settings(0))
    ]
    assert processes.worker_pids() == pids  # the same worker composed the next batch


def test_new_settings_start_new_workers_and_shutdown_stops_them(tmp_path: Path) -> None:
    units = _units(MIN_UNITS)
    compose_units(units, _settings(1))
    first = processes._pool
    assert first is not None
    old = [w.proc for w in first.all]
    compose_units(units, _settings(1))  # another settings object (a reload): new workers
    assert processes._pool is not first and all(p.poll() is not None for p in old)
    current = [w.proc for w in processes._pool.all]  # type: ignore[union-attr]
    processes.shutdown()
    assert processes._pool is None and all(p.poll() is not None for p in current)


def test_the_setting_and_its_default() -> None:
    assert processes.processes_for(_settings(3)) == 3
    assert processes.processes_for(_settings(0)) == 0
    cpus = len(os.sched_getaffinity(0))
    assert processes.processes_for(_settings(None)) == max(cpus - 1, 0)
    with pytest.raises(ValueError, match="compose_processes"):
        _settings(-1)


def test_a_script_without_a_main_guard_runs_once(tmp_path: Path) -> None:
    """multiprocessing's spawn would import the script again in every worker."""
    script = tmp_path / "adhoc.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(ROOT)!r})
            from tests.test_compose_processes import _settings, _units
            from dunning.render import processes
            print("top level ran", flush=True)
            done = processes.compose_units(_units(2 * processes.MIN_UNITS), _settings(2))
            print("composed", len(done), "with", processes._pool.started, "workers", flush=True)
            processes.shutdown()
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert out.count("top level ran") == 1
    assert f"composed {2 * MIN_UNITS} with 2 workers" in out


@pytest.mark.prefect
def test_a_reminder_run_composes_its_large_batches_in_workers_and_stops_them(
    prefect_server: None, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dunning.config import reload_settings
    from dunning.flows.payment_reminders import payment_reminders

    customers = MIN_UNITS + 16
    for k in range(customers):
        add_customer(engine, f"C{k}", email=f"c{k}@example.com", phone=None, sms_consent=False)
        add_invoice(engine, f"INV-{k}", f"C{k}", due_on=dt.date(2026, 11, 10))
    monkeypatch.setenv("DUNNING_COMPOSE_PROCESSES", "1")
    reload_settings()
    seen: list[tuple[int, list[subprocess.Popen[bytes]]]] = []
    stop = processes.shutdown

    def spied_shutdown() -> None:
        pool = processes._pool
        seen.append((pool.started, [w.proc for w in pool.all]) if pool else (0, []))
        stop()

    monkeypatch.setattr(processes, "shutdown", spied_shutdown)

    report = payment_reminders(as_of=AS_OF, channels=["email"], batch_size=500)

    assert report.counts()["sent"] == customers and report.counts()["failed"] == 0
    assert len(seen) == 1 and seen[0][0] == 1  # one worker composed the batch
    assert all(p.poll() is not None for p in seen[0][1])  # and it was stopped at the run's end
    with engine.connect() as conn:
        rows = conn.execute(
            select(Invoice.invoice_number, Reminder.to_address, Reminder.body, Reminder.subject)
            .join(Invoice, Invoice.id == Reminder.invoice_id)
            .where(Reminder.status == "sent")
        ).all()
    assert len(rows) == customers
    for number, to, body, subject in rows:  # each message is its own invoice's
        k = number.removeprefix("INV-")
        assert to == f"c{k}@example.com" and number in body and subject
