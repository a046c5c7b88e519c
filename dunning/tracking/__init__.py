"""Response tracking: apply the webhook inbox to the ledger, poll Twilio, compute metrics."""

from dunning.tracking.apply import TrackingSummary, apply_inbox
from dunning.tracking.payments import NewPayment, apply_payment, record_payment, record_payments

__all__ = [
    "NewPayment",
    "TrackingSummary",
    "apply_inbox",
    "apply_payment",
    "record_payment",
    "record_payments",
]
