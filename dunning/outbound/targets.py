"""The configured activity targets (HubSpot, Salesforce, Xero history notes), built from the
CRM file and sources.toml. Its own module so the targets import ``dunning.outbound.activities``
(the types they share) and nothing imports back: no cycle inside ``dunning.outbound``."""

from __future__ import annotations

from dunning.outbound.activities import Target, load_crm


def load_targets() -> dict[str, Target]:
    """The configured targets by name: HubSpot and Salesforce from the CRM file, Xero from
    sources.toml. Raises ConfigError for an invalid file (the SDK's import error names the
    extra to install: ``pip install 'dunning[hubspot]'``)."""
    from dunning.sources.config import load_sources

    targets: dict[str, Target] = {}
    for name, config in load_crm().items():
        if name == "hubspot":
            from dunning.outbound.hubspot import HubSpotTarget

            targets[name] = HubSpotTarget(config)
        else:
            from dunning.outbound.salesforce import SalesforceTarget

            targets[name] = SalesforceTarget(config)
    xero = [
        s
        for s in load_sources().values()
        if s.kind == "xero" and s.get("history_notes", "on") == "on"
    ]
    if xero:
        from dunning.outbound.xero_notes import XeroHistoryTarget

        targets["xero"] = XeroHistoryTarget(xero)
    return targets
