"""Response tracking: apply the webhook inbox to the ledger, poll Twilio, compute metrics."""

from dunning.ledger.payments import NewPayment, apply_payment, record_payment, record_payments
from dunning.tracking.apply import TrackingSummary, apply_inbox

__all__ = [
    "NewPayment",
    "TrackingSummary",
    "apply_inbox",
    "apply_payment",
    "record_payment",
    "record_payments",
]
