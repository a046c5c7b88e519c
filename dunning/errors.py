"""The small exception hierarchy users see: each message names the input and the fix."""


class DunningError(Exception):
    """Base class for errors a user can act on."""


class ConfigError(DunningError):
    """A setting is missing or invalid."""


class DatabaseUnavailable(DunningError):
    """The database cannot be reached or is not migrated."""


class ImportFailed(DunningError):
    """An import file has invalid rows; nothing was imported."""


class PolicyError(DunningError):
    """The policy file is invalid."""


class TemplateError(DunningError):
    """A template failed to render (missing field, syntax error, unknown template)."""


class ProviderAuthError(DunningError):
    """A provider refused our credentials: stop the run instead of failing every message."""
