"""The webhook receiver (SendGrid, Twilio, Stripe) writing verified events to the inbox."""

from dunning.webhooks.app import create_app, store_records

__all__ = ["create_app", "store_records"]
