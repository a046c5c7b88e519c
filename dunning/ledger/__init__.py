"""The ledger protocol: plan → claim (with a lease) → send → record.

A reminder is sent at most once because:
- the reminders table has UNIQUE(invoice_id, stage, channel): a plan can only add a row once;
- a claim is a conditional UPDATE (``status = 'planned'`` → ``claimed``) that exactly one
  worker wins, made before the provider is called;
- a claim whose holder vanished (crash, kill) is never re-sent blindly: ``reconcile_stale``
  asks the provider where it can, else marks the row ``unknown`` for the operator.

The balance, pause, dispute and opt-out re-check happens inside the claim transaction, so a
payment or STOP that lands after planning stops the reminder.

Every INSERT, UPDATE and DELETE on the reminders table goes through this package (a test,
tests/test_ledger_owns_writes.py, fails on a write elsewhere):

- ``plan``: plan rows (``record_plan``; an experiment's holdout rows, ``record_holdouts``)
  and lookups of planned rows (``by_invoice``,
  ``channels_and_stages``);
- ``claim``: ``claim`` (planned → claimed with a lease, re-checked in the same transaction)
  and ``reminder_data``;
- ``record``: a claimed row's end of an attempt: ``record`` (sent, failed_permanent, released,
  left claimed when ambiguous), ``fail_claimed`` (before sending), ``release``;
- ``reconcile``: recover stale claims (``stale_claims``, ``reconcile_stale``);
- ``events``: delivery events and status updates from tracking (``record_event``,
  ``advance``, ``apply_outcome``, ``settle_ambiguous``, ``record_call_outcome``), what a
  provider's word says about the customer (``flag_customer``, ``opt_out``,
  ``mark_email_invalid``), ``skip_open_reminders`` and an operator's ``resolve_reminder``;
- ``payments``: a payment's effect (``attribute_payments``, ``stop_settled``), called only by
  the payment path ``record_payments`` in the same module;
- ``erase``: what privacy needs (``erase_reminders``, ``drop_old_bodies``).

The status order (rank, timestamp column, moves_forward) is ``dunning.core.status``.

Claim and record work on lists of reminder ids and return per-row outcomes; each write is
guarded by the row's status (and, for record/fail/release, by ``claimed_by``), so a stale
worker changes nothing.
"""

from dunning.ledger.claim import ClaimOutcome, Grouping, MinBalance, claim, reminder_data
from dunning.ledger.plan import (
    by_customer,
    by_invoice,
    channels_and_stages,
    ids_of_customers,
    record_plan,
)
from dunning.ledger.record import Recorded, fail_claimed, record, release

__all__ = [
    "ClaimOutcome",
    "Grouping",
    "MinBalance",
    "Recorded",
    "by_customer",
    "by_invoice",
    "channels_and_stages",
    "claim",
    "fail_claimed",
    "ids_of_customers",
    "record",
    "record_plan",
    "release",
    "reminder_data",
]
