"""The deployment entrypoint `flows/segment_customers.py:segment_customers` that prefect.yaml
names.

The flow itself is :mod:`dunning.flows.segment_customers`; an installed wheel reaches it as
`dunning.flows.segment_customers:segment_customers`.
"""

from dunning.flows.segment_customers import segment_customers

__all__ = ["segment_customers"]
