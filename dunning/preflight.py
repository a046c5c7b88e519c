"""Template preflight: render every template a run needs before the first send.

A typo in one stage's template must stop the run before anything is sent or marked, not turn
every due reminder of that stage into a failure. So before the plan is written to the ledger,
each (stage, channel, locale) of the run's send lines is composed against sample reminders
that take both sides of the templates' conditions (payment link or not, partly paid or not,
named customer or not). Any error raises ``TemplateError`` naming the template, the line and
the field.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd

from dunning.config import get_settings
from dunning.config.channels import ChannelSettings
from dunning.core.messages import ReminderData
from dunning.errors import TemplateError
from dunning.money import quantize
from dunning.render import compose

#: Sample facts of a preflight reminder (no real customer data is ever used).
_SAMPLES = (
    {
        "customer_name": "Sample Customer",
        "payment_link": "https://pay.example.com/SAMPLE-1",
        "paid_share": Decimal("0.4"),
    },
    {"customer_name": None, "payment_link": None, "paid_share": Decimal(0)},
)


def sample_reminder(
    stage: str,
    channel: str,
    locale: str,
    *,
    currency: str = "EUR",
    tone: str | None = None,
    days_overdue: int = 12,
    variant: int = 0,
) -> ReminderData:
    """A made-up reminder of ``stage`` on ``channel`` in ``locale``; ``variant`` 0 has a
    payment link, a partial payment and a customer name, variant 1 none of them."""
    facts = _SAMPLES[variant % len(_SAMPLES)]
    amount = quantize(Decimal("1250.00"), currency)
    paid = quantize(amount * Decimal(facts["paid_share"]), currency)  # type: ignore[arg-type]
    return ReminderData(
        reminder_id=0,
        invoice_id=0,
        invoice_number="SAMPLE-0001",
        customer_id="SAMPLE",
        stage=stage,
        channel=channel,
        segment=None,
        tone=tone,
        customer_name=facts["customer_name"],  # type: ignore[arg-type]
        email="sample@example.com",
        phone="+15005550006",
        locale=locale,
        timezone="UTC",
        country="US",
        currency=currency,
        amount=amount,
        balance_due=amount - paid,
        due_on=dt.date(2026, 1, 15),
        days_overdue=days_overdue,
        payment_link=facts["payment_link"],  # type: ignore[arg-type]
    )


def needs(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per (stage, channel, locale) among the send lines of ``lines``, with a
    currency, tone and days overdue of one of its lines."""
    sends = lines.loc[lines["action"].astype(str) == "send"]
    cols = ["stage", "channel", "locale", "currency", "tone", "days_overdue"]
    frame = sends[cols].astype({"stage": str, "channel": str, "locale": str, "tone": str})
    return frame.drop_duplicates(["stage", "channel", "locale"]).reset_index(drop=True)


def check_templates(lines: pd.DataFrame, settings: ChannelSettings | None = None) -> int:
    """How many messages were rendered to check the templates the send lines of ``lines``
    need; raises TemplateError (template, line, field, and the stage, channel and locale that
    need it) at the first one that fails. Sends nothing and writes nothing."""
    settings = settings or get_settings().channels
    count = 0
    for need in needs(lines).to_dict("records"):
        for variant in range(len(_SAMPLES)):
            data = sample_reminder(
                need["stage"],
                need["channel"],
                need["locale"],
                currency=str(need["currency"]),
                tone=need["tone"] or None,
                days_overdue=int(need["days_overdue"]),
                variant=variant,
            )
            try:
                compose(data, settings)
            except TemplateError as exc:
                raise TemplateError(
                    f"{exc} (needed by stage {need['stage']} on {need['channel']} for locale "
                    f"{need['locale']}); nothing was sent or marked: fix the template and run "
                    "again"
                ) from None
            count += 1
    return count
