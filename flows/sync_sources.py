"""The deployment entrypoint `flows/sync_sources.py:sync_sources` that prefect.yaml names.

The flow itself is :mod:`dunning.flows.sync_sources`; an installed wheel reaches it as
`dunning.flows.sync_sources:sync_sources`.
"""

from dunning.flows.sync_sources import sync_sources

__all__ = ["sync_sources"]
