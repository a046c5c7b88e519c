"""The track_responses flow: apply the webhook inbox, poll Twilio, publish metrics."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from dunning.tasks.experiments import publish_experiments
from dunning.tasks.tracking import (
    apply_inbox_task,
    compute_metrics_task,
    merge,
    poll_twilio_task,
    publish_tracking,
)
from dunning.timeouts import flow_timeout


@flow(name="track-responses", log_prints=False, timeout_seconds=flow_timeout("track_responses"))
def track_responses(
    poll_twilio: bool = True,
    limit: int | None = None,
    poll_age_minutes: int | None = None,
    metrics_by: tuple[str, ...] = ("stage", "channel"),
) -> dict[str, int]:
    """Counts by kind of what this run changed in the ledger."""
    applied = apply_inbox_task(limit)
    polled = poll_twilio_task(poll_age_minutes) if poll_twilio else {}
    counts = merge(applied, polled)
    metrics = compute_metrics_task(list(metrics_by))
    publish_tracking(counts, metrics, flow_run.get_id())
    publish_experiments()  # one artifact per A/B test of the policy (dunning.experiments)
    return counts


if __name__ == "__main__":
    track_responses()
