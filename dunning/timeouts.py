"""How long each flow may run before Prefect fails it (DUNNING_FLOW_TIMEOUT_<FLOW>, seconds).

Why every flow has one: a run that hangs (a provider call that never returns, an approval
nobody answers) would otherwise hold its deployment's concurrency slot for ever, and every
later run would wait behind it. A timed-out run ends Failed ("TimedOut"), which frees the slot
and fires the run-failed alert; what it had claimed is reconciled by the next run.

The flows read these when their module is imported, i.e. in each flow run's own process, so a
deployment sets them in its ``job_variables.env`` (prefect.yaml).
"""

from __future__ import annotations

from dunning.config import get_settings


def flow_timeout(flow: str) -> int:
    """The timeout in seconds of ``flow`` (e.g. ``payment_reminders``), from the settings
    root's ``timeouts`` section; raises ConfigError naming the variable when it is invalid."""
    return int(getattr(get_settings().timeouts, flow))
