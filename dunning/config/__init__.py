"""The one settings root: every DUNNING_* (and provider) environment variable dunning reads.

``get_settings()`` is the root, built once per process (cached); ``reload_settings()`` drops it
so the next ``get_settings()`` reads the environment again (tests, notebooks). The root holds
what every part needs (home, database URL, policy path, company, lease) and one section per
concern, each in its own module of this package with the environment names operators use
(docs/configuration.md and the area docs):

=========================  ==============================  ====================================
``get_settings().``        class                           variables
=========================  ==============================  ====================================
``channels``               :class:`ChannelSettings`        DUNNING_EMAIL_*, DUNNING_SMS_*,
                                                           DUNNING_VOICE_*, DUNNING_SMTP_*,
                                                           DUNNING_SENDGRID_* / SENDGRID_API_KEY,
                                                           DUNNING_TWILIO_* / TWILIO_*, …
``webhooks``               :class:`WebhookSettings`        DUNNING_WEBHOOK_*, DUNNING_INBOX_*, …
``privacy``                :class:`PrivacySettings`        DUNNING_RETENTION_*
``outbound``               :class:`OutboundSettings`       DUNNING_OUTBOUND_*
``timeouts``               :class:`FlowTimeouts`           DUNNING_FLOW_TIMEOUT_*
``approval``               :class:`ApprovalSettings`       DUNNING_APPROVAL_*
``alerts``                 :class:`AlertSettings`          DUNNING_ALERT_*
``integrations``           :class:`IntegrationSettings`    DUNNING_SOURCES_PATH, DUNNING_CRM_PATH,
                                                           DUNNING_STRIPE_*, DUNNING_XERO_*,
                                                           DUNNING_HUBSPOT_*,
                                                           DUNNING_SALESFORCE_*
=========================  ==============================  ====================================

Why the sections are read on first use and not with the root: an invalid value fails only
the commands that use its section (a bad DUNNING_ALERT_ZOMBIE_SECONDS does not stop
``dunning db upgrade``), as when each area read its own class. Each section is still read
once per root. Every invalid value raises :class:`~dunning.errors.ConfigError` naming the
variable, the value (masked for secrets) and what is allowed.
"""

from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path
from typing import TypeVar

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from dunning.config.alerts import AlertSettings
from dunning.config.approval import ApprovalSettings
from dunning.config.channels import ChannelSettings
from dunning.config.integrations import IntegrationSettings
from dunning.config.outbound import OutboundSettings
from dunning.config.privacy import PrivacySettings
from dunning.config.timeouts import FlowTimeouts
from dunning.config.webhooks import WebhookSettings
from dunning.errors import ConfigError

S = TypeVar("S", bound=BaseSettings)

__all__ = [
    "AlertSettings",
    "ApprovalSettings",
    "ChannelSettings",
    "FlowTimeouts",
    "IntegrationSettings",
    "OutboundSettings",
    "PrivacySettings",
    "Settings",
    "WebhookSettings",
    "env_names",
    "get_settings",
    "load_settings",
    "reload_settings",
]


class Settings(BaseSettings):
    """The settings root: what every part needs, and one section per concern (read on first
    use, then kept for the life of this root)."""

    model_config = SettingsConfigDict(env_prefix="DUNNING_", extra="ignore")

    home: Path = Field(
        default=Path(".dunning"),
        description="Working directory for the embedded database, outbox and reports.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///<home>/dunning.db",
    )
    policy_path: Path | None = Field(
        default=None,
        description="Policy file (TOML/YAML); default dunning/policy/default_policy.toml.",
    )
    company_name: str = "Acme Supplies Ltd"
    support_contact: str = "billing@example.com"
    lease_seconds: int = Field(default=300, ge=5, description="How long a claim is held.")
    segment_snapshot_max_age_hours: float = Field(
        default=48,
        ge=0,
        description="Runs use a customer's stored segment (the segment-customers flow's "
        "snapshot) when it is at most this old; older or missing: segmented on the fly. "
        "0: never use the snapshot.",
    )

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the setting, else SQLite under home."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'dunning.db').resolve()}"

    @property
    def outbox_dir(self) -> Path:
        """Where the outbox channel writes message files."""
        return self.home / "outbox"

    @cached_property
    def channels(self) -> ChannelSettings:
        """Provider credentials, sender identity, rate limits, branding (ConfigError when a
        variable is invalid)."""
        return load_settings(ChannelSettings)

    @cached_property
    def webhooks(self) -> WebhookSettings:
        """The webhook receiver and response tracking."""
        return load_settings(WebhookSettings)

    @cached_property
    def privacy(self) -> PrivacySettings:
        """Retention of message bodies and webhook payloads."""
        return load_settings(PrivacySettings)

    @cached_property
    def outbound(self) -> OutboundSettings:
        """Outbound event delivery to subscribers."""
        return load_settings(OutboundSettings)

    @cached_property
    def timeouts(self) -> FlowTimeouts:
        """Flow-run timeouts, per flow."""
        return load_settings(FlowTimeouts)

    @cached_property
    def approval(self) -> ApprovalSettings:
        """When a reminder run waits for a person's approval."""
        return load_settings(ApprovalSettings)

    @cached_property
    def alerts(self) -> AlertSettings:
        """Operator alert targets and thresholds."""
        return load_settings(AlertSettings)

    @cached_property
    def integrations(self) -> IntegrationSettings:
        """The sources and CRM files, provider endpoints, the integrations' credentials."""
        return load_settings(IntegrationSettings)


#: Every section of the root: attribute name -> class.
SECTIONS: dict[str, type[BaseSettings]] = {
    "channels": ChannelSettings,
    "webhooks": WebhookSettings,
    "privacy": PrivacySettings,
    "outbound": OutboundSettings,
    "timeouts": FlowTimeouts,
    "approval": ApprovalSettings,
    "alerts": AlertSettings,
    "integrations": IntegrationSettings,
}

_lock = threading.Lock()
_root: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings root, read from the environment on first call and kept.

    Raises ConfigError naming the variable when a core setting (DUNNING_HOME, …) is invalid.
    A process that changes the environment afterwards calls :func:`reload_settings`.
    """
    global _root
    root = _root
    if root is None:
        with _lock:
            if _root is None:
                _root = load_settings(Settings)
            root = _root
    return root


def reload_settings() -> None:
    """Forget the settings root (and with it every section and the channels built from it):
    the next :func:`get_settings` reads the environment again. For tests and notebooks."""
    global _root
    with _lock:
        _root = None


# Compatibility with the functools.lru_cache spelling callers used before the root existed.
get_settings.cache_clear = reload_settings  # type: ignore[attr-defined]


def env_names(cls: type[BaseSettings]) -> dict[str, tuple[str, ...]]:
    """Field name -> the environment variables that set it, in precedence order (e.g.
    ``{"sendgrid_api_key": ("DUNNING_SENDGRID_API_KEY", "SENDGRID_API_KEY"), …}``)."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names: dict[str, tuple[str, ...]] = {}
    for field, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names[field] = tuple(str(a) for a in alias.choices)
        elif isinstance(alias, str):
            names[field] = (alias,)
        else:
            names[field] = (f"{prefix}{field}".upper(),)
    return names


def _is_secret(cls: type[BaseSettings], field: str) -> bool:
    info = cls.model_fields.get(field)
    return info is not None and "SecretStr" in str(info.annotation)


def load_settings(cls: type[S]) -> S:
    """``cls()`` read from the environment; raises ConfigError naming each bad variable and
    what is allowed (``DUNNING_ALERT_ZOMBIE_SECONDS=20: Input should be greater than or equal
    to 60``). The value of a secret is never shown."""
    try:
        return cls()
    except ValidationError as exc:
        names = env_names(cls)
        by_alias = {alias: field for field, aliases in names.items() for alias in aliases}
        problems = []
        for error in exc.errors():
            loc = str(error["loc"][0]) if error["loc"] else ""
            field = by_alias.get(loc, loc)
            candidates = names.get(field, (loc.upper(),))
            # The variable that was set (of DUNNING_TWILIO_AUTH_TOKEN / TWILIO_AUTH_TOKEN).
            variable = next((n for n in candidates if n in os.environ), candidates[0])
            value = "'***'" if _is_secret(cls, field) else repr(error.get("input"))
            problems.append(f"{variable}={value}: {error['msg']}")
        raise ConfigError(f"invalid setting: {'; '.join(problems)}") from None
