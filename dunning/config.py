"""Core settings, read from DUNNING_* environment variables.

Each area (channels, webhooks, fakes) keeps its own settings class next to its code so the
modules stay independent; this one holds what every part needs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from dunning.errors import ConfigError

S = TypeVar("S", bound=BaseSettings)


class Settings(BaseSettings):
    """Settings shared by every part of dunning."""

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` in tests)."""
    return Settings()


def load_settings(cls: type[S]) -> S:
    """``cls()`` read from the environment; raises ConfigError naming each bad variable
    (``DUNNING_ALERT_ZOMBIE_SECONDS=20: Input should be greater than or equal to 60``)."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        problems = "; ".join(
            f"{prefix}{'_'.join(str(p) for p in e['loc']).upper()}={e.get('input')!r}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid setting: {problems}") from None
