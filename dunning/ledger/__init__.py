"""The ledger protocol: plan → claim (with a lease) → send → record.

A reminder is sent at most once because:
- the reminders table has UNIQUE(invoice_id, stage, channel): a plan can only add a row once;
- a claim is a conditional UPDATE (``status = 'planned'`` → ``claimed``) that exactly one
  worker wins, made before the provider is called;
- a claim whose holder vanished (crash, kill) is never re-sent blindly: ``reconcile_stale``
  asks the provider where it can, else marks the row ``unknown`` for the operator.

The balance, pause, dispute and opt-out re-check happens inside the claim transaction, so a
payment or STOP that lands after planning stops the reminder.

Every INSERT, UPDATE and DELETE on the reminders table goes through this package:

- ``plan``: plan rows (``record_plan``) and lookups of planned rows;
- ``claim``: ``claim`` with its re-check, ``reminder_data``;
- ``record``: ``record``, ``fail_claimed``, ``release``;
- ``reconcile``: recover stale claims (``stale_claims``, ``reconcile_stale``);
- ``events``: apply delivery events and status updates from tracking (``advance``,
  ``apply_outcome``, ``settle_ambiguous``, ``opt_out``, ``skip_open_reminders``).
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
