"""SkipReason and the one ordered rule set behind every "must not go out" decision.

The planner asks it for a whole plan at once (``first_reasons``: numpy arrays, one element per
plan line) and the ledger asks it again for each reminder it claims (``first_reason``: one
reminder's facts, scalars), against the invoice and customer as they are at that moment. Both
forms walk the same ``RULES`` in the same order and return the first reason that applies, so a
reminder the planner would skip is skipped at claim time for the same reason.

Facts (each an array for ``first_reasons``, a scalar for ``first_reason``):

- ``status``: the invoice status (open, paid, void, disputed);
- ``balance``, ``minimum``: what is left to pay and the policy's minimum worth a reminder, in
  the same unit on both sides (the planner uses integer minor units, the claim Decimals);
- ``today``: the customer's local date at the run's as-of; ``customer_paused_until``,
  ``invoice_paused_until``, ``promise_to_pay_on``: dates (numpy ``datetime64[D]``, NaT = none);
- ``email``, ``sms``, ``voice``: the channel of the line (exactly one is true);
- ``has_email`` (an address that is not known invalid), ``has_phone``, ``email_opt_out``,
  ``sms_opt_out``, ``sms_consent``, ``voice_opt_out``, ``voice_consent``, ``not_mobile``;
- planner only (``PLAN_ONLY`` rules; the claim does not see the ledger's history):
  ``in_ladder`` (a ladder stage, not payment_failed/promise_broken), ``escalated``, ``code``
  and ``max_done`` (stage rank planned and highest rank done), ``done`` (this (invoice,
  stage, channel) already went out), ``failed_today``, ``reminded_today``, ``called_today``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np


class SkipReason(StrEnum):
    """Why a reminder is not sent (skipped) or not yet (deferred): every reason the planner,
    the flow or the ledger writes is one of these (``tests/test_skip_reasons.py``).

    The members the ``RULES`` use come first, in the order the rules are tried (the first
    that applies is the one recorded); then the reasons other steps write, after the rules or
    on their own.
    """

    PAID = "paid"
    VOID = "void"
    DISPUTED = "disputed"
    BALANCE_BELOW_MINIMUM = "balance_below_minimum"
    CUSTOMER_PAUSED = "customer_paused"
    INVOICE_PAUSED = "invoice_paused"
    PROMISE_TO_PAY = "promise_to_pay"
    ESCALATED = "escalated"
    HIGHER_STAGE_SENT = "higher_stage_sent"
    ALREADY_SENT = "already_sent"
    FAILED_TODAY = "failed_today"
    REMINDED_TODAY = "reminded_today"
    EMAIL_OPT_OUT = "email_opt_out"
    MISSING_EMAIL = "missing_email"
    SMS_OPT_OUT = "sms_opt_out"
    NO_SMS_CONSENT = "no_sms_consent"
    MISSING_PHONE = "missing_phone"
    NOT_MOBILE = "not_mobile"
    VOICE_OPT_OUT = "voice_opt_out"
    NO_VOICE_CONSENT = "no_voice_consent"
    ONE_CALL_PER_DAY = "one_call_per_day"
    # --- written by steps other than RULES ---
    #: The send window is closed (dunning.policy.window; defer until it opens).
    BLACKOUT = "blackout"
    HOLIDAY = "holiday"
    WEEKEND = "weekend"
    OUTSIDE_SEND_WINDOW = "outside_send_window"
    #: More SMS than max_sms_per_customer_per_day (the planner; defer to the next day).
    SMS_DAILY_CAP = "sms_daily_cap"
    #: An experiment's holdout customer (skip; the ledger keeps a row as the record).
    HOLDOUT = "holdout"
    #: A line on a channel the customer's experiment arm does not use (skip).
    EXPERIMENT_CHANNEL = "experiment_channel"
    #: Outside the customer's experiment arm's send hours (defer).
    EXPERIMENT_SEND_HOURS = "experiment_send_hours"
    #: The invoice's source is stale (dunning.sources.freshness; defer).
    SOURCE_STALE = "source_stale"
    #: Over the run's max_messages_per_run (the plan task; defer to the next run).
    MAX_MESSAGES_PER_RUN = "max_messages_per_run"
    #: The ledger stops a customer's open email reminders: the address is known invalid.
    EMAIL_INVALID = "email_invalid"
    #: The source deleted the invoice (dunning.sources.sync voids it; its reminders stop).
    DELETED_IN_SOURCE = "deleted_in_source"
    #: The customer was erased (dunning.ledger.erase; the stored value has a space).
    CUSTOMER_ERASED = "customer erased"


Facts = Mapping[str, Any]


def _no(value: Any) -> Any:
    """Logical not of a flag or an array of flags (``~`` would turn a Python bool into -2)."""
    return np.logical_not(value)


@dataclass(frozen=True)
class SkipRule:
    """``reason`` applies to the lines whose facts make ``applies`` true. ``at_claim``: the
    ledger re-checks it when it claims a reminder (False: a rule about the plan and the
    ledger's history, decided by the planner alone)."""

    reason: SkipReason
    applies: Callable[[Facts], Any]
    at_claim: bool = True


R = SkipReason
#: The rules in the order they are tried. The first two "paid" rules differ: a stored status
#: of paid, and a balance fully paid whatever the stored status says (payments recorded
#: before the status moved).
RULES: tuple[SkipRule, ...] = (
    SkipRule(R.PAID, lambda f: f["status"] == "paid"),
    SkipRule(R.VOID, lambda f: f["status"] == "void"),
    SkipRule(R.PAID, lambda f: f["balance"] <= 0),
    SkipRule(R.DISPUTED, lambda f: f["status"] == "disputed"),
    SkipRule(R.BALANCE_BELOW_MINIMUM, lambda f: f["balance"] <= f["minimum"]),
    SkipRule(R.CUSTOMER_PAUSED, lambda f: f["customer_paused_until"] > f["today"]),
    SkipRule(R.INVOICE_PAUSED, lambda f: f["invoice_paused_until"] > f["today"]),
    SkipRule(R.PROMISE_TO_PAY, lambda f: f["promise_to_pay_on"] >= f["today"]),
    # The ladder is climbed to its end and the next repeat would be due: a person takes over
    # (event dunning.invoice.escalated) instead of the invoice going silent.
    SkipRule(R.ESCALATED, lambda f: f["in_ladder"] & f["escalated"], at_claim=False),
    SkipRule(
        R.HIGHER_STAGE_SENT, lambda f: f["in_ladder"] & (f["code"] < f["max_done"]), at_claim=False
    ),
    SkipRule(R.ALREADY_SENT, lambda f: f["done"], at_claim=False),
    SkipRule(R.FAILED_TODAY, lambda f: f["failed_today"], at_claim=False),
    # One reminder per invoice per local day: a re-run, or payment_failed sent this morning,
    # never adds a second message the same day; the next stage goes tomorrow.
    SkipRule(R.REMINDED_TODAY, lambda f: f["reminded_today"], at_claim=False),
    SkipRule(R.EMAIL_OPT_OUT, lambda f: f["email"] & f["email_opt_out"]),
    SkipRule(R.MISSING_EMAIL, lambda f: f["email"] & _no(f["has_email"])),
    SkipRule(R.SMS_OPT_OUT, lambda f: f["sms"] & f["sms_opt_out"]),
    SkipRule(R.NO_SMS_CONSENT, lambda f: f["sms"] & _no(f["sms_consent"])),
    SkipRule(R.MISSING_PHONE, lambda f: f["sms"] & _no(f["has_phone"])),
    SkipRule(R.NOT_MOBILE, lambda f: f["sms"] & f["not_mobile"], at_claim=False),
    SkipRule(R.VOICE_OPT_OUT, lambda f: f["voice"] & f["voice_opt_out"]),
    SkipRule(R.NO_VOICE_CONSENT, lambda f: f["voice"] & _no(f["voice_consent"])),
    SkipRule(R.MISSING_PHONE, lambda f: f["voice"] & _no(f["has_phone"])),
    # At most one call per customer per local day (the planner also keeps only the call
    # about the largest balance among this plan's calls to one customer).
    SkipRule(R.ONE_CALL_PER_DAY, lambda f: f["voice"] & f["called_today"], at_claim=False),
)
#: The reasons the window, the experiments, freshness and the plan task write after the rules
#: (deferrals and skips that are not a rule about one line's facts).
DEFER_REASONS: frozenset[SkipReason] = frozenset(
    {
        SkipReason.BLACKOUT,
        SkipReason.HOLIDAY,
        SkipReason.WEEKEND,
        SkipReason.OUTSIDE_SEND_WINDOW,
        SkipReason.SMS_DAILY_CAP,
        SkipReason.EXPERIMENT_SEND_HOURS,
        SkipReason.SOURCE_STALE,
        SkipReason.MAX_MESSAGES_PER_RUN,
    }
)
#: The rules the ledger re-checks when it claims a reminder, in the same order.
CLAIM_RULES: tuple[SkipRule, ...] = tuple(r for r in RULES if r.at_claim)


def first_reasons(facts: Facts, rules: tuple[SkipRule, ...] = RULES) -> np.ndarray:
    """Vectorised: per line, the first of ``rules`` that applies ("" where none does).

    ``facts`` maps each fact name to an array of one element per line (see the module
    docstring). Returns an array of plain strings (SkipReason values).
    """
    conditions = [np.asarray(rule.applies(facts), dtype=bool) for rule in rules]
    return np.select(conditions, [str(rule.reason) for rule in rules], default="")


def first_reason(facts: Facts, rules: tuple[SkipRule, ...] = CLAIM_RULES) -> SkipReason | None:
    """Scalar: the first of ``rules`` that applies to one line's ``facts``, None when none
    does (the reminder may go out)."""
    for rule in rules:
        if bool(rule.applies(facts)):
            return rule.reason
    return None


def day(value: dt.date | None) -> np.datetime64:
    """A date fact as the rules compare it: ``datetime64[D]``, NaT for none (a missing date
    is never after today)."""
    return np.datetime64(value, "D") if value is not None else np.datetime64("NaT", "D")
