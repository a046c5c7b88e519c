"""Provider configuration, checked before a run starts anything (a Prefect server included).

``dunning run`` calls it first, in --dry-run too, so a forced provider without credentials is
one clear line rather than a traceback from inside a flow run.
"""

from __future__ import annotations

from collections.abc import Iterable

from dunning.channels import get_channel, resolve_provider
from dunning.config import get_settings
from dunning.config.channels import ChannelSettings

#: Every channel a run may use when it is not limited to some.
ALL_CHANNELS = ("email", "sms", "voice")


def check_provider_config(
    channels: Iterable[str] = ALL_CHANNELS, settings: ChannelSettings | None = None
) -> dict[str, str]:
    """The provider each of ``channels`` will use (e.g. ``{"email": "sendgrid"}``), after
    building each channel from the environment exactly as a run does.

    Raises ConfigError naming the setting to fix: a provider forced without its credentials
    (DUNNING_EMAIL_PROVIDER=sendgrid with no API key), or a malformed DUNNING_* value. A
    provider configured through a Prefect block is checked when the run loads the block:
    loading it here would need the Prefect API before the run.
    """
    settings = settings or get_settings().channels  # ConfigError naming a bad variable
    providers = {}
    for kind in channels:
        provider = resolve_provider(kind, settings)
        if not getattr(settings, f"{provider}_block", None):
            get_channel(kind, settings)  # raises ConfigError for missing credentials
        providers[kind] = provider
    return providers
