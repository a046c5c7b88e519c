"""Approval before the loud part: when a reminder run must wait for a person, and what that
person is shown (pure: settings and plan lines in, reasons and markdown out).

The pause itself is Prefect's (``pause_flow_run`` with ``wait_for_input``), in
:mod:`flows.approval`.
"""

from __future__ import annotations

import pandas as pd

from dunning.config import ApprovalSettings
from dunning.money import format_money, from_minor

FINAL_STAGE = "final_notice"
TOP_BALANCES = 10


def approval_reasons(sends: pd.DataFrame, settings: ApprovalSettings) -> list[str]:
    """Why the plan lines ``sends`` (action "send") need approval; empty when they do not
    or when approval is off."""
    if not settings.enabled or sends.empty:
        return []
    reasons = []
    # Repeats of the final notice (final_notice_r2, …) and their retries are final notices too.
    finals = int(sends["stage"].astype(str).str.startswith(FINAL_STAGE).sum())
    if settings.final_notice and finals:
        reasons.append(f"{finals} final notice(s)")
    if len(sends) > settings.max_messages:
        reasons.append(
            f"{len(sends)} messages, more than DUNNING_APPROVAL_MAX_MESSAGES="
            f"{settings.max_messages}"
        )
    return reasons


def mask_customer(customer_id: str) -> str:
    """``CUST-00042`` -> ``CU***42``: enough to tell rows apart, not to identify anyone."""
    text = str(customer_id)
    if len(text) <= 4:
        return "*" * len(text)
    return f"{text[:2]}***{text[-2:]}"


def _counts(sends: pd.DataFrame, column: str) -> str:
    counts = sends[column].astype(str).value_counts().sort_index()
    rows = "".join(f"| {key} | {n} |\n" for key, n in counts.items())
    return f"| {column} | messages |\n|---|---|\n{rows}"


def _largest(sends: pd.DataFrame) -> str:
    per_invoice = (
        sends.assign(stage=sends["stage"].astype(str), channel=sends["channel"].astype(str))
        .groupby("invoice_number", sort=False)
        .agg(
            customer_id=("customer_id", "first"),
            segment=("segment", "first"),
            stage=("stage", "first"),
            channels=("channel", lambda c: ", ".join(sorted(set(c)))),
            currency=("currency", "first"),
            balance_minor=("balance_minor", "first"),
            locale=("locale", "first"),
        )
        .reset_index()
    )
    # Why minor units are compared across currencies: this is a "which ones are big" list
    # for a person to eyeball, not money arithmetic.
    top = per_invoice.nlargest(TOP_BALANCES, "balance_minor")
    rows = []
    for r in top.itertuples():
        minor = int(str(r.balance_minor))
        amount = format_money(from_minor(minor, str(r.currency)), str(r.currency), "en_US")
        # Balance next to the invoice: the UI's form is narrow and clips the last columns.
        rows.append(
            f"| {r.invoice_number} | {amount} | {r.stage} | {r.channels} "
            f"| {mask_customer(str(r.customer_id))} | {r.segment} |\n"
        )
    return (
        "| invoice | balance | stage | channels | customer | segment |\n"
        "|---|---|---|---|---|---|\n" + "".join(rows)
    )


def approval_summary(sends: pd.DataFrame, reasons: list[str], timeout_seconds: int) -> str:
    """The markdown a person reads before approving: why, counts by stage, channel and
    segment, and the :data:`TOP_BALANCES` largest balances (customer ids masked, no names,
    emails or phone numbers)."""
    return (
        f"### Approve this reminder run?\n\n"
        f"**{len(sends)} message(s)** to {sends['invoice_number'].nunique()} invoice(s) are "
        f"ready to send. Approval is required because: {'; '.join(reasons)}.\n\n"
        f"Choose **approve** to send them now or **reject** to send nothing (nothing is "
        f"recorded; the next run plans them again and asks again). No decision within "
        f"{timeout_seconds} s counts as reject.\n\n"
        f"#### By stage\n{_counts(sends, 'stage')}\n"
        f"#### By channel\n{_counts(sends, 'channel')}\n"
        f"#### By segment\n{_counts(sends, 'segment')}\n"
        f"#### The {TOP_BALANCES} largest balances\n{_largest(sends)}"
    )
