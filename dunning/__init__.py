"""dunning: a Prefect-native payment-reminder engine."""

__version__ = "0.1.0"
