"""The portfolio frame: the planner's inputs as pandas DataFrames, and their column schema.

``Portfolio`` holds customers, invoices, payments, payment attempts and the reminders ledger;
the planner and segmentation read it, ``dunning.portfolio.load_portfolio`` fills it from the
database, ``build_portfolio`` from plain records (tests, what-if analyses, the benchmark).
Amounts are integer minor units; dates naive datetime64 days; instants UTC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dunning.core.status import ReminderStatus

#: Columns held as pandas categoricals (few distinct values).
CATEGORIES = (
    "country",
    "timezone",
    "locale",
    "region",
    "currency",
    "status",
    "outcome",
    "failure_code",
    "stage",
    "channel",
)


@dataclass
class Portfolio:
    """Customers, invoices, payments, failed/succeeded attempts and the reminder ledger."""

    customers: pd.DataFrame
    invoices: pd.DataFrame
    payments: pd.DataFrame
    attempts: pd.DataFrame
    ledger: pd.DataFrame

    def customer_positions(self, customer_ids: pd.Series) -> np.ndarray:
        """Per id, the row position of that customer in ``customers`` (-1 when unknown)."""
        index = pd.Index(self.customers["customer_id"].astype(str).to_numpy())
        return np.asarray(index.get_indexer(pd.Index(customer_ids.astype(str).to_numpy())))


#: Per frame, the value of each column a record may omit.
DEFAULTS: dict[str, dict[str, object]] = {
    "customers": {
        "country": "US",
        "timezone": "UTC",
        "locale": "en_US",
        "region": None,
        "has_email": True,
        "has_phone": True,
        "not_mobile": False,
        "sms_consent": True,
        "email_opt_out": False,
        "sms_opt_out": False,
        "voice_consent": False,
        "voice_opt_out": False,
        "paused_until": None,
    },
    "invoices": {
        "currency": "EUR",
        "paid_minor": 0,
        "status": "open",
        "promise_to_pay_on": None,
        "paused_until": None,
        "issued_on": None,
    },
    "payments": {},
    "attempts": {"outcome": "failed", "failure_code": None},
    "ledger": {
        "channel": "email",
        "status": str(ReminderStatus.SENT),
        "reason": None,
        "sent_at": None,
        "claimed_at": None,
        "planned_at": None,
        "planned_for": None,
        "call_outcome": None,
    },
}
#: Per frame, its columns in order.
COLUMNS = {
    "customers": [
        "customer_id",
        "country",
        "timezone",
        "locale",
        "region",
        "has_email",
        "has_phone",
        "not_mobile",
        "sms_consent",
        "email_opt_out",
        "sms_opt_out",
        "voice_consent",
        "voice_opt_out",
        "paused_until",
    ],
    "invoices": [
        "invoice_id",
        "invoice_number",
        "customer_id",
        "currency",
        "amount_minor",
        "paid_minor",
        "issued_on",
        "due_on",
        "status",
        "promise_to_pay_on",
        "paused_until",
    ],
    "payments": ["invoice_id", "amount_minor", "paid_at"],
    "attempts": ["invoice_id", "attempted_at", "outcome", "failure_code"],
    "ledger": [
        "invoice_id",
        "stage",
        "channel",
        "status",
        "reason",
        "sent_at",
        "claimed_at",
        "planned_at",
        "planned_for",
        "call_outcome",
    ],
}
FLAGS = (
    "has_email",
    "has_phone",
    "not_mobile",
    "sms_consent",
    "email_opt_out",
    "sms_opt_out",
    "voice_consent",
    "voice_opt_out",
)
DATES = ("paused_until", "issued_on", "due_on", "promise_to_pay_on")
INSTANTS = ("paid_at", "attempted_at", "sent_at", "claimed_at", "planned_at", "planned_for")


def _frame(kind: str, records: list[dict[str, object]]) -> pd.DataFrame:
    """``records`` as the DataFrame ``kind`` of a Portfolio, defaults filled in, dtypes set."""
    df = pd.DataFrame([DEFAULTS[kind] | r for r in records], columns=COLUMNS[kind])
    for col in df.columns:
        if col in DATES:
            df[col] = pd.to_datetime(df[col]).astype("datetime64[ns]")
        elif col in INSTANTS:
            df[col] = pd.to_datetime(df[col], utc=True)
        elif col in ("invoice_id", "amount_minor", "paid_minor"):
            df[col] = df[col].astype("int64")
        elif col in FLAGS:
            df[col] = df[col].astype(bool)
        elif col in CATEGORIES:
            df[col] = df[col].astype("category")
    if kind == "invoices":
        df["customer_id"] = df["customer_id"].astype(str)
        df["issued_on"] = df["issued_on"].fillna(df["due_on"] - pd.Timedelta(days=30))
    return df


def build_portfolio(
    customers: list[dict[str, object]],
    invoices: list[dict[str, object]],
    payments: list[dict[str, object]] | None = None,
    attempts: list[dict[str, object]] | None = None,
    ledger: list[dict[str, object]] | None = None,
) -> Portfolio:
    """A Portfolio from plain records (dicts), with defaults for omitted columns.

    For tests, what-if analyses and the benchmark: the same shape load_portfolio returns.
    """
    return Portfolio(
        _frame("customers", customers),
        _frame("invoices", invoices),
        _frame("payments", payments or []),
        _frame("attempts", attempts or []),
        _frame("ledger", ledger or []),
    )
