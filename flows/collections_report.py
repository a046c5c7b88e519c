"""The deployment entrypoint `flows/collections_report.py:collections_report` that prefect.yaml
names.

The flow itself is :mod:`dunning.flows.collections_report`; an installed wheel reaches it as
`dunning.flows.collections_report:collections_report`.
"""

from dunning.flows.collections_report import collections_report

__all__ = ["collections_report"]
