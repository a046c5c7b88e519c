"""The deployment entrypoint `flows/payment_reminders.py:payment_reminders` that prefect.yaml names.

The flow itself is :mod:`dunning.flows.payment_reminders`; an installed wheel reaches it as
`dunning.flows.payment_reminders:payment_reminders`.
"""

from dunning.flows.payment_reminders import payment_reminders

__all__ = ["payment_reminders"]
