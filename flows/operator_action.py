"""The deployment entrypoint `flows/operator_action.py:operator_action` that prefect.yaml names.

The flow itself is :mod:`dunning.flows.operator_action`; an installed wheel reaches it as
`dunning.flows.operator_action:operator_action`.
"""

from dunning.flows.operator_action import operator_action

__all__ = ["operator_action"]
