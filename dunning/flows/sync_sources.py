"""The sync-sources flow: sync every source in sources.toml (or the ones named)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from dunning.flows.segment_customers import segment_customers
from dunning.sources.config import load_sources
from dunning.tasks.sources import sync_one
from dunning.timeouts import flow_timeout


@flow(
    name="sync-sources",
    log_prints=False,
    timeout_seconds=flow_timeout("sync_sources"),
    description="Sync customers, invoices and payments from every source in sources.toml.",
)
def sync_sources(
    names: list[str] | None = None, full: bool = False, segment: bool = True
) -> list[dict[str, Any]]:
    """One sync report per source (dicts, see ``SyncReport.as_dict``).

    Sources sync one after another in their own task runs; a source that fails is retried
    once and then fails this flow run, after the others have synced. When a sync changed
    payment history (``changed_payment_history``) and ``segment`` is on, the
    segment-customers flow runs as a subflow, so hourly runs read segments that include it.
    """
    configs = load_sources()
    unknown = sorted(set(names or []) - set(configs))
    if unknown:
        raise ValueError(
            f"no source named {', '.join(unknown)} in sources.toml; configured: "
            f"{', '.join(sorted(configs)) or 'none'}"
        )
    states = [
        sync_one(name, full, return_state=True) for name in configs if not names or name in names
    ]
    results = [state.result(raise_on_failure=False) for state in states]
    changed = [r for r in results if isinstance(r, dict) and changed_payment_history(r)]
    if segment and changed:
        log = get_run_logger()
        log.info(
            "payment history changed in %s: segmenting customers again",
            ", ".join(str(r["source"]) for r in changed),
        )
        # A failed segmentation fails its own (sub)flow run, not the sync: the data is in,
        # and runs segment on the fly whatever the snapshot lacks.
        done = segment_customers(return_state=True)
        if not done.is_completed():
            log.warning("segment-customers did not complete: %s", done.message)
    failed = [str(r) for r in results if isinstance(r, BaseException)]
    if failed:
        raise RuntimeError(f"{len(failed)} source(s) failed to sync: {'; '.join(failed)}")
    return results  # type: ignore[return-value]


#: The record types whose changes move the payment-history features of segmentation.
HISTORY_RECORDS = ("invoices", "payments", "payment_attempts")


def changed_payment_history(report: dict[str, Any]) -> bool:
    """Whether a sync report (``SyncReport.as_dict``) inserted, updated or deleted invoices,
    payments or payment attempts."""
    counts = report.get("counts", {})
    return any(
        counts.get(kind, {}).get(what, 0) > 0
        for kind in HISTORY_RECORDS
        for what in ("inserted", "updated", "deleted")
    )


if __name__ == "__main__":
    sync_sources()
