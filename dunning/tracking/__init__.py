"""Response tracking: apply the webhook inbox to the ledger, poll Twilio, compute metrics."""

from dunning.tracking.apply import TrackingSummary, apply_inbox
from dunning.tracking.payments import apply_payment

__all__ = ["TrackingSummary", "apply_inbox", "apply_payment"]
