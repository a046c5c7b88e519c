"""The sync-sources flow: sync every source in sources.toml (or the ones named)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from dunning.sources.config import load_sources
from dunning.tasks.sources import sync_one
from dunning.timeouts import flow_timeout


@flow(
    name="sync-sources",
    log_prints=False,
    timeout_seconds=flow_timeout("sync_sources"),
    description="Sync customers, invoices and payments from every source in sources.toml.",
)
def sync_sources(names: list[str] | None = None, full: bool = False) -> list[dict[str, Any]]:
    """One sync report per source (dicts, see ``SyncReport.as_dict``).

    Sources sync one after another in their own task runs; a source that fails is retried
    once and then fails this flow run, after the others have synced.
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
    failed = [str(r) for r in results if isinstance(r, BaseException)]
    if failed:
        raise RuntimeError(f"{len(failed)} source(s) failed to sync: {'; '.join(failed)}")
    return results  # type: ignore[return-value]


if __name__ == "__main__":
    sync_sources()
