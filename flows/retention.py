"""The deployment entrypoint `flows/retention.py:retention` that prefect.yaml names.

The flow itself is :mod:`dunning.flows.retention`; an installed wheel reaches it as
`dunning.flows.retention:retention`.
"""

from dunning.flows.retention import retention

__all__ = ["retention"]
