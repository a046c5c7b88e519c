"""The deployment entrypoint `flows/outbound_events.py:outbound_events` that prefect.yaml names.

The flow itself is :mod:`dunning.flows.outbound_events`; an installed wheel reaches it as
`dunning.flows.outbound_events:outbound_events`.
"""

from dunning.flows.outbound_events import outbound_events

__all__ = ["outbound_events"]
