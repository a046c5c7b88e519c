"""Outbound events: a transactional outbox of business events, delivered to subscribers as
Standard Webhooks (docs/outbound.md)."""
