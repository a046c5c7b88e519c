"""The deployment entrypoint `flows/dry_run.py:reminders_dry_run` that prefect.yaml names.

The flow itself is :mod:`dunning.flows.dry_run`; an installed wheel reaches it as
`dunning.flows.dry_run:reminders_dry_run`.
"""

from dunning.flows.dry_run import reminders_dry_run

__all__ = ["reminders_dry_run"]
