"""Turning the sending schedules on and off, deliberately.

``prefect deploy --all`` ships the payment-reminders schedule paused (prefect.yaml), so a
deployment never starts sending on its own; ``resume`` is the deliberate step, and says what
will now happen. Uses only client APIs Prefect Cloud serves as well.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from dunning.errors import ConfigError

#: The deployments whose schedules send reminders (prefect.yaml ships them paused).
SENDING_DEPLOYMENTS = ("payment-reminders/payment-reminders",)


@dataclass
class ScheduleChange:
    """One schedule of a deployment after ``set_active``: what it does and when next."""

    deployment: str
    schedule_id: str
    schedule: str
    active: bool
    was_active: bool
    next_runs: list[dt.datetime] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The change as JSON (instants as ISO 8601 UTC strings)."""
        return {
            "deployment": self.deployment,
            "schedule_id": self.schedule_id,
            "schedule": self.schedule,
            "active": self.active,
            "was_active": self.was_active,
            "next_runs": [t.isoformat() for t in self.next_runs],
            "parameters": self.parameters,
        }


def describe(schedule: Any) -> str:
    """``schedule`` (a Prefect cron, interval or rrule schedule) in words."""
    tz = getattr(schedule, "timezone", None) or "UTC"
    if getattr(schedule, "cron", None):
        if schedule.cron.strip() == "0 * * * *":
            return f"every hour on the hour ({tz}; cron 0 * * * *)"
        return f"cron {schedule.cron} ({tz})"
    interval = getattr(schedule, "interval", None)
    if interval is not None:
        return f"every {interval.total_seconds():.0f} s"
    return f"rrule {getattr(schedule, 'rrule', '?')}"


def next_runs(schedule: Any, n: int = 3) -> list[dt.datetime]:
    """The next ``n`` instants (UTC) ``schedule`` fires at, computed here with Prefect's own
    schedule classes, so the answer is there before the server's scheduler has run."""
    from prefect.server.schemas import schedules as server_schedules

    kind = getattr(server_schedules, type(schedule).__name__, None)
    if kind is None:
        return []
    dates = asyncio.run(kind(**schedule.model_dump()).get_dates(n=n))
    return [d.astimezone(dt.UTC) for d in dates]


def set_active(deployments: tuple[str, ...], active: bool) -> list[ScheduleChange]:
    """Each schedule of ``deployments`` (``flow/deployment`` names) after setting it active or
    paused. Raises ConfigError naming a deployment that does not exist or has no schedule."""
    changes = []
    with get_client(sync_client=True) as client:
        for name in deployments:
            try:
                dep = client.read_deployment_by_name(name)
            except ObjectNotFound:
                raise ConfigError(
                    f"deployment {name} does not exist on the Prefect server; run "
                    "`prefect --no-prompt deploy --all` from the repository first"
                ) from None
            if not dep.schedules:
                raise ConfigError(
                    f"deployment {name} has no schedule; give it one in prefect.yaml and "
                    "deploy again"
                )
            for sched in dep.schedules:
                if sched.active != active:
                    client.update_deployment_schedule(dep.id, sched.id, active=active)
                changes.append(
                    ScheduleChange(
                        deployment=name,
                        schedule_id=str(sched.id),
                        schedule=describe(sched.schedule),
                        active=active,
                        was_active=bool(sched.active),
                        next_runs=next_runs(sched.schedule) if active else [],
                        parameters={**(dep.parameters or {}), **(sched.parameters or {})},
                    )
                )
    return changes
