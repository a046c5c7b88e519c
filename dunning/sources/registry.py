"""Building a Source from its sources.toml table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from dunning.errors import ConfigError, DunningError
from dunning.sources.base import Source
from dunning.sources.config import SourceConfig, load_sources


def build_source(config: SourceConfig) -> Source:
    """The Source object for ``config`` (its kind's class)."""
    if config.kind == "sql":
        from dunning.sources.sql import SqlSource

        return SqlSource(config)
    if config.kind == "files":
        from dunning.sources.files import FilesSource

        return FilesSource(config)
    if config.kind == "stripe":
        from dunning.sources.stripe import StripeSource

        return StripeSource(config)
    if config.kind == "xero":
        from dunning.sources.xero import XeroSource

        return XeroSource(config)
    raise ConfigError(
        f"[sources.{config.name}]: unknown kind {config.kind!r}; use stripe, xero, sql or files"
    )


def get_source(name: str) -> Source:
    """The configured source ``name``; ConfigError listing the configured ones otherwise."""
    configs = load_sources()
    if name not in configs:
        known = ", ".join(sorted(configs)) or "none (no sources.toml found)"
        raise ConfigError(
            f"no source named {name!r} in sources.toml; configured: {known}. "
            "Add a [sources.NAME] table or set DUNNING_SOURCES_PATH"
        )
    return build_source(configs[name])


def sync_sources(
    engine: Engine, configs: dict[str, SourceConfig], full: bool = False
) -> list[dict[str, Any]]:
    """One result per source in ``configs``: its sync report as a dict with ``ok`` true, or
    ``{"source", "ok": False, "message"}`` when its sync failed (the others still run)."""
    from dunning.sources.sync import sync_source

    results: list[dict[str, Any]] = []
    for name, config in configs.items():
        try:
            report = sync_source(engine, build_source(config), full=full)
            results.append({"ok": True, **report.as_dict()})
        except DunningError as exc:
            results.append({"ok": False, "source": name, "message": str(exc)})
    return results
