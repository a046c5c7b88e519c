"""dunning: a Prefect-native payment-reminder engine."""

from dunning.telemetry import quiet_prefect_telemetry

__version__ = "0.1.0"

# Before anything imports Prefect: the servers the CLI and the notebook start stay silent.
quiet_prefect_telemetry()
