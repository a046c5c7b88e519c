"""The webhook receiver (SendGrid, Twilio, Stripe) writing verified events to the inbox."""

from dunning.webhooks.app import create_app, store_records
from dunning.webhooks.settings import WebhookSettings

__all__ = ["WebhookSettings", "create_app", "store_records"]
