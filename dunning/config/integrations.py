"""Settings of the integrations: where sources.toml and crm.toml are, the provider endpoints
(DUNNING_STRIPE_API_BASE, DUNNING_XERO_*_BASE: the fakes in tests and demos), and the default
credentials of the Stripe and Xero sources and the HubSpot and Salesforce subscribers.

A sources.toml or crm.toml ``*_env`` key may name any other variable for a credential; that
variable is read when it is asked for (``IntegrationSettings.variable``), since its name is
only known from the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class IntegrationSettings(BaseSettings):
    """The sources and CRM files, the provider endpoints and the integrations' default
    credentials (DUNNING_SOURCES_PATH, DUNNING_CRM_PATH, DUNNING_STRIPE_*, DUNNING_XERO_*,
    DUNNING_HUBSPOT_*, DUNNING_SALESFORCE_*)."""

    model_config = SettingsConfigDict(env_prefix="DUNNING_", extra="ignore")

    sources_path: str | None = Field(default=None, description="Default ./sources.toml.")
    crm_path: str | None = Field(default=None, description="Default ./crm.toml.")
    stripe_api_base: str | None = Field(
        default=None, description="Stripe's API address (default https://api.stripe.com)."
    )
    stripe_api_key: SecretStr | None = None
    xero_api_base: str | None = None
    xero_identity_base: str | None = None
    xero_client_id: str | None = None
    xero_client_secret: SecretStr | None = None
    hubspot_access_token: SecretStr | None = None
    hubspot_client_id: str | None = None
    hubspot_client_secret: SecretStr | None = None
    hubspot_refresh_token: SecretStr | None = None
    salesforce_username: str | None = None
    salesforce_password: SecretStr | None = None
    salesforce_security_token: SecretStr | None = None
    salesforce_consumer_key: str | None = None
    salesforce_consumer_secret: SecretStr | None = None

    @property
    def sources_file(self) -> Path:
        """The sources file in force: DUNNING_SOURCES_PATH, else ./sources.toml."""
        return Path(self.sources_path or "sources.toml")

    @property
    def crm_file(self) -> Path:
        """The CRM file in force: DUNNING_CRM_PATH, else ./crm.toml."""
        return Path(self.crm_path or "crm.toml")

    def variable(self, name: str) -> str | None:
        """The value of the environment variable ``name`` (None when unset or empty): one of
        this section's (as read with the settings root), else, for a name a ``*_env`` key of
        sources.toml or crm.toml chose, the environment now."""
        field = name.removeprefix("DUNNING_").lower()
        if name.startswith("DUNNING_") and field in type(self).model_fields:
            value = getattr(self, field)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            return str(value) if value else None
        return os.environ.get(name) or None
